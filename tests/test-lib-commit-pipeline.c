/* test-lib-commit-pipeline.c: the pipelined group commit and the
 * background committer (lib/commit.c), on memory backends seen through
 * tests/recording-io.c.
 *
 * Syncs are counted, never timed: a lone flusher pays exactly two syncs
 * per flush over new records, one over chunks already copied and none
 * when idle; writers that flush every 16 writes side by side share the
 * rounds, at most 1.2 syncs per flush on average with four of them and
 * never more than two per flush with any number.  An area's worth of
 * pending records is committed in the background without a flush.
 * Then power loss at every sync of a workload where records keep
 * arriving while each sync runs (a sync hook writes new chunks after
 * the sync, so their data is not stable when the next round starts):
 * every flush that returned keeps its records and data, and no record
 * that survives points at data that did not.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "recording-io.h"
#include "test-lib-util.h"

#define CS 8                    /* 4K chunks */
#define CB 4096
#define E 256
#define COW_CHUNKS 2048
#define ORIGIN_CHUNKS 4096
#define DATA_SEED 200
#define ORIGIN_SEED 3

struct fix {
  struct msgs m;
  struct cow_io *mem, *rec, *origin;
  struct cow_store *s;
  pthread_mutex_t lock;
  chunk_t next_old;             /* the next origin chunk to copy */
  /* Origin chunks written, in the order their writes returned. */
  chunk_t written[COW_CHUNKS];
  unsigned n;
};

static struct cow_io *origin;

static uint64_t
area_offset (uint64_t area)
{
  return t_area_chunk (CS, area) * CB;
}

static bool
is_area_offset (uint64_t offset)
{
  return offset % CB == 0 && (offset / CB) % (E + 1) == 1;
}

/* A new store over a COW whose areas 1..5 (those that fit) hold
 * garbage, so an area
 * that fills before its successor is zeroed loads garbage.
 */
static void
fix_open_size (struct fix *f, bool track_power, size_t cow_chunks)
{
  uint8_t *img = calloc (cow_chunks, CB);
  struct cow_store_params p;

  memset (f, 0, sizeof *f);
  msgs_init (&f->m);
  p = params_for (&f->m, CS);
  ck_assert_ptr_nonnull (img);
  for (uint64_t a = 1; a <= 5 && area_offset (a) < cow_chunks * CB; a++)
    memset (img + area_offset (a), 0xee, CB);
  f->mem = cow_io_mem_new (img, cow_chunks * CB, false);
  free (img);
  f->rec = recording_io_new (f->mem);
  /* One origin for every store: nothing writes it. */
  if (origin == NULL)
    origin = origin_new ((size_t) ORIGIN_CHUNKS * CB, ORIGIN_SEED);
  f->origin = origin;
  ck_assert_int_eq (cow_store_open (f->rec, f->origin, &p, &f->s), 0);
  if (track_power)
    ck_assert_int_eq (cow_io_mem_track_power_loss (f->mem), 0);
  recording_io_clear (f->rec);
  pthread_mutex_init (&f->lock, NULL);
  f->next_old = 1;
}

static void
fix_open (struct fix *f, bool track_power)
{
  fix_open_size (f, track_power, COW_CHUNKS);
}

static void
fix_close (struct fix *f)
{
  if (f->s)
    cow_store_close (f->s);
  cow_io_close (f->rec);
  cow_io_close (f->mem);
  pthread_mutex_destroy (&f->lock);
}

/* A first write of a whole chunk (so nothing is read from the origin):
 * its result.
 */
static int
write_new_chunk (struct fix *f, bool fua)
{
  uint8_t buf[CB];
  chunk_t old;
  int r;

  pthread_mutex_lock (&f->lock);
  old = f->next_old;
  f->next_old += 2;
  pthread_mutex_unlock (&f->lock);
  ck_assert_uint_lt (old, ORIGIN_CHUNKS);
  pattern_fill (buf, CB, DATA_SEED, old * CB);
  r = cow_snapshot_pwrite (f->s, buf, CB, old * CB, fua);
  if (r == 0) {
    pthread_mutex_lock (&f->lock);
    f->written[f->n++] = old;
    pthread_mutex_unlock (&f->lock);
  }
  return r;
}

/* Reopen f->mem with a fresh store: it loads cleanly; the first `must`
 * chunks written are mapped; every mapped chunk (of those written)
 * holds its data; no other chunk is mapped.
 */
static void
check_image (struct fix *f, unsigned must, const char *when)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, CS);
  struct cow_store *s;
  uint8_t buf[CB], want[CB];
  unsigned mapped = 0;
  chunk_t nc;

  msgs_init (&m);
  ck_assert_msg (cow_store_open (f->mem, f->origin, &p, &s) == 0,
                 "%s: the store does not open: %s", when, m.last_error);
  ck_assert_uint_eq (m.errors, 0);
  for (unsigned i = 0; i < f->n; i++) {
    chunk_t old = f->written[i];

    if (!cow_store_lookup (s, old, &nc)) {
      ck_assert_msg (i >= must, "%s: chunk %" PRIu64 ", written %u of %u "
                     "before the last flush, has no record", when, old, i,
                     must);
      continue;
    }
    mapped++;
    ck_assert_int_eq (cow_snapshot_pread (s, buf, CB, old * CB), 0);
    pattern_fill (want, CB, DATA_SEED, old * CB);
    ck_assert_msg (memcmp (buf, want, CB) == 0, "%s: chunk %" PRIu64
                   " has a record but not its data", when, old);
  }
  /* Chunks never written: odd origin chunks are never copied. */
  for (chunk_t old = 2; old < 64; old += 2)
    ck_assert (!cow_store_lookup (s, old, &nc));
  ck_assert_uint_ge (mapped, must);
  ck_assert_int_eq (cow_store_close (s), 0);
}

/* A lone flusher: two syncs for a flush over new records, whatever the
 * batch; one for a flush over chunks already copied; none when idle.
 * FUA on a new chunk is a whole commit: two.
 */
START_TEST (test_single_flusher)
{
  struct fix f;
  uint8_t buf[512];

  fix_open (&f, false);
  for (unsigned k = 0; k < 20; k++) {
    recording_io_clear (f.rec);
    for (unsigned i = 0; i < 16; i++)
      ck_assert_int_eq (write_new_chunk (&f, false), 0);
    ck_assert_int_eq (cow_store_commit (f.s), 0);
    ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 2);
  }
  /* 320 records: area 0 filled on the way, area 1 zeroed before. */
  recording_io_clear (f.rec);
  memset (buf, 'd', sizeof buf);
  for (unsigned i = 0; i < 4; i++)
    ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, sizeof buf,
                                           f.written[i] * CB + 512,
                                           false), 0);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, sizeof buf,
                                         f.written[7] * CB, false), 0);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 1);
  recording_io_clear (f.rec);
  for (unsigned i = 0; i < 3; i++)
    ck_assert_int_eq (cow_store_commit (f.s), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_PWRITE), 0);
  ck_assert_int_eq (write_new_chunk (&f, true), 0);
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 2);
  fix_close (&f);
}
END_TEST

/* Writers side by side, each flushing after every 16 first writes, the
 * sync slow (20 ms) against 16 writes in memory, as a disk's is, so
 * that writers meet in a commit even on a loaded machine.
 */
#define CYCLES 24

struct writer {
  struct fix *f;
  int err;
};

static void *
writer (void *arg)
{
  struct writer *w = arg;

  for (unsigned c = 0; c < CYCLES && w->err == 0; c++) {
    for (unsigned i = 0; i < 16 && w->err == 0; i++)
      w->err = write_new_chunk (w->f, false);
    if (w->err == 0)
      w->err = cow_store_commit (w->f->s);
  }
  return NULL;
}

START_TEST (test_concurrent_flushers)
{
  static const unsigned writers[] = { 1, 2, 4 };
  const unsigned W = writers[_i];
  const unsigned flushes = W * CYCLES;
  struct fix f;
  struct writer w[4];
  pthread_t th[4];
  unsigned syncs;

  fix_open (&f, false);
  recording_io_set_sync_delay (f.rec, 20000);
  for (unsigned t = 0; t < W; t++) {
    w[t] = (struct writer) { .f = &f };
    ck_assert_int_eq (pthread_create (&th[t], NULL, writer, &w[t]), 0);
  }
  for (unsigned t = 0; t < W; t++) {
    pthread_join (th[t], NULL);
    ck_assert_int_eq (w[t].err, 0);
  }
  syncs = recording_io_count (f.rec, REC_SYNC);
  fprintf (stderr, "%u writers, a flush every 16 writes: %u flushes, "
           "%u syncs, %.2f syncs per flush\n", W, flushes, syncs,
           (double) syncs / flushes);
  /* A round starts only for a flush not yet served and serves every
   * flush within two rounds: never more than two syncs per flush.
   */
  ck_assert_uint_le (syncs, 2 * flushes);
  if (W == 1)
    ck_assert_uint_eq (syncs, 2 * flushes);
  if (W >= 4)
    ck_assert_msg (5 * syncs <= 6 * flushes, "%u syncs for %u flushes: "
                   "more than 1.2 per flush", syncs, flushes);
  ck_assert_int_eq (cow_store_close (f.s), 0);
  f.s = NULL;
  check_image (&f, f.n, "after close");
  fix_close (&f);
}
END_TEST

/* No flush at all: once E records are pending, the background
 * committer commits them, in the kernel's order, and they survive a
 * power loss.  Then, on a new store, more than three areas' worth:
 * pending falls below E again by itself, and what is not pending
 * survives a power loss.  (A store is not used after its power loss:
 * it would take the writes that were lost for stable.)
 */
START_TEST (test_background_commit)
{
  struct fix f;
  struct cow_usage u;
  struct rec_op *ops;
  size_t n, s1 = SIZE_MAX, s2 = SIZE_MAX;
  unsigned syncs = 0;

  fix_open (&f, true);
  for (unsigned i = 0; i < E - 1; i++)
    ck_assert_int_eq (write_new_chunk (&f, false), 0);
  /* Below E nothing is committed (nothing woke the committer: this
   * does not depend on timing).
   */
  ck_assert_uint_eq (recording_io_count (f.rec, REC_SYNC), 0);
  ck_assert_int_eq (write_new_chunk (&f, false), 0);
  do {
    usleep (1000);
    cow_store_usage (f.s, &u);
  } while (u.pending > 0);
  ck_assert_uint_eq (u.records, E);
  ck_assert_uint_eq (u.current_area, 1);
  /* Data, area 1 zeroed, sync, area 0 written, sync. */
  n = recording_io_log (f.rec, &ops);
  for (size_t i = 0; i < n; i++) {
    if (ops[i].kind == REC_SYNC) {
      if (syncs++ == 0)
        s1 = i;
      else
        s2 = i;
      continue;
    }
    ck_assert_int_eq (ops[i].kind, REC_PWRITE);
    if (!is_area_offset (ops[i].offset))
      ck_assert_uint_lt (i, s1 == SIZE_MAX ? n : s1);
    else if (ops[i].offset == area_offset (1))
      ck_assert_msg (s1 == SIZE_MAX, "area 1 zeroed after the first sync");
    else {
      ck_assert_uint_eq (ops[i].offset, area_offset (0));
      ck_assert_msg (s1 != SIZE_MAX && s2 == SIZE_MAX, "area 0 written "
                     "before the first sync or after the second");
    }
  }
  free (ops);
  ck_assert_uint_eq (syncs, 2);
  ck_assert_uint_eq (s2, n - 1);
  /* Durable without a flush. */
  ck_assert_int_eq (cow_io_mem_power_loss (f.mem), 0);
  check_image (&f, E, "background commit, then power loss");
  fix_close (&f);

  /* A long run of first writes and no flush: the committer keeps up. */
  fix_open (&f, true);
  for (unsigned i = 0; i < 3 * E + 10; i++)
    ck_assert_int_eq (write_new_chunk (&f, false), 0);
  do {
    usleep (1000);
    cow_store_usage (f.s, &u);
  } while (u.pending >= E);
  ck_assert_uint_eq (u.records, f.n);
  ck_assert_uint_ge (u.current_area, 2);
  ck_assert_int_eq (cow_io_mem_power_loss (f.mem), 0);
  check_image (&f, f.n - u.pending, "long run, then power loss");
  fix_close (&f);
}
END_TEST

/* Power loss at every sync, records arriving while each sync runs. */
#define CRASH_FLUSHES 16
#define HOOK_WRITES 12
#define CRASH_COW_CHUNKS 768

struct crash_run {
  struct fix *f;
  unsigned hook_calls;
};

/* In every sync, after the inner one: new chunks, as writers finishing
 * their copies while a commit runs.
 */
static void
sync_hook (void *opaque)
{
  struct crash_run *c = opaque;

  c->hook_calls++;
  for (unsigned i = 0; i < HOOK_WRITES; i++)
    if (write_new_chunk (c->f, false) < 0)
      break;
}

/* The workload with sync `fail_at` (1-based; 0: none) failing and then
 * a power loss of kind `loss` (0: every unsynced write lost; else a
 * random subset, seeded, possibly torn).  Returns the syncs seen.
 */
static unsigned
crash_run (unsigned fail_at, unsigned loss)
{
  struct fix f;
  struct crash_run c = { .f = &f };
  unsigned acked = 0, flushed = 0, syncs;
  char when[128];

  fix_open_size (&f, true, CRASH_COW_CHUNKS);
  recording_io_set_sync_hook (f.rec, sync_hook, &c);
  if (fail_at)
    cow_io_mem_fail (f.mem, "sync", fail_at, EIO, true);
  for (unsigned k = 0; k < CRASH_FLUSHES; k++) {
    unsigned before;
    bool ok = true;

    for (unsigned i = 0; i < 16 && ok; i++)
      ok = write_new_chunk (&f, false) == 0;
    if (!ok)
      break;
    before = f.n;
    if (cow_store_commit (f.s) < 0)
      break;
    acked = before;
    flushed++;
  }
  syncs = recording_io_count (f.rec, REC_SYNC);
  if (fail_at == 0)
    ck_assert_uint_eq (flushed, CRASH_FLUSHES);
  else
    ck_assert_uint_lt (flushed, CRASH_FLUSHES);
  recording_io_set_sync_hook (f.rec, NULL, NULL);
  /* The power goes with the store still open (records the hook added
   * last are pending), or failed.
   */
  if (loss == 0)
    ck_assert_int_eq (cow_io_mem_power_loss (f.mem), 0);
  else
    ck_assert_int_eq (cow_io_mem_power_loss_random (f.mem, fail_at * 8 + loss,
                                                    NULL), 0);
  snprintf (when, sizeof when, "power loss %u at sync %u of %u", loss,
            fail_at, syncs);
  check_image (&f, acked, when);
  fix_close (&f);
  return syncs;
}

START_TEST (test_crash_every_sync)
{
  unsigned total = crash_run (0, 0);

  /* Two rounds per flush, each round but the first also writing the
   * records the last sync's hook added: 640 records, areas 0 and 1
   * filled on the way.
   */
  ck_assert_uint_eq (total, 2 * CRASH_FLUSHES);
  for (unsigned loss = 1; loss < 3; loss++)
    crash_run (0, loss);
  for (unsigned k = 1; k <= total; k++)
    for (unsigned loss = 0; loss < 3; loss++)
      crash_run (k, loss);
}
END_TEST

static Suite *
pipeline_suite (void)
{
  Suite *s = suite_create ("commit-pipeline");
  TCase *tc = tcase_create ("counts");

  /* CK_RUN_CASE=concurrent prints the syncs per flush alone. */
  tcase_add_test (tc, test_single_flusher);
  suite_add_tcase (s, tc);
  tc = tcase_create ("concurrent");
  tcase_set_timeout (tc, 120);
  tcase_add_loop_test (tc, test_concurrent_flushers, 0, 3);
  suite_add_tcase (s, tc);
  tc = tcase_create ("background");
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_background_commit);
  suite_add_tcase (s, tc);
  tc = tcase_create ("crash");
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_crash_every_sync);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return run_suite (pipeline_suite ());
}
