/* test-lib-merge.c: the offline merge (lib/merge.c) on memory backends.
 *
 * A store is built by hand with runs of records (consecutive in both
 * old_chunk and new_chunk), descending and scattered records that are
 * runs of one, runs cut by an area boundary, and a record for the
 * origin's last, partial chunk, over several areas at 4K and 16K chunks
 * (one area at 64K, where two would take half a gigabyte).  Then:
 *
 * - merged to the end, the origin equals the former snapshot view byte
 *   for byte, no record is left in memory or on disk, the usage is the
 *   kernel's after a merge (allocated 2 chunks, metadata 2 chunks), and
 *   the runs came in the kernel's order, each copied with one pread and
 *   one pwrite;
 * - the power fails at every sync of the merge in turn (the store's and
 *   the origin's, counted together), first dropping every unsynced
 *   write, then keeping a random subset of them, some torn at a sector
 *   boundary (every write is then a crash point too).  The store left
 *   behind must load, show the former snapshot view, and a new merge
 *   must finish it with the same result; a crash that drops whole
 *   writes leaves no stray record beyond the terminator;
 * - a store with records still pending commits them before merging;
 * - areas that a crash left stale beyond the terminator are cleared.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "test-lib-util.h"

#define ORIGIN_SEED 11
#define DATA_SEED 12

/* One geometry and its workload. */
struct geo {
  uint32_t cs;                  /* chunk sectors */
  uint64_t origin_chunks;       /* the last one partial */
  uint64_t records;
  uint64_t budget_chunks;       /* per cow_merge_step */
};

static const struct geo geos[] = {
  { 8, 1200, 700, 16 },         /* 4K: areas 0, 1, 2 */
  { 32, 1150, 1100, 48 },       /* 16K: areas 0, 1 */
  { 128, 400, 300, 24 },        /* 64K: area 0 */
};

/* The hand-built store and what its snapshot shows. */
struct fixture {
  struct geo g;
  uint64_t cb, E, origin_size;
  uint8_t *origin;              /* origin image */
  struct image cow;
  uint8_t *view;                /* the snapshot view */
  chunk_t *old, *new;           /* records in order */
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
add_record (struct fixture *f, uint64_t *n, chunk_t old)
{
  f->old[*n] = old;
  f->new[*n] = t_data_chunk (f->g.cs, *n);
  (*n)++;
}

static void
fixture_build (struct fixture *f, const struct geo *g, uint64_t seed)
{
  const uint64_t B = 37;        /* origin chunks per block */
  uint64_t blocks, *order, n = 0, size;
  bool *used;

  memset (f, 0, sizeof *f);
  f->g = *g;
  f->cb = t_chunk_bytes (g->cs);
  f->E = t_per_area (g->cs);
  f->origin_size = g->origin_chunks * f->cb - 1536;
  f->old = calloc (g->records, sizeof *f->old);
  f->new = calloc (g->records, sizeof *f->new);
  used = calloc (g->origin_chunks, 1);
  ck_assert (f->old && f->new && used);
  rng = seed * 2654435761u + 1;

  /* Blocks of the origin in random order; each gives an ascending run
   * (most), a descending sequence, or scattered chunks.  The last
   * block goes first, ascending to its end, so that the partial chunk
   * is in a run.
   */
  blocks = (g->origin_chunks + B - 1) / B;
  order = calloc (blocks, sizeof *order);
  ck_assert_ptr_nonnull (order);
  for (uint64_t i = 0; i < blocks; i++)
    order[i] = i;
  for (uint64_t i = blocks - 1; i > 1; i--) {
    uint64_t j = 1 + next_rand () % i, t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  order[0] = blocks - 1;
  /* Passes over the blocks until there are enough records; later
   * passes fill the gaps the earlier ones left, in shorter runs.
   */
  for (uint64_t i = 0; n < g->records; i++) {
    uint64_t b = i % blocks;
    uint64_t first = order[b] * B;
    uint64_t len = g->origin_chunks - first < B ? g->origin_chunks - first : B;
    unsigned kind = i == 0 ? 0 : next_rand () % 10;
    uint64_t take = i == 0 ? len : 1 + next_rand () % len;

    for (uint64_t k = 0; k < take && n < g->records; k++) {
      chunk_t old;

      if (kind < 7)             /* ascending: a run */
        old = first + k;
      else if (kind < 9)        /* descending: runs of one */
        old = first + take - 1 - k;
      else                      /* scattered */
        old = first + next_rand () % len;
      if (used[old])
        continue;
      used[old] = true;
      add_record (f, &n, old);
    }
  }
  ck_assert_uint_eq (n, g->records);
  free (order);
  free (used);

  /* The COW image: header, areas, data. */
  size = (t_data_chunk (g->cs, n) + 1) * f->cb;
  image_new_valid (&f->cow, size, g->cs);
  for (uint64_t i = 0; i < n; i++) {
    image_put_record (&f->cow, i, f->old[i], f->new[i]);
    pattern_fill (f->cow.data + f->new[i] * f->cb, f->cb, DATA_SEED,
                  f->new[i] * f->cb);
  }

  f->origin = malloc (f->origin_size);
  f->view = malloc (f->origin_size);
  ck_assert (f->origin && f->view);
  pattern_fill (f->origin, f->origin_size, ORIGIN_SEED, 0);
  memcpy (f->view, f->origin, f->origin_size);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t at = f->old[i] * f->cb;
    uint64_t len = f->origin_size - at < f->cb ? f->origin_size - at : f->cb;

    memcpy (f->view + at, f->cow.data + f->new[i] * f->cb, len);
  }
}

static void
fixture_free (struct fixture *f)
{
  image_free (&f->cow);
  free (f->origin);
  free (f->view);
  free (f->old);
  free (f->new);
}

/* The kernel's runs, from the record list: from the last record back,
 * within its area, consecutive in both chunks.
 */
static uint64_t
model_run (const struct fixture *f, uint64_t end, chunk_t *old, chunk_t *new)
{
  uint64_t last = end - 1, area_start = last / f->E * f->E, n = 1;

  while (last - n + 1 > area_start &&
         f->old[last - n] == f->old[last] - n &&
         f->new[last - n] == f->new[last] - n)
    n++;
  *old = f->old[last] + 1 - n;
  *new = f->new[last] + 1 - n;
  return n;
}

static struct cow_store *
open_store (struct cow_io *cow, struct cow_io *origin, struct msgs *m,
            uint32_t cs)
{
  struct cow_store_params p = params_for (m, cs);
  struct cow_store *s;

  ck_assert_msg (cow_store_open (cow, origin, &p, &s) == 0, "open: %s",
                 m->last_error);
  return s;
}

/* The snapshot as the store shows it now. */
static void
assert_view (struct cow_store *s, const struct fixture *f, const char *what)
{
  const uint32_t piece = 1 << 20;
  uint8_t *buf = malloc (piece);

  ck_assert_ptr_nonnull (buf);
  for (uint64_t off = 0; off < f->origin_size; off += piece) {
    uint32_t n = f->origin_size - off < piece ? f->origin_size - off : piece;

    ck_assert_int_eq (cow_snapshot_pread (s, buf, n, off), 0);
    assert_bytes (buf, f->view + off, n, what);
  }
  free (buf);
}

static unsigned terminator_warnings;

/* Counts the problems other than the merged data chunks, which the
 * merge leaves in the store as the kernel does.
 */
static void
other_problem (void *opaque, enum cow_severity sev, const char *msg)
{
  unsigned *others = opaque;

  if (sev == COW_PROBLEM_WARNING &&
      strstr (msg, " data chunk(s) past the next free chunk 2 hold data"))
    return;
  if (sev == COW_PROBLEM_WARNING &&
      strcmp (msg, "area 0: bytes after the terminator (record 0) are not "
              "zero; the kernel ignores them") == 0)
    terminator_warnings++;
  printf ("check: %s: %s\n", sev == COW_PROBLEM_ERROR ? "error" : "warning",
          msg);
  (*others)++;
}

/* After a merge to the end: the origin, the store in memory and on
 * disk.  strays: whether stray records beyond the terminator of area 0
 * may be left (a torn area write can leave some; they were merged and
 * nothing reads them).
 */
static void
assert_merged (struct cow_store *s, struct cow_io *cow, struct cow_io *origin,
               const struct fixture *f, bool strays)
{
  unsigned others = 0;

  terminator_warnings = 0;
  struct cow_check_summary sum;
  struct cow_usage u;
  struct msgs m;
  size_t size;
  const uint8_t *data;
  char line[COW_USAGE_STATUS_LEN], want[COW_USAGE_STATUS_LEN];

  data = cow_io_mem_data (origin, &size);
  ck_assert_uint_eq (size, f->origin_size);
  assert_bytes (data, f->view, size, "origin after the merge");

  cow_store_usage (s, &u);
  ck_assert_uint_eq (u.records, 0);
  ck_assert_uint_eq (u.current_area, 0);
  cow_usage_status (&u, line, sizeof line);
  snprintf (want, sizeof want, "%" PRIu64 "/%zu %" PRIu64,
            (uint64_t) 2 * f->g.cs, f->cow.size / 512,
            (uint64_t) 2 * f->g.cs);
  ck_assert_str_eq (line, want);
  for (uint64_t i = 0; i < f->g.records; i++) {
    chunk_t nc;
    ck_assert (!cow_store_lookup (s, f->old[i], &nc));
  }

  /* On disk: no record, nothing wrong; reopened, the same usage. */
  msgs_init (&m);
  ck_assert_int_eq (cow_check (cow, f->origin_size, other_problem, &others,
                               &sum), 0);
  ck_assert_uint_eq (sum.records, 0);
  ck_assert_uint_eq (sum.errors, 0);
  /* No stale area, and (but for a torn write) nothing after area 0's
   * terminator.
   */
  ck_assert_uint_eq (others, (strays ? terminator_warnings : 0));
  ck_assert_uint_le (terminator_warnings, 1);
  {
    struct cow_store *again = open_store (cow, origin, &m, f->g.cs);

    cow_store_usage (again, &u);
    ck_assert_uint_eq (u.records, 0);
    cow_usage_status (&u, line, sizeof line);
    ck_assert_str_eq (line, want);
    assert_view (again, f, "view of the merged store");
    ck_assert_int_eq (cow_store_close (again), 0);
  }
}

/* Merge to the end, in steps of the geometry's budget. */
static int
merge_all (struct cow_store *s, const struct fixture *f,
           struct cow_merge_totals *t)
{
  struct cow_merge *mg;
  int64_t r;

  r = cow_merge_begin (s, &mg);
  if (r < 0)
    return r;
  do
    r = cow_merge_step (mg, f->g.budget_chunks * f->cb, NULL, NULL);
  while (r > 0);
  if (t)
    cow_merge_get_totals (mg, t);
  cow_merge_end (mg);
  return r;
}

START_TEST (test_merge_to_the_end)
{
  const struct geo *g = &geos[_i];
  struct fixture f;
  struct msgs m;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_merge *mg;
  struct cow_merge_run run;
  struct cow_merge_totals t;
  struct cow_io_mem_counts c0, c1, o0, o1;
  uint64_t end, runs = 0, areas_read, bytes = 0, run_bytes, pieces = 0;
  const uint64_t piece = COW_MERGE_PIECE > t_chunk_bytes (g->cs)
    ? COW_MERGE_PIECE : t_chunk_bytes (g->cs);
  int r;

  fixture_build (&f, g, 1);
  cow = cow_io_mem_new (f.cow.data, f.cow.size, false);
  origin = cow_io_mem_new (f.origin, f.origin_size, false);
  msgs_init (&m);
  s = open_store (cow, origin, &m, g->cs);
  assert_view (s, &f, "view before the merge");

  /* Step by step, against the model of the kernel's prepare_merge. */
  cow_io_mem_counts (cow, &c0);
  cow_io_mem_counts (origin, &o0);
  ck_assert_int_eq (cow_merge_begin (s, &mg), 0);
  end = g->records;
  while ((r = cow_merge_prepare (mg, &run)) > 0) {
    chunk_t old, new;
    uint64_t n = model_run (&f, end, &old, &new);

    ck_assert_uint_eq (run.chunks, n);
    ck_assert_uint_eq (run.old_chunk, old);
    ck_assert_uint_eq (run.new_chunk, new);
    ck_assert_int_eq (r, n);
    ck_assert_int_eq (cow_merge_copy (mg, &run, NULL, NULL), 0);
    end -= n;
    runs++;
    run_bytes = (old + n) * f.cb > f.origin_size
      ? f.origin_size - old * f.cb : n * f.cb;
    bytes += run_bytes;
    pieces += (run_bytes + piece - 1) / piece;
    /* Commit now and then, sometimes with runs from two areas. */
    if (next_rand () % 4 == 0)
      ck_assert_int_eq (cow_merge_commit (mg), 0);
  }
  ck_assert_int_eq (r, 0);
  ck_assert_uint_eq (end, 0);
  ck_assert_int_eq (cow_merge_commit (mg), 0);
  cow_io_mem_counts (cow, &c1);
  cow_io_mem_counts (origin, &o1);
  /* The step that finds nothing left reads the areas after area 0, to
   * clear any stale one.
   */
  ck_assert_int_eq (cow_merge_step (mg, f.cb, NULL, NULL), 0);
  cow_merge_get_totals (mg, &t);
  cow_merge_end (mg);
  ck_assert_uint_eq (t.records, g->records);
  ck_assert_uint_eq (t.runs, runs);
  ck_assert_uint_eq (t.bytes, bytes);
  /* One read per piece of a run (one piece unless the run is longer
   * than COW_MERGE_PIECE), plus one per area stepped back into; one
   * origin write per piece: never one per chunk.
   */
  areas_read = (g->records - 1) / f.E;
  ck_assert_uint_eq (c1.pread - c0.pread, pieces + areas_read);
  ck_assert_uint_eq (o1.pwrite - o0.pwrite, pieces);
  ck_assert_uint_lt (pieces, g->records);
  ck_assert_uint_lt (runs, g->records);
  printf ("%" PRIu32 "K chunks: %" PRIu64 " records in %" PRIu64 " runs\n",
          g->cs / 2, g->records, runs);

  assert_merged (s, cow, origin, &f, false);
  /* Merging a merged store does nothing. */
  ck_assert_int_eq (merge_all (s, &f, &t), 0);
  ck_assert_uint_eq (t.records, 0);
  ck_assert_int_eq (cow_store_close (s), 0);
  ck_assert_uint_eq (m.errors, 0);
  cow_io_close (cow);
  cow_io_close (origin);
  fixture_free (&f);
}
END_TEST

/* A backend that passes every op to a memory backend and "loses power"
 * at the nth sync counted over every backend sharing the counter: that
 * sync and every later op fail with EIO.
 */
struct crash_io {
  struct cow_io io;
  struct cow_io *inner;
  unsigned *syncs_left;         /* shared; 0: never */
  bool *dead;                   /* shared */
};

static struct crash_io *
crash_of (struct cow_io *io)
{
  return (struct crash_io *) io;
}

static int
crash_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  if (*crash_of (io)->dead)
    return -EIO;
  return cow_io_pread (crash_of (io)->inner, buf, count, offset);
}

static int
crash_pwrite (struct cow_io *io, const void *buf, size_t count,
              uint64_t offset)
{
  if (*crash_of (io)->dead)
    return -EIO;
  return cow_io_pwrite (crash_of (io)->inner, buf, count, offset);
}

static int
crash_sync (struct cow_io *io)
{
  struct crash_io *c = crash_of (io);

  if (*c->dead)
    return -EIO;
  if (*c->syncs_left && --*c->syncs_left == 0) {
    *c->dead = true;
    return -EIO;
  }
  return cow_io_sync (c->inner);
}

static int
crash_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  if (*crash_of (io)->dead)
    return -EIO;
  return crash_of (io)->inner->ops->punch (crash_of (io)->inner, offset,
                                           count);
}

static int
crash_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (crash_of (io)->inner, size);
}

static void
crash_close (struct cow_io *io)
{
  free (io);
}

static const struct cow_io_ops crash_ops = {
  .name = "crash",
  .pread = crash_pread,
  .pwrite = crash_pwrite,
  .sync = crash_sync,
  .get_size = crash_get_size,
  .punch = crash_punch,
  .close = crash_close,
};

static struct cow_io *
crash_new (struct cow_io *inner, unsigned *syncs_left, bool *dead)
{
  struct crash_io *c = calloc (1, sizeof *c);

  ck_assert_ptr_nonnull (c);
  c->io.ops = &crash_ops;
  c->inner = inner;
  c->syncs_left = syncs_left;
  c->dead = dead;
  return &c->io;
}

/* The power fails at sync k (1-based) of a merge, for every k until a
 * merge runs to the end without reaching it.  random: keep a random
 * subset of the unsynced writes, some torn; else drop them all.
 */
static void
crash_every_sync (unsigned geo, bool random)
{
  const struct geo *g = &geos[geo];
  struct fixture f;
  unsigned k, total = 0, stride = 1;
  const char *all = getenv ("SNAPCOW_MERGE_CRASH_ALL");

  /* Every sync at 4K; at the larger chunks (seconds per crash in
   * memory) every 5th, unless SNAPCOW_MERGE_CRASH_ALL=1.
   */
  if (geo > 0 && !(all && strcmp (all, "1") == 0))
    stride = 5;
  fixture_build (&f, g, 2);
  for (k = 1;; k += stride) {
    struct cow_io *cow, *origin, *wcow, *worigin;
    struct cow_store *s;
    struct msgs m;
    unsigned left = 0;
    bool dead = false;
    char what[64];
    int r;

    cow = cow_io_mem_new (f.cow.data, f.cow.size, false);
    origin = cow_io_mem_new (f.origin, f.origin_size, false);
    ck_assert_int_eq (cow_io_mem_track_power_loss (cow), 0);
    ck_assert_int_eq (cow_io_mem_track_power_loss (origin), 0);
    wcow = crash_new (cow, &left, &dead);
    worigin = crash_new (origin, &left, &dead);
    msgs_init (&m);
    s = open_store (wcow, worigin, &m, g->cs);
    left = k;
    r = merge_all (s, &f, NULL);
    cow_store_close (s);
    cow_io_close (wcow);
    cow_io_close (worigin);
    if (!dead) {
      /* The merge ran to the end before sync k: every point is done. */
      ck_assert_int_eq (r, 0);
      cow_io_close (cow);
      cow_io_close (origin);
      break;
    }
    total++;
    if (random) {
      ck_assert_int_eq (cow_io_mem_power_loss_random (cow, k * 7 + 1, NULL),
                        0);
      ck_assert_int_eq (cow_io_mem_power_loss_random (origin, k * 7 + 2,
                                                      NULL), 0);
    }
    else {
      ck_assert_int_eq (cow_io_mem_power_loss (cow), 0);
      ck_assert_int_eq (cow_io_mem_power_loss (origin), 0);
    }

    /* What the crash left: a store that loads, with the same view. */
    msgs_init (&m);
    s = open_store (cow, origin, &m, g->cs);
    snprintf (what, sizeof what, "view after a crash at sync %u", k);
    assert_view (s, &f, what);
    if (r == 0) {
      /* Only the sync after the data chunks were released fails
       * without failing the merge (it costs space, nothing else): every
       * record was merged.
       */
      struct cow_usage u;

      cow_store_usage (s, &u);
      ck_assert_uint_eq (u.records, 0);
    }
    ck_assert_int_eq (merge_all (s, &f, NULL), 0);
    assert_merged (s, cow, origin, &f, random);
    ck_assert_int_eq (cow_store_close (s), 0);
    cow_io_close (cow);
    cow_io_close (origin);
  }
  printf ("%" PRIu32 "K chunks: power lost at %u syncs, 1 in %u (%s)\n",
          g->cs / 2, total, stride,
          random ? "random subset, torn" : "all dropped");
  ck_assert_uint_gt (total, 2);
  fixture_free (&f);
}

START_TEST (test_crash_every_sync)
{
  crash_every_sync (_i, false);
}
END_TEST

START_TEST (test_crash_every_sync_random)
{
  crash_every_sync (_i, true);
}
END_TEST

/* Records written through the snapshot and not yet committed are
 * committed, then merged, with the rest.
 */
START_TEST (test_pending_first)
{
  const struct geo *g = &geos[0];
  struct fixture f;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_usage u;
  struct msgs m;
  uint8_t buf[4096];

  fixture_build (&f, g, 3);
  /* Room for the new chunks. */
  f.cow.data = realloc (f.cow.data, f.cow.size + 64 * f.cb);
  ck_assert_ptr_nonnull (f.cow.data);
  memset (f.cow.data + f.cow.size, 0, 64 * f.cb);
  f.cow.size += 64 * f.cb;
  cow = cow_io_mem_new (f.cow.data, f.cow.size, false);
  origin = cow_io_mem_new (f.origin, f.origin_size, false);
  msgs_init (&m);
  s = open_store (cow, origin, &m, g->cs);
  /* Origin chunks the fixture left alone. */
  for (uint64_t c = 0, done = 0; c < g->origin_chunks - 1 && done < 20; c++) {
    chunk_t nc;
    if (cow_store_lookup (s, c, &nc))
      continue;
    pattern_fill (buf, sizeof buf, 99, c);
    ck_assert_int_eq (cow_snapshot_pwrite (s, buf, sizeof buf, c * f.cb,
                                           false), 0);
    memcpy (f.view + c * f.cb, buf, sizeof buf);
    done++;
  }
  cow_store_usage (s, &u);
  ck_assert_uint_eq (u.pending, 20);
  ck_assert_int_eq (merge_all (s, &f, NULL), 0);
  assert_merged (s, cow, origin, &f, false);
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (cow);
  cow_io_close (origin);
  fixture_free (&f);
}
END_TEST

/* What a crash can leave when a commit emptied areas 1 and 2 and
 * shortened area 0 and only area 0's write landed: area 0 ends at
 * record 100, areas 1 and 2 still hold records (merged: their data is
 * in the origin) beyond it.  The store shows the same view, and the
 * merge leaves no stale area behind.
 */
START_TEST (test_stale_areas_cleared)
{
  const struct geo *g = &geos[0];
  struct fixture f;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_usage u;
  struct msgs m;

  fixture_build (&f, g, 5);
  ck_assert_uint_gt (g->records, 2 * f.E);
  for (uint64_t i = 100; i < g->records; i++) {
    uint64_t at = f.old[i] * f.cb;
    uint64_t len = f.origin_size - at < f.cb ? f.origin_size - at : f.cb;

    memcpy (f.origin + at, f.view + at, len);
    if (i < f.E)
      image_put_record (&f.cow, i, 0, 0);
  }
  cow = cow_io_mem_new (f.cow.data, f.cow.size, false);
  origin = cow_io_mem_new (f.origin, f.origin_size, false);
  msgs_init (&m);
  s = open_store (cow, origin, &m, g->cs);
  cow_store_usage (s, &u);
  ck_assert_uint_eq (u.records, 100);
  assert_view (s, &f, "view with stale areas");
  ck_assert_int_eq (merge_all (s, &f, NULL), 0);
  assert_merged (s, cow, origin, &f, false);
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (cow);
  cow_io_close (origin);
  fixture_free (&f);
}
END_TEST

/* No merge without the origin, on a read-only store, or on an
 * invalidated one; the store is untouched.
 */
START_TEST (test_refusals)
{
  const struct geo *g = &geos[0];
  struct fixture f;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_merge *mg;
  struct cow_store_params p;
  struct msgs m;

  fixture_build (&f, g, 4);
  cow = cow_io_mem_new (f.cow.data, f.cow.size, false);
  origin = cow_io_mem_new (f.origin, f.origin_size, false);
  msgs_init (&m);
  p = params_for (&m, g->cs);
  ck_assert_int_eq (cow_store_open (cow, NULL, &p, &s), 0);
  ck_assert_int_eq (cow_merge_begin (s, &mg), -EINVAL);
  ck_assert_ptr_null (mg);
  ck_assert_str_eq (m.last_error, "cannot merge without the origin");
  cow_store_close (s);

  p.readonly = true;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_merge_begin (s, &mg), -EROFS);
  cow_store_close (s);

  p.readonly = false;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_store_invalidate (s), 0);
  ck_assert_int_eq (cow_merge_begin (s, &mg), -EINVAL);
  ck_assert_str_eq (m.last_error, "the store is invalidated: there is no "
                    "snapshot to merge");
  cow_store_close (s);
  {
    size_t size;
    const uint8_t *data = cow_io_mem_data (origin, &size);
    assert_bytes (data, f.origin, size, "origin after refusals");
  }
  cow_io_close (cow);
  cow_io_close (origin);
  fixture_free (&f);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("merge");
  TCase *tc = tcase_create ("merge");
  TCase *crash = tcase_create ("crash");
  const int n = sizeof geos / sizeof geos[0];

  tcase_add_loop_test (tc, test_merge_to_the_end, 0, n);
  tcase_add_test (tc, test_pending_first);
  tcase_add_test (tc, test_refusals);
  tcase_add_test (tc, test_stale_areas_cleared);
  suite_add_tcase (s, tc);
  tcase_set_timeout (crash, 300);
  tcase_add_loop_test (crash, test_crash_every_sync, 0, n);
  tcase_add_loop_test (crash, test_crash_every_sync_random, 0, n);
  suite_add_tcase (s, crash);
  return run_suite (s);
}
