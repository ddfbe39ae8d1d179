/* test-lib-commit-copy.c: params.commit_each_copy, the kernel's timing.
 * A write that made a new chunk is durable when it returns, with no
 * flush: it survives a power loss right after.  With the default, the
 * same write waits for a flush and a power loss loses it, which shows
 * the test can tell the two apart.
 */
#include <config.h>

#include <check.h>
#include <string.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define CB 4096

/* Write 100 bytes into chunk 3, lose power, reopen, and return whether
 * the bytes are there.  Also returns the syncs the write cost.
 */
static bool
survives (bool commit_each_copy, unsigned *syncs)
{
  static uint8_t origin_data[16 * CB];
  struct msgs m;
  struct cow_store_params p;
  struct cow_io *origin, *cow, *after;
  struct cow_io_mem_counts before, now;
  struct cow_store *s;
  const uint8_t *img;
  uint8_t buf[100], got[100];
  size_t size;
  bool ok;

  msgs_init (&m);
  p = params_for (&m, CB / 512);
  memset (origin_data, 'o', sizeof origin_data);
  memset (buf, 'w', sizeof buf);
  p.commit_each_copy = commit_each_copy;
  origin = cow_io_mem_new (origin_data, sizeof origin_data, false);
  cow = cow_io_mem_new (NULL, 0, true);
  ck_assert_int_eq (cow_io_mem_track_power_loss (cow), 0);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  cow_io_mem_counts (cow, &before);
  ck_assert_int_eq (cow_snapshot_pwrite (s, buf, sizeof buf, 3 * CB + 7,
                                         false), 0);
  cow_io_mem_counts (cow, &now);
  *syncs = now.sync - before.sync;
  ck_assert_int_eq (cow_io_mem_power_loss (cow), 0);
  img = cow_io_mem_data (cow, &size);
  after = cow_io_mem_new (img, size, true);
  cow_store_close (s);
  cow_io_close (cow);

  ck_assert_int_eq (cow_store_open (after, origin, &p, &s), 0);
  ck_assert_int_eq (cow_snapshot_pread (s, got, sizeof got, 3 * CB + 7), 0);
  ok = memcmp (got, buf, sizeof got) == 0;
  if (!ok)                      /* lost: the origin shows, nothing else */
    ck_assert (memcmp (got, origin_data, sizeof got) == 0);
  cow_store_close (s);
  cow_io_close (after);
  cow_io_close (origin);
  return ok;
}

START_TEST (test_commit_each_copy)
{
  unsigned syncs;

  ck_assert (survives (true, &syncs));
  ck_assert_uint_eq (syncs, 2);             /* one commit: two syncs */
  ck_assert (!survives (false, &syncs));
  ck_assert_uint_eq (syncs, 0);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("commit each copy");
  TCase *tc = tcase_create ("timing");

  tcase_add_test (tc, test_commit_each_copy);
  suite_add_tcase (s, tc);
  return run_suite (s);
}
