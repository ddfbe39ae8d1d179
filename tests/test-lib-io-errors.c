/* test-lib-io-errors.c: honest I/O errors on the data path.  An error
 * from the origin or the COW device during a copy, or during a write to
 * a chunk already in the store, goes back to the caller; no record ever
 * points at a chunk whose data was not written; and a sync that failed
 * is never taken for one that succeeded.  (Errors during commits are in
 * test-lib-commit.)
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <string.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define CB 4096

static uint8_t origin_data[16 * CB];

struct fix {
  struct msgs m;
  struct cow_store_params p;
  struct cow_io *origin, *cow;
  struct cow_store *s;
};

static void
fix_open (struct fix *f)
{
  memset (origin_data, 'o', sizeof origin_data);
  msgs_init (&f->m);
  f->p = params_for (&f->m, CB / 512);
  f->origin = cow_io_mem_new (origin_data, sizeof origin_data, false);
  f->cow = cow_io_mem_new (NULL, 0, true);
  ck_assert_int_eq (cow_store_open (f->cow, f->origin, &f->p, &f->s), 0);
}

/* Commit, close, reopen: the store loads, and chunk `chunk` has an
 * exception or not.
 */
static void
reopen_expect (struct fix *f, chunk_t chunk, bool mapped)
{
  chunk_t nc;

  ck_assert_int_eq (cow_store_close (f->s), 0);
  ck_assert_int_eq (cow_store_open (f->cow, f->origin, &f->p, &f->s), 0);
  ck_assert_int_eq (cow_store_lookup (f->s, chunk, &nc), mapped);
}

static void
fix_close (struct fix *f)
{
  cow_store_close (f->s);
  cow_io_close (f->cow);
  cow_io_close (f->origin);
}

START_TEST (test_origin_read_fails_in_copy)
{
  struct fix f;
  uint8_t got[CB];
  chunk_t nc;

  fix_open (&f);
  cow_io_mem_fail (f.origin, "pread", 1, EIO, false);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, "new", 3, 3 * CB + 5, false),
                    -EIO);
  ck_assert (strstr (f.m.last_error, "cannot read the origin") != NULL);
  ck_assert (!cow_store_lookup (f.s, 3, &nc));
  /* The chunk reads as the origin, and a retry works. */
  ck_assert_int_eq (cow_snapshot_pread (f.s, got, CB, 3 * CB), 0);
  ck_assert (memcmp (got, origin_data, CB) == 0);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, "new", 3, 3 * CB + 5, false), 0);
  reopen_expect (&f, 3, true);
  ck_assert_int_eq (cow_snapshot_pread (f.s, got, CB, 3 * CB), 0);
  ck_assert (memcmp (got + 5, "new", 3) == 0);
  ck_assert (memcmp (got, origin_data, 5) == 0);
  fix_close (&f);
}
END_TEST

START_TEST (test_cow_write_fails_in_copy)
{
  struct fix f;
  uint8_t got[CB];
  chunk_t nc;

  fix_open (&f);
  for (int err = 0; err < 2; err++) {
    int e = err ? ENOSPC : EIO;
    cow_io_mem_fail (f.cow, "pwrite", 1, e, false);
    /* A partial write (copy) and a whole-chunk write (no copy). */
    ck_assert_int_eq (cow_snapshot_pwrite (f.s, "abc", 3, 4 * CB + 1,
                                           false), -e);
    ck_assert (!cow_store_lookup (f.s, 4, &nc));
    cow_io_mem_fail (f.cow, "pwrite", 1, e, false);
    memset (got, 'W', CB);
    ck_assert_int_eq (cow_snapshot_pwrite (f.s, got, CB, 5 * CB, false), -e);
    ck_assert (!cow_store_lookup (f.s, 5, &nc));
  }
  /* The failures cost nothing else: flush works, the store reopens
   * without those records and reads the origin there.
   */
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  reopen_expect (&f, 4, false);
  ck_assert (!cow_store_lookup (f.s, 5, &nc));
  ck_assert_int_eq (cow_snapshot_pread (f.s, got, CB, 4 * CB), 0);
  ck_assert (memcmp (got, origin_data, CB) == 0);
  fix_close (&f);
}
END_TEST

START_TEST (test_cow_write_fails_on_mapped_chunk)
{
  struct fix f;
  uint8_t got[8];

  fix_open (&f);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, "first", 5, 6 * CB, true), 0);
  cow_io_mem_fail (f.cow, "pwrite", 1, EIO, false);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, "again", 5, 6 * CB, false),
                    -EIO);
  ck_assert (strstr (f.m.last_error, "cannot write the COW store") != NULL);
  reopen_expect (&f, 6, true);
  ck_assert_int_eq (cow_snapshot_pread (f.s, got, 5, 6 * CB), 0);
  ck_assert (memcmp (got, "first", 5) == 0);
  fix_close (&f);
}
END_TEST

START_TEST (test_failed_sync_not_retried)
{
  struct fix f;

  fix_open (&f);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, "x", 1, 7 * CB, false), 0);
  /* One failed sync, then the device would sync again: the store must
   * not report later flushes as good, since the data of the failed one
   * may be gone.
   */
  cow_io_mem_fail (f.cow, "sync", 1, EIO, false);
  ck_assert_int_eq (cow_store_commit (f.s), -EIO);
  ck_assert_int_eq (cow_store_commit (f.s), -EIO);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, "y", 1, 7 * CB, true), -EIO);
  fix_close (&f);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("io errors");
  TCase *tc = tcase_create ("data path");

  tcase_add_test (tc, test_origin_read_fails_in_copy);
  tcase_add_test (tc, test_cow_write_fails_in_copy);
  tcase_add_test (tc, test_cow_write_fails_on_mapped_chunk);
  tcase_add_test (tc, test_failed_sync_not_retried);
  suite_add_tcase (s, tc);
  return run_suite (s);
}
