/* test-lib-crash.c: power loss at random points, on memory backends.
 *
 * Each run opens a store, applies a seeded random workload of sector
 * aligned writes (new chunks, overwrites, partial and whole chunks,
 * several chunks at once) and flushes, with one sync chosen at random
 * failing: that is when the power goes.  Every write since the last
 * completed sync is dropped (cow_io_mem_power_loss), the store is
 * reopened from what is left, and each sector must hold either its
 * version as of the last successful flush or a version written after
 * it: nothing older, and nothing that was never written.
 *
 * Every sector a write touches is stamped with (write id, sector), so
 * the version in a sector can be read back from its bytes.
 * SNAPCOW_CRASH_RUNS sets the runs per chunk size (default 300); a
 * failing run prints its seed, and SNAPCOW_CRASH_SEED replays one.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define ORIGIN_SECTORS (2048 + 6)     /* 1 MiB + a partial chunk */
#define MAX_LATER 64

struct model {
  uint64_t flushed[ORIGIN_SECTORS];   /* version at the last flush; 0 origin */
  uint64_t current[ORIGIN_SECTORS];
  /* Versions written since the last flush, per sector (bounded: a sector
   * rewritten more often than this keeps its last MAX_LATER).
   */
  uint64_t later[ORIGIN_SECTORS][MAX_LATER];
  unsigned nr_later[ORIGIN_SECTORS];
};

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

/* One run; returns false (having printed why) on a failure. */
static bool
run (uint64_t seed, uint32_t chunk_sectors, const uint8_t *origin_data)
{
  static struct model m;
  struct cow_store_params p = { .chunk_sectors = chunk_sectors,
                                .message = quiet };
  struct cow_io *origin, *cow, *after;
  struct cow_store *s;
  static uint8_t buf[64 * 512], got[ORIGIN_SECTORS * 512];
  const uint8_t *img;
  size_t img_size;
  uint64_t id = 0;
  unsigned ops;
  bool ok = true;

  rng = seed * 2654435761u + 1;
  memset (&m, 0, sizeof m);
  origin = cow_io_mem_new (origin_data, ORIGIN_SECTORS * 512, false);
  cow = cow_io_mem_new (NULL, 0, true);
  ck_assert_int_eq (cow_io_mem_track_power_loss (cow), 0);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  /* The power goes at the nth sync from now. */
  cow_io_mem_fail (cow, "sync", 1 + next_rand () % 40, EIO, true);

  for (ops = 0; ops < 400; ops++) {
    uint64_t r = next_rand () % 100;
    if (r < 12) {
      if (cow_store_commit (s) < 0)
        break;
      flushed (&m);
    }
    else {
      uint64_t chunk = next_rand () % (ORIGIN_SECTORS / chunk_sectors + 1);
      uint64_t first = chunk * chunk_sectors;
      uint64_t n;
      bool fua = r > 95;

      /* Whole chunks, parts of one, or a run over several. */
      switch (next_rand () % 3) {
      case 0: n = chunk_sectors; break;
      case 1: first += next_rand () % chunk_sectors; n = 1 + next_rand () % 8;
        break;
      default: first += next_rand () % chunk_sectors;
        n = 1 + next_rand () % 64; break;
      }
      if (first >= ORIGIN_SECTORS)
        first = ORIGIN_SECTORS - 1;
      if (n > ORIGIN_SECTORS - first)
        n = ORIGIN_SECTORS - first;
      if (n > 64)
        n = 64;
      id++;
      for (uint64_t k = 0; k < n; k++)
        stamp (buf + k * 512, id, first + k);
      /* A write that fails (its FUA's sync was the one) may or may not
       * have landed, as NBD allows: its version is allowed too.
       */
      int w = cow_snapshot_pwrite (s, buf, n * 512, first * 512, fua);
      for (uint64_t k = 0; k < n; k++) {
        uint64_t sec = first + k;
        m.current[sec] = id;
        if (m.nr_later[sec] < MAX_LATER)
          m.later[sec][m.nr_later[sec]++] = id;
        else
          m.later[sec][MAX_LATER - 1] = id;
      }
      if (w < 0)
        break;
      if (fua)
        flushed (&m);
    }
  }

  /* Power loss: keep only what was synced, then reopen a copy. */
  ck_assert_int_eq (cow_io_mem_power_loss (cow), 0);
  img = cow_io_mem_data (cow, &img_size);
  after = cow_io_mem_new (img, img_size, true);
  cow_store_close (s);          /* writes to the old image only */
  cow_io_close (cow);
  if (cow_store_open (after, origin, &p, &s) < 0) {
    printf ("seed %" PRIu64 " chunk %u: the store does not open after "
            "the crash\n", seed, chunk_sectors);
    ok = false;
    goto out;
  }
  ck_assert_int_eq (cow_snapshot_pread (s, got, sizeof got, 0), 0);
  for (uint64_t sec = 0; sec < ORIGIN_SECTORS && ok; sec++) {
    const uint8_t *g = got + sec * 512;
    uint64_t v = memcmp (g, origin_data + sec * 512, 512) == 0 ? 0
      : version_of (g, sec);
    if (!allowed (&m, sec, v)) {
      printf ("seed %" PRIu64 " chunk %u: sector %" PRIu64 " holds version %"
              PRId64 ", flushed %" PRIu64 " (after %u ops)\n", seed,
              chunk_sectors, sec, v == UINT64_MAX ? -1 : (int64_t) v,
              m.flushed[sec], ops);
      ok = false;
    }
  }
  cow_store_close (s);
 out:
  cow_io_close (after);
  cow_io_close (origin);
  return ok;
}

static void
campaign (uint32_t chunk_sectors)
{
  static uint8_t origin_data[ORIGIN_SECTORS * 512];
  const char *e = getenv ("SNAPCOW_CRASH_RUNS");
  const char *one = getenv ("SNAPCOW_CRASH_SEED");
  uint64_t runs = e ? strtoull (e, NULL, 10) : 300, failed = 0;

  /* The origin's bytes never look like a stamp. */
  for (size_t k = 0; k < sizeof origin_data; k++)
    origin_data[k] = (uint8_t) (k * 7 + 3) ^ 0xa5;
  if (one) {
    ck_assert (run (strtoull (one, NULL, 10), chunk_sectors, origin_data));
    return;
  }
  for (uint64_t seed = 1; seed <= runs; seed++)
    if (!run (seed, chunk_sectors, origin_data))
      failed++;
  printf ("chunk %u sectors: %" PRIu64 " crashes, %" PRIu64 " failed\n",
          chunk_sectors, runs, failed);
  ck_assert_uint_eq (failed, 0);
}

START_TEST (test_crash_4k)
{
  campaign (8);
}
END_TEST

START_TEST (test_crash_16k)
{
  campaign (32);
}
END_TEST

int
main (void)
{
  Suite *su = suite_create ("crash");
  TCase *tc = tcase_create ("power loss");

  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_crash_4k);
  tcase_add_test (tc, test_crash_16k);
  suite_add_tcase (su, tc);
  return run_suite (su);
}
