/* test-lib-commit.c: the order of a commit (cow-format.md, "Committing")
 * seen through tests/recording-io.c: data, then a sync, then the area
 * write and a sync; two syncs per commit whatever the batch; none when
 * idle; the next area zeroed before a full area is written; batches
 * over three areas; one sync for a commit with no records.  Then the
 * bytes on disk, a reopen, group commit from many threads, failed syncs
 * and writes (the store fails for good and the image reopens with what
 * was committed), and a full filesystem: a commit whose write found no
 * space keeps its records and succeeds later, allocation reserves space
 * and gives the chunk back when there is none, and a full store logs
 * one error, not one per request.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "recording-io.h"
#include "store-internal.h"         /* store_set_background_commit */
#include "test-lib-util.h"

#define CS 8                    /* 4K chunks */
#define CB 4096
#define E 256
#define COW_CHUNKS 2048
#define ORIGIN_CHUNKS 4096
#define DATA_SEED 100           /* what the snapshot holds where written */
/* Chunks a store may reserve beyond the one it needs (lib/alloc.c). */
#define RESERVE_AHEAD_MAX 16
#define ORIGIN_SEED 1

struct fix {
  struct msgs m;
  struct cow_io *mem, *rec, *origin;
  struct cow_store *s;
  /* Records added, in order. */
  chunk_t old[COW_CHUNKS], new[COW_CHUNKS];
  unsigned n;
};

static bool
is_area_offset (uint64_t offset)
{
  return offset % CB == 0 && (offset / CB) % (E + 1) == 1;
}

static uint64_t
area_offset (uint64_t area)
{
  return t_area_chunk (CS, area) * CB;
}

/* A new store over a COW whose areas 1..5 hold garbage. */
static void
fix_open (struct fix *f)
{
  uint8_t *img = calloc (COW_CHUNKS, CB);
  struct cow_store_params p;

  memset (f, 0, sizeof *f);
  msgs_init (&f->m);
  p = params_for (&f->m, CS);
  ck_assert_ptr_nonnull (img);
  for (uint64_t a = 1; a <= 5; a++)
    memset (img + area_offset (a), 0xee, CB);
  f->mem = cow_io_mem_new (img, (size_t) COW_CHUNKS * CB, false);
  free (img);
  f->rec = recording_io_new (f->mem);
  f->origin = origin_new ((size_t) ORIGIN_CHUNKS * CB, ORIGIN_SEED);
  ck_assert_int_eq (cow_store_open (f->rec, f->origin, &p, &f->s), 0);
  recording_io_clear (f->rec);
}

static void
fix_close (struct fix *f)
{
  if (f->s)
    cow_store_close (f->s);
  cow_io_close (f->rec);
  cow_io_close (f->mem);
  cow_io_close (f->origin);
}

/* n records: allocate, write the chunk's data, add the exception. */
static void
batch (struct fix *f, unsigned n)
{
  uint8_t buf[CB];

  for (unsigned k = 0; k < n; k++) {
    chunk_t old = 3 * f->n + 1, nc;

    ck_assert_int_eq (cow_store_allocate (f->s, &nc), 0);
    ck_assert_uint_eq (nc, t_data_chunk (CS, f->n));
    pattern_fill (buf, CB, DATA_SEED, old * CB);
    ck_assert_int_eq (cow_io_pwrite (f->rec, buf, CB, nc * CB), 0);
    ck_assert_int_eq (cow_store_add_exception (f->s, old, nc), 0);
    f->old[f->n] = old;
    f->new[f->n] = nc;
    f->n++;
  }
}

/* The first f->committed records are on disk in order, then a
 * terminator.
 */
static void
check_disk (struct fix *f, unsigned committed)
{
  size_t size;
  const uint8_t *d = cow_io_mem_data (f->mem, &size);

  for (unsigned i = 0; i <= committed; i++) {
    const uint8_t *r = d + area_offset (i / E) + (i % E) * 16;

    if (i == committed) {
      ck_assert_msg (get_le64 (r + 8) == 0, "no terminator after record %u",
                     i);
      break;
    }
    ck_assert_msg (get_le64 (r) == f->old[i] && get_le64 (r + 8) == f->new[i],
                   "record %u on disk is (%" PRIu64 ", %" PRIu64 "), "
                   "expected (%" PRIu64 ", %" PRIu64 ")", i, get_le64 (r),
                   get_le64 (r + 8), f->old[i], f->new[i]);
  }
}

/* Reopen the image with a fresh store: it loads cleanly and maps at
 * least the first `committed` records, each to its data.
 */
static void
check_reopen (struct fix *f, unsigned committed)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, CS);
  struct cow_store *s;
  uint8_t buf[CB], want[CB];
  chunk_t nc;

  msgs_init (&m);
  ck_assert_int_eq (cow_store_open (f->mem, f->origin, &p, &s), 0);
  ck_assert_uint_eq (m.errors, 0);
  for (unsigned i = 0; i < f->n; i++) {
    bool found = cow_store_lookup (s, f->old[i], &nc);

    if (i < committed)
      ck_assert_msg (found, "committed record %u lost", i);
    if (!found)
      continue;
    ck_assert_uint_eq (nc, f->new[i]);
    ck_assert_int_eq (cow_snapshot_pread (s, buf, CB, f->old[i] * CB), 0);
    pattern_fill (want, CB, DATA_SEED, f->old[i] * CB);
    assert_bytes (buf, want, CB, "reopened chunk");
  }
  /* An unwritten chunk reads from the origin. */
  ck_assert (!cow_store_lookup (s, ORIGIN_CHUNKS - 1, &nc));
  ck_assert_int_eq (cow_snapshot_pread (s, buf, CB,
                                        (ORIGIN_CHUNKS - 1) * CB), 0);
  pattern_fill (want, CB, ORIGIN_SEED, (ORIGIN_CHUNKS - 1) * CB);
  assert_bytes (buf, want, CB, "origin chunk");
  ck_assert_int_eq (cow_store_close (s), 0);
}

static size_t
index_of_sync (const struct rec_op *ops, size_t n, unsigned which)
{
  for (size_t i = 0; i < n; i++)
    if (ops[i].kind == REC_SYNC && which-- == 0)
      return i;
  return n;
}

/* The invariants of one commit's log (the batch's data writes come
 * first in the log).  zeroed: areas the commit must zero; written:
 * areas it must write.
 */
static void
check_commit_log (struct fix *f, unsigned ndata, uint64_t first_zero,
                  unsigned nzero, uint64_t first_area, unsigned nareas)
{
  struct rec_op *ops;
  size_t n = recording_io_log (f->rec, &ops);
  size_t s1 = index_of_sync (ops, n, 0), s2 = index_of_sync (ops, n, 1);
  unsigned syncs = 0, zeroes = 0, areas = 0, data = 0;

  ck_assert_msg (s1 < n && s2 < n, "fewer than two syncs");
  for (size_t i = 0; i < n; i++) {
    const struct rec_op *o = &ops[i];

    ck_assert (o->kind == REC_PWRITE || o->kind == REC_SYNC);
    if (o->kind == REC_SYNC) {
      syncs++;
      continue;
    }
    ck_assert_uint_eq (o->length, CB);
    if (!is_area_offset (o->offset)) {
      /* Data: before the first sync. */
      ck_assert_msg (i < s1, "data write at %" PRIu64 " after the first "
                     "sync", o->offset);
      data++;
    }
    else if (i < s1) {
      /* Zeroing the successors of areas this batch fills. */
      ck_assert_uint_eq (o->offset, area_offset (first_zero + zeroes));
      zeroes++;
    }
    else {
      /* The areas, between the two syncs. */
      ck_assert_msg (i > s1 && i < s2, "area write at op %zu, syncs at "
                     "%zu and %zu", i, s1, s2);
      ck_assert_uint_eq (o->offset, area_offset (first_area + areas));
      areas++;
    }
  }
  ck_assert_uint_eq (data, ndata);
  ck_assert_uint_eq (zeroes, nzero);
  ck_assert_uint_eq (areas, nareas);
  ck_assert_uint_eq (syncs, 2);
  ck_assert_uint_eq (s2, n - 1);
  free (ops);
}

START_TEST (test_order_exact)
{
  struct fix f;
  struct rec_op *ops;
  size_t n;

  fix_open (&f);
  batch (&f, 3);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  n = recording_io_log (f.rec, &ops);
  ck_assert_uint_eq (n, 6);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq (ops[i].kind, REC_PWRITE);
    ck_assert_uint_eq (ops[i].offset, (2 + i) * CB);
  }
  ck_assert_int_eq (ops[3].kind, REC_SYNC);
  ck_assert_int_eq (ops[4].kind, REC_PWRITE);
  ck_assert_uint_eq (ops[4].offset, CB);          /* area 0 */
  ck_assert_uint_eq (ops[4].length, CB);
  ck_assert_int_eq (ops[5].kind, REC_SYNC);
  free (ops);
  check_disk (&f, 3);
  fix_close (&f);
}
END_TEST

START_TEST (test_two_syncs_any_batch)
{
  static const unsigned sizes[] = { 1, 2, 17, 100, 135 };
  struct fix f;
  unsigned done = 0;

  fix_open (&f);
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    recording_io_clear (f.rec);
    batch (&f, sizes[k]);
    ck_assert_int_eq (cow_store_commit (f.s), 0);
    check_commit_log (&f, sizes[k], 0, 0, 0, 1);
    done += sizes[k];
    check_disk (&f, done);
  }
  ck_assert_uint_eq (done, 255);
  check_reopen (&f, done);
  fix_close (&f);
}
END_TEST

START_TEST (test_idle_commit)
{
  struct fix f;
  struct cow_usage u;

  fix_open (&f);
  /* Nothing written since the store was made. */
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_PWRITE), 0);
  batch (&f, 4);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 2);
  recording_io_clear (f.rec);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq (cow_store_commit (f.s), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_PWRITE), 0);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.pending, 0);
  ck_assert_uint_eq (u.records, 4);
  fix_close (&f);
}
END_TEST

/* A snapshot write into an already mapped chunk adds no record, but the
 * commit still makes it durable: a sync after the write, and only one
 * (there are no areas to write after it).
 */
START_TEST (test_data_only_commit)
{
  struct fix f;
  struct rec_op *ops;
  size_t n, last_write = 0, last_sync = 0;
  uint8_t buf[100];

  fix_open (&f);
  batch (&f, 1);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  recording_io_clear (f.rec);
  memset (buf, 'x', sizeof buf);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, sizeof buf,
                                         f.old[0] * CB + 10, false), 0);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  n = recording_io_log (f.rec, &ops);
  for (size_t i = 0; i < n; i++) {
    if (ops[i].kind == REC_PWRITE) {
      ck_assert (!is_area_offset (ops[i].offset));
      last_write = i;
    }
    if (ops[i].kind == REC_SYNC)
      last_sync = i;
  }
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 1);
  ck_assert_uint_gt (last_sync, last_write);
  free (ops);
  fix_close (&f);
}
END_TEST

START_TEST (test_fill_area)
{
  struct fix f;
  struct rec_op *ops;
  size_t n, size;
  const uint8_t *d;

  fix_open (&f);
  batch (&f, 250);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  recording_io_clear (f.rec);
  batch (&f, 6);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  check_commit_log (&f, 6, 1, 1, 0, 1);
  n = recording_io_log (f.rec, &ops);
  ck_assert_uint_eq (n, 10);
  ck_assert_uint_eq (ops[6].offset, area_offset (1));     /* zeroed */
  ck_assert_int_eq (ops[7].kind, REC_SYNC);
  ck_assert_uint_eq (ops[8].offset, area_offset (0));
  free (ops);
  /* Area 1 was garbage: now zero. */
  d = cow_io_mem_data (f.mem, &size);
  for (size_t i = 0; i < CB; i++)
    ck_assert_uint_eq (d[area_offset (1) + i], 0);
  check_disk (&f, 256);

  /* The next batch goes to area 1 alone. */
  recording_io_clear (f.rec);
  batch (&f, 2);
  ck_assert_uint_eq (f.new[256], 259);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  check_commit_log (&f, 2, 0, 0, 1, 1);
  check_disk (&f, 258);
  check_reopen (&f, 258);
  fix_close (&f);
}
END_TEST

/* A batch of exactly E from empty fills area 0 in one go. */
START_TEST (test_fill_area_one_batch)
{
  struct fix f;
  struct cow_usage u;

  fix_open (&f);
  batch (&f, E);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  check_commit_log (&f, E, 1, 1, 0, 1);
  check_disk (&f, E);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.current_area, 1);
  ck_assert_uint_eq (u.metadata_sectors, 3 * CS);
  ck_assert_uint_eq (u.allocated_sectors, (E + 3) * CS);
  check_reopen (&f, E);
  fix_close (&f);
}
END_TEST

START_TEST (test_three_areas)
{
  struct fix f;

  fix_open (&f);
  /* One batch of more than an area: the background committer, which
   * would start once an area's worth is pending, would split it.
   */
  store_set_background_commit (f.s, false);
  batch (&f, 250);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  recording_io_clear (f.rec);
  batch (&f, 6 + E + 10);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  /* Areas 1 and 2 zeroed, then areas 0, 1, 2 written: two syncs. */
  check_commit_log (&f, 6 + E + 10, 1, 2, 0, 3);
  check_disk (&f, 250 + 6 + E + 10);
  ck_assert_int_eq (cow_store_close (f.s), 0);
  f.s = NULL;
  check_reopen (&f, 250 + 6 + E + 10);
  fix_close (&f);
}
END_TEST

/* Group commit. */
#define THREADS 8
#define PER_THREAD 40

struct worker {
  struct fix *f;
  pthread_mutex_t *lock;
  unsigned id;
  int err;
};

static void *
work (void *arg)
{
  struct worker *w = arg;
  struct fix *f = w->f;
  uint8_t buf[CB];

  for (unsigned i = 0; i < PER_THREAD; i++) {
    chunk_t old = w->id * PER_THREAD + i, nc;
    int r;

    r = cow_store_allocate (f->s, &nc);
    if (r == 0) {
      pattern_fill (buf, CB, DATA_SEED, old * CB);
      r = cow_io_pwrite (f->rec, buf, CB, nc * CB);
    }
    if (r == 0)
      r = cow_store_add_exception (f->s, old, nc);
    if (r == 0)
      r = cow_store_commit (f->s);
    if (r < 0) {
      w->err = r;
      return NULL;
    }
    f->old[old] = old;
    f->new[old] = nc;
  }
  return NULL;
}

START_TEST (test_group_commit)
{
  static const unsigned delays[] = { 0, 1000 };
  const unsigned commits = THREADS * PER_THREAD;
  struct fix f;
  pthread_t th[THREADS];
  struct worker w[THREADS];
  unsigned syncs, areas = 0;
  struct rec_op *ops;
  size_t n;

  fix_open (&f);
  recording_io_set_sync_delay (f.rec, delays[_i]);
  for (unsigned t = 0; t < THREADS; t++) {
    w[t] = (struct worker) { .f = &f, .id = t };
    ck_assert_int_eq (pthread_create (&th[t], NULL, work, &w[t]), 0);
  }
  for (unsigned t = 0; t < THREADS; t++) {
    pthread_join (th[t], NULL);
    ck_assert_int_eq (w[t].err, 0);
  }
  f.n = commits;
  syncs = recording_io_count (f.rec, REC_SYNC);
  n = recording_io_log (f.rec, &ops);
  for (size_t i = 0; i < n; i++)
    areas += ops[i].kind == REC_PWRITE && is_area_offset (ops[i].offset);
  free (ops);
  fprintf (stderr, "group commit, sync delay %u us: %u commits, %u syncs, "
           "%u area writes\n", delays[_i], commits, syncs, areas);
  /* Two syncs per commit with records, one for a commit that finds
   * only a write count bumped after the last batch was taken.
   */
  ck_assert_uint_ge (syncs, 2);
  ck_assert_uint_le (syncs, 2 * commits);
  if (delays[_i])
    /* Commits waiting on a slow sync share the next one. */
    ck_assert_msg (syncs < commits, "%u syncs for %u commits: no group "
                   "commit", syncs, commits);
  ck_assert_int_eq (cow_store_close (f.s), 0);
  f.s = NULL;
  check_reopen (&f, commits);
  fix_close (&f);
}
END_TEST

/* Fault injection. */

/* A failed store refuses everything that would write, with -EIO. */
static void
check_failed (struct fix *f)
{
  chunk_t nc;
  uint8_t buf[CB];

  memset (buf, 'z', sizeof buf);
  ck_assert_int_eq (cow_store_commit (f->s), -EIO);
  ck_assert_int_eq (cow_store_allocate (f->s, &nc), -EIO);
  ck_assert_int_eq (cow_store_add_exception (f->s, 3000, 1000), -EIO);
  ck_assert_int_eq (cow_snapshot_pwrite (f->s, buf, CB, 2 * CB, false),
                    -EIO);
  ck_assert_int_eq (cow_snapshot_pwrite (f->s, buf, 512, 2 * CB, true),
                    -EIO);
  ck_assert_int_eq (cow_store_commit (f->s), -EIO);
}

enum fault { SYNC_1, SYNC_2, AREA_WRITE, SYNC_ENOSPC };

START_TEST (test_fault)
{
  const enum fault which = _i;
  struct fix f;
  unsigned before;
  int r;

  fix_open (&f);
  batch (&f, 5);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  before = f.n;
  batch (&f, 3);
  switch (which) {
  case SYNC_1: cow_io_mem_fail (f.mem, "sync", 1, EIO, false); break;
  case SYNC_2: cow_io_mem_fail (f.mem, "sync", 2, EIO, false); break;
  case AREA_WRITE: cow_io_mem_fail (f.mem, "pwrite", 1, EIO, false); break;
  /* A sync that fails with ENOSPC (writeback found no room) is a failed
   * sync all the same: no retry.
   */
  case SYNC_ENOSPC: cow_io_mem_fail (f.mem, "sync", 1, ENOSPC, false); break;
  }
  r = cow_store_commit (f.s);
  ck_assert_int_eq (r, which == SYNC_ENOSPC ? -ENOSPC : -EIO);
  ck_assert_uint_eq (f.m.errors, 1);
  ck_assert_ptr_nonnull (strstr (f.m.last_error,
                                 which == AREA_WRITE ? "write area 0"
                                 : "sync"));
  /* The fault was one-off, but the store stays failed. */
  check_failed (&f);
  cow_store_close (f.s);
  f.s = NULL;
  if (which != SYNC_2) {
    /* The batch's area was never written after a good sync. */
    check_disk (&f, before);
  }
  check_reopen (&f, before);
  fix_close (&f);
}
END_TEST

/* After a failed commit, a write to a chunk that is already mapped (no
 * allocation, no record) must fail too: snapcow.h promises that "every
 * later write and commit returns -EIO".
 */
START_TEST (test_fault_mapped_write)
{
  struct fix f;
  uint8_t buf[CB];
  size_t size;
  const uint8_t *d;
  uint8_t before[CB];

  fix_open (&f);
  batch (&f, 2);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  batch (&f, 1);
  cow_io_mem_fail (f.mem, "sync", 1, EIO, false);
  ck_assert_int_eq (cow_store_commit (f.s), -EIO);
  d = cow_io_mem_data (f.mem, &size);
  memcpy (before, d + f.new[0] * CB, CB);
  memset (buf, 'z', sizeof buf);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, 512, f.old[0] * CB,
                                         false), -EIO);
  ck_assert_int_eq (cow_snapshot_zero (f.s, CB, f.old[0] * CB, false, false),
                    -EIO);
  d = cow_io_mem_data (f.mem, &size);
  assert_bytes (d + f.new[0] * CB, before, CB,
                "mapped chunk after the store failed");
  cow_store_close (f.s);
  f.s = NULL;
  fix_close (&f);
}
END_TEST

/* A full filesystem.  A commit's pwrite fails with ENOSPC: nth = 1
 * zeroing area 1 (phase A), 2 writing area 0, 3 writing area 1 after
 * area 0 landed (phase B).  The commit fails, the store does not: the
 * batch stays pending ahead of newer records, and once there is room
 * the next commit writes them all, in order.
 */
START_TEST (test_enospc_retry)
{
  static const char *const where[] = {
    "zero area 1", "write area 0", "write area 1"
  };
  struct fix f;
  struct cow_usage u;
  chunk_t nc;
  uint8_t buf[CB], want[CB];

  fix_open (&f);
  batch (&f, 250);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  batch (&f, 10);                       /* fills area 0, 4 in area 1 */
  cow_io_mem_fail (f.mem, "pwrite", _i + 1, ENOSPC, false);
  ck_assert_int_eq (cow_store_commit (f.s), -ENOSPC);
  ck_assert_uint_eq (f.m.errors, 1);
  ck_assert_msg (strstr (f.m.last_error, where[_i]) != NULL,
                 "message \"%s\" does not name \"%s\"", f.m.last_error,
                 where[_i]);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, 260);
  ck_assert_uint_eq (u.pending, 10);
  /* The snapshot still serves the uncommitted chunks. */
  ck_assert (cow_store_lookup (f.s, f.old[259], &nc));
  ck_assert_int_eq (cow_snapshot_pread (f.s, buf, CB, f.old[259] * CB), 0);
  pattern_fill (want, CB, DATA_SEED, f.old[259] * CB);
  assert_bytes (buf, want, CB, "uncommitted chunk after ENOSPC");
  /* Space is back: newer records join, all are committed in order. */
  batch (&f, 3);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.pending, 0);
  ck_assert_uint_eq (u.current_area, 1);
  check_disk (&f, f.n);
  ck_assert_int_eq (cow_store_close (f.s), 0);
  f.s = NULL;
  check_reopen (&f, f.n);
  fix_close (&f);
}
END_TEST

/* Failing commits on a full filesystem log one error, not one each;
 * after something succeeded, the next failure is logged again.
 */
START_TEST (test_enospc_logs_once)
{
  struct fix f;

  fix_open (&f);
  batch (&f, 250);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  batch (&f, 10);
  for (int i = 0; i < 5; i++) {
    cow_io_mem_fail (f.mem, "pwrite", 1, ENOSPC, false);
    ck_assert_int_eq (cow_store_commit (f.s), -ENOSPC);
  }
  ck_assert_uint_eq (f.m.errors, 1);
  batch (&f, 1);                        /* an allocation succeeds */
  cow_io_mem_fail (f.mem, "pwrite", 1, ENOSPC, false);
  ck_assert_int_eq (cow_store_commit (f.s), -ENOSPC);
  ck_assert_uint_eq (f.m.errors, 2);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  check_disk (&f, f.n);
  check_reopen (&f, f.n);
  fix_close (&f);
}
END_TEST

/* One more record if an allocation succeeds, as batch does: the
 * allocation's result.
 */
static int
try_one (struct fix *f)
{
  uint8_t buf[CB];
  chunk_t old = 3 * f->n + 1, nc;
  int r = cow_store_allocate (f->s, &nc);

  if (r < 0)
    return r;
  ck_assert_uint_eq (nc, t_data_chunk (CS, f->n));
  pattern_fill (buf, CB, DATA_SEED, old * CB);
  ck_assert_int_eq (cow_io_pwrite (f->rec, buf, CB, nc * CB), 0);
  ck_assert_int_eq (cow_store_add_exception (f->s, old, nc), 0);
  f->old[f->n] = old;
  f->new[f->n] = nc;
  f->n++;
  return 0;
}

/* Allocate until the reservation fails: the chunks reserved ahead are
 * used up first.  Returns how many succeeded.
 */
static unsigned
until_full (struct fix *f)
{
  unsigned ok = 0;
  int r;

  while ((r = try_one (f)) == 0)
    ok++;
  ck_assert_int_eq (r, -ENOSPC);
  ck_assert_uint_le (ok, RESERVE_AHEAD_MAX);
  return ok;
}

/* With a reserve op (a file on a filesystem), every chunk handed out,
 * and the area it steps over, is reserved first (a few chunks ahead,
 * not one call per chunk), so a commit never needs new space.  When
 * the reservation finds no room: -ENOSPC, the chunk is given back, one
 * error for any number of failing writes, writes to copied chunks and
 * flushes still work; when room is back, writes work again.
 */
START_TEST (test_reserve)
{
  const unsigned N = 20;
  struct fix f;
  struct rec_op *ops;
  struct cow_usage u, u2;
  size_t n;
  uint64_t to = 2 * CB;
  unsigned calls = 0;
  uint8_t buf[CB], want[CB];
  chunk_t nc;

  fix_open (&f);
  recording_io_set_reserve (f.rec, 0);
  batch (&f, E);
  /* Contiguous reservations from chunk 2 past area 1. */
  n = recording_io_log (f.rec, &ops);
  for (size_t i = 0; i < n; i++) {
    if (ops[i].kind != REC_RESERVE)
      continue;
    ck_assert_uint_eq (ops[i].offset, to);
    ck_assert_uint_le (ops[i].length, (RESERVE_AHEAD_MAX + 2) * CB);
    to += ops[i].length;
    calls++;
  }
  free (ops);
  ck_assert_uint_gt (to, area_offset (1));
  ck_assert_msg (calls > 0 && calls <= E / 8, "%u reserve calls for %u "
                 "chunks", calls, E);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  check_disk (&f, E);

  /* The filesystem is full. */
  recording_io_set_reserve (f.rec, ENOSPC);
  until_full (&f);
  ck_assert_uint_eq (f.m.errors, 1);
  ck_assert_ptr_nonnull (strstr (f.m.last_error, "no space"));
  cow_store_usage (f.s, &u);
  memset (buf, 'n', sizeof buf);
  for (unsigned i = 0; i < N; i++)
    ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, 100,
                                           (3000 + i) * CB + 1, false),
                      -ENOSPC);
  ck_assert_int_eq (cow_store_allocate (f.s, &nc), -ENOSPC);
  ck_assert_msg (f.m.errors == 1, "%u errors for %u failing requests",
                 f.m.errors, N + 2);
  cow_store_usage (f.s, &u2);
  ck_assert_uint_eq (u2.allocated_sectors, u.allocated_sectors);
  ck_assert_uint_eq (u2.records, f.n);
  /* Writes that need no space, and flushes, work. */
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, 100, f.old[0] * CB + 50,
                                         false), 0);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  ck_assert_int_eq (cow_snapshot_pread (f.s, buf, CB, f.old[0] * CB), 0);
  pattern_fill (want, CB, DATA_SEED, f.old[0] * CB);
  memset (want + 50, 'n', 100);
  assert_bytes (buf, want, CB, "copied chunk written while full");
  ck_assert_uint_eq (f.m.errors, 1);

  /* Room again: the chunk given back is handed out now (try_one checks
   * the order).
   */
  recording_io_set_reserve (f.rec, 0);
  ck_assert_int_eq (try_one (&f), 0);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  /* And full again: logged again. */
  recording_io_set_reserve (f.rec, ENOSPC);
  until_full (&f);
  ck_assert_uint_eq (f.m.errors, 2);
  ck_assert_int_eq (cow_store_close (f.s), 0);
  f.s = NULL;
  check_disk (&f, f.n);
  fix_close (&f);
}
END_TEST

static Suite *
commit_suite (void)
{
  Suite *s = suite_create ("commit");
  TCase *tc = tcase_create ("order");

  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_order_exact);
  tcase_add_test (tc, test_two_syncs_any_batch);
  tcase_add_test (tc, test_idle_commit);
  tcase_add_test (tc, test_data_only_commit);
  tcase_add_test (tc, test_fill_area);
  tcase_add_test (tc, test_fill_area_one_batch);
  tcase_add_test (tc, test_three_areas);
  suite_add_tcase (s, tc);

  tc = tcase_create ("group");
  tcase_set_timeout (tc, 60);
  tcase_add_loop_test (tc, test_group_commit, 0, 2);
  suite_add_tcase (s, tc);

  tc = tcase_create ("faults");
  tcase_add_loop_test (tc, test_fault, 0, 4);
  tcase_add_test (tc, test_fault_mapped_write);
  suite_add_tcase (s, tc);

  tc = tcase_create ("enospc");
  tcase_add_loop_test (tc, test_enospc_retry, 0, 3);
  tcase_add_test (tc, test_enospc_logs_once);
  tcase_add_test (tc, test_reserve);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return run_suite (commit_suite ());
}
