/* test-lib-crash.c: power loss at random points, on memory backends.
 *
 * Each run opens a store, applies a seeded random workload of sector
 * aligned writes (new chunks, overwrites, partial and whole chunks,
 * runs over several chunks), zeroes, flushes and FUA writes, sometimes
 * after a prefill that brings the store close to filling an area, with
 * one sync chosen at random failing: that is when the power goes.  The
 * crash is cow_io_mem_power_loss_random: the durable image plus any
 * subset of the unsynced writes, punches and grows, in any order, each
 * possibly torn at a sector boundary.  The store is reopened from what
 * is left (which validates every record), its areas are decoded here
 * as well, and each sector must hold either its version as of the last
 * successful flush or a version written after it: nothing older, and
 * nothing that was never written.  A run has 1 to 3 such sessions, each
 * continuing on the store the last crash left.
 *
 * Every sector a write touches is stamped with (write id, sector), so
 * the version in a sector can be read back from its bytes.
 * SNAPCOW_CRASH_RUNS sets the runs at 4K chunks, a quarter of it at
 * 16K (default 4000 and 2000, about 35 s); a
 * failing run prints its seed, and SNAPCOW_CRASH_SEED replays one
 * (SNAPCOW_CRASH_CHUNK=8 or 32 picks the chunk size; a line per crash
 * with SNAPCOW_CRASH_VERBOSE=1).
 *
 * SNAPCOW_CRASH_SESSIONS=1 keeps to one crash per run.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define MAX_ORIGIN_SECTORS (8192 * 4 + 6)  /* 16 MiB + a partial chunk */
#define MAX_LATER 64
#define ZERO_V (UINT64_MAX - 1)   /* the version of a zeroed sector */
#define BAD_V UINT64_MAX          /* no version at all */
#define MAX_WRITE_SECTORS 256

struct model {
  uint64_t flushed[MAX_ORIGIN_SECTORS]; /* version at the last flush; 0 origin */
  uint64_t current[MAX_ORIGIN_SECTORS];
  /* Versions written since the last flush, per sector (bounded: a sector
   * rewritten more often than this keeps its last MAX_LATER).
   */
  uint64_t later[MAX_ORIGIN_SECTORS][MAX_LATER];
  unsigned nr_later[MAX_ORIGIN_SECTORS];
};

static uint64_t origin_sectors;
static bool verbose;
static bool fixed_dev;            /* this run's COW device cannot grow */
static uint64_t crashes, unsynced, torn;
static uint64_t rng;

static uint64_t
next_rand (void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void
stamp (uint8_t *sector, uint64_t id, uint64_t s)
{
  for (int k = 0; k < 512; k += 16) {
    memcpy (sector + k, &id, 8);
    memcpy (sector + k + 8, &s, 8);
  }
}

/* The version stamped in a sector, or UINT64_MAX if it holds none. */
static uint64_t
version_of (const uint8_t *sector, uint64_t s)
{
  uint8_t want[512];
  uint64_t id;

  memcpy (&id, sector, 8);
  stamp (want, id, s);
  return memcmp (want, sector, 512) == 0 ? id : UINT64_MAX;
}

static bool
allowed (const struct model *m, uint64_t s, uint64_t v)
{
  if (v == m->flushed[s])
    return true;
  for (unsigned k = 0; k < m->nr_later[s]; k++)
    if (m->later[s][k] == v)
      return true;
  return false;
}

static void
flushed (struct model *m)
{
  memcpy (m->flushed, m->current, sizeof m->flushed);
  memset (m->nr_later, 0, sizeof m->nr_later);
}

static void
quiet (void *opaque __attribute__ ((unused)),
       enum cow_msg_level level __attribute__ ((unused)),
       const char *msg __attribute__ ((unused)))
{
}

static void
note_write (struct model *m, uint64_t first, uint64_t n, uint64_t v)
{
  for (uint64_t k = 0; k < n; k++) {
    uint64_t sec = first + k;
    m->current[sec] = v;
    if (m->nr_later[sec] < MAX_LATER)
      m->later[sec][m->nr_later[sec]++] = v;
    else
      m->later[sec][MAX_LATER - 1] = v;
  }
}

static uint64_t
le64 (const uint8_t *p)
{
  uint64_t v = 0;
  for (int k = 7; k >= 0; k--)
    v = v << 8 | p[k];
  return v;
}

/* Decode the image's areas independently of lib/ (cow-format.md) and
 * check every record.  Returns the number of records, or -1 (having
 * printed why).
 */
static int64_t
decode_areas (const uint8_t *img, size_t size, uint32_t cs, uint64_t seed)
{
  uint64_t cb = (uint64_t) cs * 512, E = cb / 16;
  uint64_t chunks = size / cb, ochunks = (origin_sectors + cs - 1) / cs;
  uint8_t *seen_old = calloc (ochunks + 1, 1), *seen_new = calloc (chunks + 1, 1);
  int64_t n = 0;

  ck_assert (seen_old && seen_new);
  if (size < 512 || (uint32_t) le64 (img) == 0) {
    /* No header: a new store, no records. */
    goto out;
  }
  if ((uint32_t) le64 (img) != 0x70416e53u || (uint32_t) le64 (img + 8) != 1
      || (uint32_t) le64 (img + 12) != cs) {
    printf ("seed %" PRIu64 " chunk %u: bad header\n", seed, cs);
    n = -1;
    goto out;
  }
  for (uint64_t area = 0;; area++) {
    uint64_t loc = 1 + area * (E + 1), i;
    if (loc >= chunks) {
      printf ("seed %" PRIu64 " chunk %u: area %" PRIu64 " past the end\n",
              seed, cs, area);
      n = -1;
      goto out;
    }
    for (i = 0; i < E; i++) {
      const uint8_t *r = img + loc * cb + i * 16;
      uint64_t old = le64 (r), new = le64 (r + 8);
      if (new == 0)
        break;
      if (new % (E + 1) == 1 || new >= chunks || old >= ochunks
          || seen_old[old] || seen_new[new]) {
        printf ("seed %" PRIu64 " chunk %u: area %" PRIu64 " record %"
                PRIu64 " (%" PRIu64 " -> %" PRIu64 ") is bad: %s\n",
                seed, cs, area, i, old, new,
                new % (E + 1) == 1 ? "metadata chunk"
                : new >= chunks ? "past the end"
                : old >= ochunks ? "past the origin"
                : seen_old[old] ? "duplicate old_chunk" : "duplicate new_chunk");
        n = -1;
        goto out;
      }
      seen_old[old] = seen_new[new] = 1;
      n++;
    }
    if (i < E)
      break;
  }
 out:
  free (seen_old);
  free (seen_new);
  return n;
}

/* Crash the store, reopen what is left on a fresh backend (*cowp), and
 * check it against the model; the model then takes what was found as
 * its flushed state.  Returns false (having printed why) on a failure.
 */
static bool
crash_and_check (uint64_t seed, uint32_t cs, const uint8_t *origin_data,
                 struct model *m, struct cow_io *origin,
                 const struct cow_store_params *p, struct cow_io **cowp,
                 struct cow_store **sp, unsigned session, unsigned ops)
{
  static uint8_t got[MAX_ORIGIN_SECTORS * 512];
  struct cow_io_mem_crash st;
  struct cow_usage u;
  const uint8_t *img;
  size_t img_size;
  struct cow_io *after;
  int64_t records;
  bool ok = true;

  ck_assert_int_eq (cow_io_mem_power_loss_random (*cowp, next_rand (), &st),
                    0);
  crashes++;
  unsynced += st.unsynced;
  torn += st.torn;
  img = cow_io_mem_data (*cowp, &img_size);
  after = cow_io_mem_new (img, img_size, !fixed_dev);
  ck_assert_ptr_nonnull (after);
  records = decode_areas (img, img_size, cs, seed);
  cow_store_close (*sp);        /* writes to the old image only */
  cow_io_close (*cowp);
  *sp = NULL;
  *cowp = after;
  if (verbose)
    printf ("seed %" PRIu64 " chunk %u session %u: crash after %u ops: %u "
            "unsynced changes, %u lost, %u landed, %u torn; %" PRId64
            " records\n", seed, cs, session, ops, st.unsynced, st.lost,
            st.landed, st.torn, records);
  if (records < 0)
    return false;
  if (cow_store_open (after, origin, p, sp) < 0) {
    printf ("seed %" PRIu64 " chunk %u: the store does not open after "
            "crash %u\n", seed, cs, session);
    return false;
  }
  cow_store_usage (*sp, &u);
  if (u.records != (uint64_t) records) {
    printf ("seed %" PRIu64 " chunk %u: the store loaded %" PRIu64
            " records, the areas hold %" PRId64 "\n", seed, cs, u.records,
            records);
    ok = false;
  }
  ck_assert_int_eq (cow_snapshot_pread (*sp, got, origin_sectors * 512, 0), 0);
  for (uint64_t sec = 0; sec < origin_sectors && ok; sec++) {
    const uint8_t *g = got + sec * 512;
    uint64_t v;
    static const uint8_t zero[512];

    if (memcmp (g, origin_data + sec * 512, 512) == 0)
      v = 0;
    else if (memcmp (g, zero, 512) == 0)
      v = ZERO_V;
    else
      v = version_of (g, sec);
    if (!allowed (m, sec, v)) {
      printf ("seed %" PRIu64 " chunk %u: after crash %u (%u ops) sector %"
              PRIu64 " holds version %" PRId64 ", flushed %" PRId64 "\n",
              seed, cs, session, ops, sec,
              v == BAD_V ? -1 : v == ZERO_V ? -2 : (int64_t) v,
              m->flushed[sec] == ZERO_V ? -2 : (int64_t) m->flushed[sec]);
      ok = false;
    }
    m->current[sec] = v;
  }
  /* What the crash left is the durable state now. */
  flushed (m);
  ck_assert_int_eq (cow_io_mem_track_power_loss (after), 0);
  return ok;
}

/* One run; returns false (having printed why) on a failure. */
static bool
run (uint64_t seed, uint32_t chunk_sectors, const uint8_t *origin_data,
     struct cow_io *origin, unsigned max_sessions)
{
  static struct model m;
  struct cow_store_params p = { .chunk_sectors = chunk_sectors,
                                .message = quiet };
  struct cow_io *cow;
  struct cow_store *s;
  static uint8_t buf[MAX_WRITE_SECTORS * 512];
  uint64_t id = 0, ochunks = (origin_sectors + chunk_sectors - 1)
    / chunk_sectors, E = chunk_sectors * 32;
  unsigned sessions;
  bool ok = true;

  rng = seed * 2654435761u + 1;
  memset (m.flushed, 0, origin_sectors * sizeof m.flushed[0]);
  memset (m.current, 0, origin_sectors * sizeof m.current[0]);
  memset (m.nr_later, 0, origin_sectors * sizeof m.nr_later[0]);
  sessions = 1 + next_rand () % max_sessions;
  fixed_dev = next_rand () % 4 == 0;
  if (fixed_dev) {
    /* A fixed-size device that held something else before: every chunk
     * but the header is garbage, so areas are not zero until the store
     * zeroes them, and a stray chunk shows.
     */
    size_t size = (size_t) (ochunks + ochunks / 2 + 8) * chunk_sectors * 512;
    uint8_t *junk = malloc (size);
    ck_assert_ptr_nonnull (junk);
    memset (junk, 0xee, size);
    memset (junk, 0, chunk_sectors * 512);
    cow = cow_io_mem_new (junk, size, false);
    free (junk);
  }
  else
    cow = cow_io_mem_new (NULL, 0, true);
  ck_assert_int_eq (cow_io_mem_track_power_loss (cow), 0);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);

  /* Half the runs start close to filling an area: whole chunks of
   * distinct origin chunks, committed.
   */
  if (next_rand () % 2) {
    uint64_t areas = ochunks / E, target, c0 = next_rand () % ochunks;
    if (areas == 0)
      target = next_rand () % ochunks;
    else {
      target = E * (1 + next_rand () % areas);
      target -= next_rand () % 48 < target ? next_rand () % 48 : 0;
      if (target > ochunks - 1)
        target = ochunks - 1;
    }
    for (uint64_t k = 0; k < target; k++) {
      uint64_t c = (c0 + k) % (ochunks - 1);   /* skip the partial chunk */
      uint64_t first = c * chunk_sectors;
      id++;
      for (uint64_t j = 0; j < chunk_sectors; j++)
        stamp (buf + j * 512, id, first + j);
      ck_assert_int_eq (cow_snapshot_pwrite (s, buf, chunk_sectors * 512,
                                             first * 512, false), 0);
      note_write (&m, first, chunk_sectors, id);
    }
    ck_assert_int_eq (cow_store_commit (s), 0);
    flushed (&m);
  }

  for (unsigned session = 1; session <= sessions && ok; session++) {
    unsigned ops, nops = 50 + next_rand () % 350;
    /* Flushes now often, now rarely, so that crashes find few or many
     * unsynced writes.
     */
    uint64_t flush_pct = 1 + next_rand () % 15;

    /* The power goes at the nth sync from now. */
    cow_io_mem_fail (cow, "sync", 1 + next_rand () % 40, EIO, true);
    for (ops = 0; ops < nops; ops++) {
      uint64_t r = next_rand () % 100;
      if (r < flush_pct) {
        if (cow_store_commit (s) < 0)
          break;
        flushed (&m);
        continue;
      }
      uint64_t chunk = next_rand () % ochunks;
      uint64_t first = chunk * chunk_sectors;
      uint64_t n;
      bool fua = next_rand () % 100 < 5;
      int w;

      /* Whole chunks, parts of one, or a run over several. */
      switch (next_rand () % 4) {
      case 0: n = chunk_sectors; break;
      case 1: first += next_rand () % chunk_sectors; n = 1 + next_rand () % 8;
        break;
      case 2: first += next_rand () % chunk_sectors;
        n = 1 + next_rand () % 64; break;
      default: n = chunk_sectors * (1 + next_rand () % 8); break;
      }
      if (first >= origin_sectors)
        first = origin_sectors - 1;
      if (n > origin_sectors - first)
        n = origin_sectors - first;
      if (n > MAX_WRITE_SECTORS)
        n = MAX_WRITE_SECTORS;
      if (r < flush_pct + 4) {
        /* Zero (whole mapped chunks are punched). */
        w = cow_snapshot_zero (s, n * 512, first * 512, fua, false);
        note_write (&m, first, n, ZERO_V);
      }
      else {
        id++;
        for (uint64_t k = 0; k < n; k++)
          stamp (buf + k * 512, id, first + k);
        w = cow_snapshot_pwrite (s, buf, n * 512, first * 512, fua);
        /* A write that fails (its FUA's sync was the one) may or may not
         * have landed, as NBD allows: its version is allowed too.
         */
        note_write (&m, first, n, id);
      }
      if (w < 0)
        break;
      if (fua)
        flushed (&m);
    }
    if (!crash_and_check (seed, chunk_sectors, origin_data, &m, origin, &p,
                          &cow, &s, session, ops))
      ok = false;
  }
  if (s)
    cow_store_close (s);
  cow_io_close (cow);
  return ok;
}

static void
campaign (uint32_t chunk_sectors, uint64_t nr_sectors, uint64_t default_runs,
          unsigned divisor)
{
  static uint8_t origin_data[MAX_ORIGIN_SECTORS * 512];
  const char *e = getenv ("SNAPCOW_CRASH_RUNS");
  const char *one = getenv ("SNAPCOW_CRASH_SEED");
  const char *only = getenv ("SNAPCOW_CRASH_CHUNK");
  const char *ses = getenv ("SNAPCOW_CRASH_SESSIONS");
  uint64_t runs = e ? strtoull (e, NULL, 10) / divisor : default_runs;
  uint64_t failed = 0;
  unsigned max_sessions = ses ? atoi (ses) : 3;
  struct cow_io *origin;

  if (only && strtoul (only, NULL, 10) != chunk_sectors)
    return;
  verbose = getenv ("SNAPCOW_CRASH_VERBOSE") != NULL;
  origin_sectors = nr_sectors;
  if (max_sessions < 1)
    max_sessions = 1;
  /* The origin's bytes never look like a stamp, nor like zeroes. */
  for (size_t k = 0; k < nr_sectors * 512; k++)
    origin_data[k] = (uint8_t) (k * 7 + 3) ^ 0xa5;
  origin = cow_io_mem_new (origin_data, nr_sectors * 512, false);
  ck_assert_ptr_nonnull (origin);
  if (one) {
    bool ok = run (strtoull (one, NULL, 10), chunk_sectors, origin_data,
                   origin, max_sessions);
    cow_io_close (origin);
    ck_assert (ok);
    return;
  }
  for (uint64_t seed = 1; seed <= runs; seed++)
    if (!run (seed, chunk_sectors, origin_data, origin, max_sessions))
      failed++;
  cow_io_close (origin);
  printf ("chunk %u sectors: %" PRIu64 " runs, %" PRIu64 " crashes (%"
          PRIu64 " unsynced changes, %" PRIu64 " torn), %" PRIu64
          " failed\n", chunk_sectors, runs, crashes, unsynced, torn, failed);
  ck_assert_uint_eq (failed, 0);
}

/* 4K chunks: 4 MiB + a partial chunk, up to 4 areas of 256 records. */
START_TEST (test_crash_4k)
{
  campaign (8, 8192 + 6, 4000, 1);
}
END_TEST

/* 16K chunks: 16 MiB + a partial chunk, one area of 1024 records.
 * Slower per run: a quarter of SNAPCOW_CRASH_RUNS.
 */
START_TEST (test_crash_16k)
{
  campaign (32, 32768 + 6, 2000, 4);
}
END_TEST

int
main (void)
{
  Suite *su = suite_create ("crash");
  TCase *tc = tcase_create ("power loss");

  setvbuf (stdout, NULL, _IOLBF, 0);
  /* Images of many MiB come and go in every run: keep them on the heap
   * rather than mmap and unmap each one.
   */
  mallopt (M_MMAP_THRESHOLD, 64 << 20);
  mallopt (M_TRIM_THRESHOLD, 256 << 20);
  tcase_set_timeout (tc, 0);
  tcase_add_test (tc, test_crash_4k);
  tcase_add_test (tc, test_crash_16k);
  suite_add_tcase (su, tc);
  return run_suite (su);
}
