/* test-lib-overflow.c: what a full store does.  By default the writes
 * that need a new chunk fail with ENOSPC and everything else goes on;
 * with params.invalidate_on_overflow the store is invalidated as the
 * kernel does: header valid=0 on disk (the rest untouched), every
 * request fails with EIO, and the store is refused when reopened.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <string.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define CB 4096
#define COW_CHUNKS 8            /* header, area, 6 data chunks */

static uint8_t origin_data[32 * CB];

/* Fill a fixed-size store of COW_CHUNKS chunks one chunk at a time;
 * returns the first failing write's result, with *written the number
 * of chunks that went in.
 */
static int
fill (struct cow_store *s, unsigned *written)
{
  uint8_t buf[CB];
  int r = 0;

  memset (buf, 'w', sizeof buf);
  for (*written = 0; *written < 32; (*written)++) {
    r = cow_snapshot_pwrite (s, buf, 10, *written * CB, false);
    if (r < 0)
      break;
  }
  return r;
}

START_TEST (test_enospc_default)
{
  struct msgs m;
  struct cow_store_params p;
  struct cow_io *origin = cow_io_mem_new (origin_data, sizeof origin_data,
                                          false);
  struct cow_io *cow = cow_io_mem_new (NULL, COW_CHUNKS * CB, false);
  struct cow_store *s;
  uint8_t got[10];
  unsigned n;

  msgs_init (&m);
  p = params_for (&m, CB / 512);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (fill (s, &n), -ENOSPC);
  ck_assert_uint_eq (n, COW_CHUNKS - 2);
  ck_assert (strstr (m.last_error, "the COW store is full") != NULL);
  /* Still readable, still writable where chunks exist, still valid. */
  ck_assert_int_eq (cow_snapshot_pread (s, got, sizeof got, 0), 0);
  ck_assert (memcmp (got, "wwwwwwwwww", 10) == 0);
  ck_assert_int_eq (cow_snapshot_pwrite (s, "x", 1, 0, true), 0);
  ck_assert_int_eq (cow_store_close (s), 0);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_snapshot_pread (s, got, 1, 0), 0);
  ck_assert_int_eq (got[0], 'x');
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
}
END_TEST

START_TEST (test_invalidate)
{
  struct msgs m;
  struct cow_store_params p;
  struct cow_io *origin = cow_io_mem_new (origin_data, sizeof origin_data,
                                          false);
  struct cow_io *cow = cow_io_mem_new (NULL, COW_CHUNKS * CB, false);
  struct cow_store *s;
  uint8_t before[COW_CHUNKS * CB], got[10];
  const uint8_t *d;
  size_t size;
  unsigned n;

  msgs_init (&m);
  p = params_for (&m, CB / 512);
  p.invalidate_on_overflow = true;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_store_commit (s), 0);
  ck_assert_int_eq (fill (s, &n), -EIO);
  ck_assert_uint_eq (n, COW_CHUNKS - 2);
  ck_assert (strstr (m.last_error, "invalidat") != NULL);
  /* Every request fails now, reads included. */
  ck_assert_int_eq (cow_snapshot_pread (s, got, sizeof got, 0), -EIO);
  ck_assert_int_eq (cow_snapshot_pwrite (s, "x", 1, 0, false), -EIO);
  ck_assert_int_eq (cow_store_commit (s), -EIO);
  d = cow_io_mem_data (cow, &size);
  memcpy (before, d, sizeof before);
  cow_store_close (s);
  /* On disk: chunk 0 says valid=0; closing wrote nothing more. */
  d = cow_io_mem_data (cow, &size);
  ck_assert (memcmp (d, before, sizeof before) == 0);
  ck_assert_int_eq (d[4] | d[5] | d[6] | d[7], 0);
  ck_assert (memcmp (d, "SnAp", 4) == 0);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), -EINVAL);
  ck_assert (strstr (m.last_error, "the store is invalidated") != NULL);
  cow_io_close (cow);
  cow_io_close (origin);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("overflow");
  TCase *tc = tcase_create ("full");

  memset (origin_data, 'o', sizeof origin_data);
  tcase_add_test (tc, test_enospc_default);
  tcase_add_test (tc, test_invalidate);
  suite_add_tcase (s, tc);
  return run_suite (s);
}
