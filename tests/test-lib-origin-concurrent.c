/* test-lib-origin-concurrent.c: origin mode under concurrent writes to
 * the origin and to every snapshot, with readers of every view, on
 * memory backends.
 *
 * Every sector a thread writes is stamped with (view, thread, seq) and
 * its sector number, so a read can tell where each sector came from:
 *   - a snapshot's sector must hold its point-in-time data or a stamp
 *     written to that snapshot: never origin data (new or zeroed);
 *   - the origin's sector holds its old data, zeroes, or an origin stamp.
 * Writers own their sectors (lanes of LANE sectors, interleaved between
 * the writers of a view, so every chunk is raced over by all of them),
 * so each one also reads back what it wrote and expects it exactly; a
 * wide origin writer owns the top quarter and writes long unaligned
 * runs over many chunks of every store.  At the end every view is
 * compared with the model, then again after the stores are reopened.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define SIZE (2u << 20)
#define SECTORS (SIZE / 512)
#define WIDE_FROM (SECTORS / 4 * 3)   /* the wide writer's sectors */
#define LANE 2                        /* sectors per lane */
#define ORIGIN_WRITERS 4
#define SNAP_WRITERS 2
#define READERS 3
#define OPS 3000
#define MAX_STORES 3
#define SEED_PIT 11
#define ZERO_ID UINT64_MAX

struct world {
  size_t n;
  struct cow_io *origin;
  struct cow_io *cow[MAX_STORES];
  struct cow_store *s[MAX_STORES];
  struct cow_origin *o;
  uint8_t *pit;
  /* Per view (0 the origin, 1.. the snapshots), per sector: the id last
   * written there, 0 for the point-in-time data, ZERO_ID for zeroes.
   * Written only by the sector's owner.
   */
  uint64_t *model[MAX_STORES + 1];
  _Atomic unsigned failures;
  _Atomic unsigned reads;       /* by the readers */
  char failure[256];
  pthread_mutex_t failure_lock;
};

static struct world w;

/* cow_origin_params.defer_writes: every test runs with each. */
static bool defer_writes;

static void
set_deferred (void)
{
  defer_writes = true;
}

static void
note_failure (const char *fs, ...)
  __attribute__ ((format (printf, 1, 2)));

static void
note_failure (const char *fs, ...)
{
  va_list args;

  pthread_mutex_lock (&w.failure_lock);
  if (w.failures++ == 0) {
    va_start (args, fs);
    vsnprintf (w.failure, sizeof w.failure, fs, args);
    va_end (args);
  }
  pthread_mutex_unlock (&w.failure_lock);
}

static uint64_t
make_id (unsigned view, unsigned thread, uint64_t seq)
{
  return (uint64_t) (view + 1) << 56 | (uint64_t) thread << 40 | seq;
}

static unsigned
id_view (uint64_t id)
{
  return (id >> 56) - 1;
}

static void
stamp (uint8_t *sector, uint64_t id, uint64_t s)
{
  for (int k = 0; k < 512; k += 16) {
    memcpy (sector + k, &id, 8);
    memcpy (sector + k + 8, &s, 8);
  }
}

/* The id in a sector: 0 the point-in-time data, ZERO_ID zeroes, else
 * the stamp; UINT64_MAX - 1 if it is none of these.
 */
static uint64_t
id_of (const uint8_t *sector, uint64_t s)
{
  static const uint8_t zeroes[512];
  uint8_t want[512];
  uint64_t id;

  if (memcmp (sector, w.pit + s * 512, 512) == 0)
    return 0;
  if (memcmp (sector, zeroes, 512) == 0)
    return ZERO_ID;
  memcpy (&id, sector, 8);
  stamp (want, id, s);
  return memcmp (want, sector, 512) == 0 ? id : UINT64_MAX - 1;
}

static int
view_read (unsigned view, void *buf, uint32_t count, uint64_t offset)
{
  return view == 0 ? cow_origin_pread (w.o, buf, count, offset)
    : cow_snapshot_pread (w.s[view - 1], buf, count, offset);
}

/* What any reader may see in a sector of a view. */
static void
check_plausible (unsigned view, const uint8_t *buf, uint64_t first,
                 uint64_t n, const char *who)
{
  for (uint64_t k = 0; k < n; k++) {
    uint64_t id = id_of (buf + k * 512, first + k);
    bool ok = id == 0 || (view == 0 && id == ZERO_ID) ||
      (id != ZERO_ID && id != UINT64_MAX - 1 && id_view (id) == view);

    if (!ok) {
      note_failure ("%s: view %u sector %" PRIu64 " holds id %" PRIx64,
            who, view, first + k, id);
      return;
    }
  }
}

static uint64_t
rand_next (uint64_t *r)
{
  *r ^= *r << 13;
  *r ^= *r >> 7;
  *r ^= *r << 17;
  return *r;
}

struct writer {
  unsigned view, thread, nr;    /* thread index among nr writers */
  bool wide;
  pthread_t t;
};

/* A random run of sectors this writer owns. */
static void
pick (const struct writer *wr, uint64_t *rng, uint64_t *first, uint64_t *n)
{
  if (wr->wide) {
    *n = 1 + rand_next (rng) % 200;
    *first = WIDE_FROM + rand_next (rng) % (SECTORS - WIDE_FROM - *n + 1);
    return;
  }
  /* Lanes of LANE sectors below the wide writer's (for the origin) or
   * anywhere (snapshots), every nr-th one ours.
   */
  uint64_t top = wr->view == 0 ? WIDE_FROM : SECTORS;
  uint64_t lanes = top / LANE / wr->nr;
  uint64_t lane = (rand_next (rng) % lanes) * wr->nr + wr->thread;

  *n = 1 + rand_next (rng) % LANE;
  *first = lane * LANE + rand_next (rng) % (LANE - *n + 1);
}

static void *
writer_thread (void *arg)
{
  struct writer *wr = arg;
  uint64_t rng = 0x1234567 + wr->view * 131 + wr->thread * 7 + wr->wide;
  uint8_t *buf = malloc (200 * 512), *got = malloc (200 * 512);
  uint64_t *model = w.model[wr->view];

  for (uint64_t seq = 1; seq <= OPS && w.failures == 0; seq++) {
    uint64_t first, n, id = make_id (wr->view, wr->thread + 8 * wr->wide, seq);
    unsigned what = rand_next (&rng) % 8;
    int r;

    pick (wr, &rng, &first, &n);
    if (wr->view == 0 && what == 0) {
      r = cow_origin_zero (w.o, n * 512, first * 512, false, false);
      id = ZERO_ID;
    }
    else if (wr->view == 0 && what == 1) {
      r = cow_origin_trim (w.o, n * 512, first * 512, false);
      id = ZERO_ID;             /* the memory backend punches */
    }
    else {
      for (uint64_t k = 0; k < n; k++)
        stamp (buf + k * 512, id, first + k);
      r = wr->view == 0
        ? cow_origin_pwrite (w.o, buf, n * 512, first * 512, what == 2)
        : cow_snapshot_pwrite (w.s[wr->view - 1], buf, n * 512, first * 512,
                               what == 2);
    }
    if (r < 0) {
      note_failure ("view %u: write of %" PRIu64 " sectors at %" PRIu64 ": %d",
            wr->view, n, first, r);
      break;
    }
    for (uint64_t k = 0; k < n; k++)
      model[first + k] = id;
    /* Read back what we own, exactly. */
    r = view_read (wr->view, got, n * 512, first * 512);
    if (r < 0) {
      note_failure ("view %u: read back: %d", wr->view, r);
      break;
    }
    for (uint64_t k = 0; k < n; k++)
      if (id_of (got + k * 512, first + k) != id) {
        note_failure ("view %u: sector %" PRIu64 " reads back id %" PRIx64
              ", wrote %" PRIx64, wr->view, first + k,
              id_of (got + k * 512, first + k), id);
        break;
      }
    if (rand_next (&rng) % 64 == 0) {
      r = wr->view == 0 ? cow_origin_flush (w.o)
        : cow_store_commit (w.s[wr->view - 1]);
      if (r < 0)
        note_failure ("view %u: flush: %d", wr->view, r);
    }
  }
  free (buf);
  free (got);
  return NULL;
}

static _Atomic bool stop_readers;

static void *
reader_thread (void *arg)
{
  uint64_t rng = 0xabcdef + (uintptr_t) arg;
  uint8_t *buf = malloc (256 * 512);
  char who[32];

  snprintf (who, sizeof who, "reader %u", (unsigned) (uintptr_t) arg);
  while (!stop_readers && w.failures == 0) {
    unsigned view = rand_next (&rng) % (w.n + 1);
    uint64_t n = 1 + rand_next (&rng) % 256;
    uint64_t first = rand_next (&rng) % (SECTORS - n + 1);
    int r = view_read (view, buf, n * 512, first * 512);

    if (r < 0) {
      note_failure ("%s: view %u: read: %d", who, view, r);
      break;
    }
    check_plausible (view, buf, first, n, who);
    w.reads++;
  }
  free (buf);
  return NULL;
}

static void
open_all (const uint32_t *cs)
{
  struct cow_origin_params op = { .message = NULL,
                                  .defer_writes = defer_writes };

  for (size_t i = 0; i < w.n; i++) {
    struct cow_store_params p = { .chunk_sectors = cs[i],
                                  .live_origin = true };

    ck_assert_int_eq (cow_store_open (w.cow[i], w.origin, &p, &w.s[i]), 0);
  }
  ck_assert_int_eq (cow_origin_open (w.origin, w.s, w.n, &op, &w.o), 0);
}

static void
close_all (void)
{
  cow_origin_close (w.o);
  for (size_t i = 0; i < w.n; i++)
    ck_assert_int_eq (cow_store_close (w.s[i]), 0);
}

static void
check_exact (const char *when)
{
  uint8_t *buf = malloc (SIZE);

  for (unsigned view = 0; view <= w.n; view++) {
    ck_assert_int_eq (view_read (view, buf, SIZE, 0), 0);
    for (uint64_t s = 0; s < SECTORS; s++) {
      uint64_t id = id_of (buf + s * 512, s);

      if (id != w.model[view][s])
        ck_abort_msg ("%s: view %u sector %" PRIu64 " holds id %" PRIx64
                      ", expected %" PRIx64, when, view, s, id,
                      w.model[view][s]);
    }
  }
  free (buf);
}

static const struct {
  size_t n;
  uint32_t cs[MAX_STORES];
} configs[] = {
  { 1, { 8 } },
  { 3, { 8, 32, 128 } },
};

START_TEST (test_concurrent)
{
  struct writer writers[ORIGIN_WRITERS + 1 + MAX_STORES * SNAP_WRITERS];
  pthread_t readers[READERS];
  size_t nw = 0;

  memset (&w, 0, sizeof w);
  pthread_mutex_init (&w.failure_lock, NULL);
  w.n = configs[_i].n;
  w.pit = malloc (SIZE);
  pattern_fill (w.pit, SIZE, SEED_PIT, 0);
  w.origin = origin_new (SIZE, SEED_PIT);
  for (size_t i = 0; i < w.n; i++)
    w.cow[i] = cow_io_mem_new (NULL, 0, true);
  for (size_t v = 0; v <= w.n; v++)
    w.model[v] = calloc (SECTORS, sizeof *w.model[v]);
  open_all (configs[_i].cs);

  for (unsigned t = 0; t < ORIGIN_WRITERS; t++)
    writers[nw++] = (struct writer) { .view = 0, .thread = t,
                                      .nr = ORIGIN_WRITERS };
  writers[nw++] = (struct writer) { .view = 0, .nr = 1, .wide = true };
  for (unsigned v = 1; v <= w.n; v++)
    for (unsigned t = 0; t < SNAP_WRITERS; t++)
      writers[nw++] = (struct writer) { .view = v, .thread = t,
                                        .nr = SNAP_WRITERS };
  stop_readers = false;
  for (uintptr_t k = 0; k < READERS; k++)
    ck_assert_int_eq (pthread_create (&readers[k], NULL, reader_thread,
                                      (void *) k), 0);
  for (size_t k = 0; k < nw; k++)
    ck_assert_int_eq (pthread_create (&writers[k].t, NULL, writer_thread,
                                      &writers[k]), 0);
  for (size_t k = 0; k < nw; k++)
    pthread_join (writers[k].t, NULL);
  stop_readers = true;
  for (size_t k = 0; k < READERS; k++)
    pthread_join (readers[k], NULL);
  if (getenv ("SNAPCOW_ORIGIN_VERBOSE"))
    fprintf (stderr, "config %d: %u reads\n", _i, (unsigned) w.reads);
  if (w.failures)
    ck_abort_msg ("%u failures, the first: %s", w.failures, w.failure);

  check_exact ("at the end");
  ck_assert_int_eq (cow_origin_flush (w.o), 0);
  close_all ();
  open_all (configs[_i].cs);
  check_exact ("reopened");
  close_all ();
  for (size_t i = 0; i < w.n; i++)
    cow_io_close (w.cow[i]);
  cow_io_close (w.origin);
  for (size_t v = 0; v <= w.n; v++)
    free (w.model[v]);
  free (w.pit);
}
END_TEST

/* Concurrent origin writers to the same chunks: one copy each, no
 * chunk allocated twice (next_free counts every allocation).
 */
#define SAME_THREADS 8
#define SAME_CHUNKS 64

struct same_arg {
  unsigned t;
  uint8_t *pit;
};

static void *
same_thread (void *arg)
{
  struct same_arg *a = arg;

  /* Every thread writes its own sector of every chunk. */
  for (unsigned c = 0; c < SAME_CHUNKS; c++) {
    uint8_t buf[512];

    stamp (buf, make_id (0, a->t, c + 1), c * 8 + a->t);
    if (cow_origin_pwrite (w.o, buf, 512, (c * 8 + a->t) * 512, false) < 0)
      note_failure ("thread %u chunk %u: write failed", a->t, c);
  }
  return NULL;
}

START_TEST (test_single_copy)
{
  static const uint32_t cs[] = { 8, 8 };
  pthread_t t[SAME_THREADS];
  struct same_arg args[SAME_THREADS];
  struct cow_usage u;
  uint8_t *buf = malloc (SAME_CHUNKS * 4096);

  memset (&w, 0, sizeof w);
  pthread_mutex_init (&w.failure_lock, NULL);
  w.n = 2;
  w.pit = malloc (SIZE);
  pattern_fill (w.pit, SIZE, SEED_PIT, 0);
  w.origin = origin_new (SIZE, SEED_PIT);
  for (size_t i = 0; i < w.n; i++)
    w.cow[i] = cow_io_mem_new (NULL, 0, true);
  open_all (cs);
  for (unsigned k = 0; k < SAME_THREADS; k++) {
    args[k] = (struct same_arg) { .t = k, .pit = w.pit };
    ck_assert_int_eq (pthread_create (&t[k], NULL, same_thread, &args[k]),
                      0);
  }
  for (unsigned k = 0; k < SAME_THREADS; k++)
    pthread_join (t[k], NULL);
  if (w.failures)
    ck_abort_msg ("%s", w.failure);
  /* Deferred writes returned before their commit. */
  ck_assert_int_eq (cow_origin_flush (w.o), 0);
  for (size_t i = 0; i < w.n; i++) {
    cow_store_usage (w.s[i], &u);
    ck_assert_uint_eq (u.records, SAME_CHUNKS);
    ck_assert_uint_eq (u.pending, 0);
    ck_assert_uint_eq (u.allocated_sectors, (2 + SAME_CHUNKS) * 8);
    ck_assert_int_eq (cow_snapshot_pread (w.s[i], buf, SAME_CHUNKS * 4096,
                                          0), 0);
    assert_bytes (buf, w.pit, SAME_CHUNKS * 4096, "snapshot");
  }
  ck_assert_int_eq (cow_origin_pread (w.o, buf, SAME_CHUNKS * 4096, 0), 0);
  for (uint64_t sec = 0; sec < SAME_CHUNKS * 8; sec++) {
    uint64_t want = sec % 8 < SAME_THREADS
      ? make_id (0, sec % 8, sec / 8 + 1) : 0;

    ck_assert_uint_eq (id_of (buf + sec * 512, sec), want);
  }
  close_all ();
  for (size_t i = 0; i < w.n; i++)
    cow_io_close (w.cow[i]);
  cow_io_close (w.origin);
  free (w.pit);
  free (buf);
}
END_TEST

/* Concurrent origin writers fill a small store under on-full=invalidate:
 * every origin write succeeds, the store is invalidated once, on disk,
 * and the other store keeps its point in time.
 */
static struct msgs full_msgs;

static void *
full_thread (void *arg)
{
  unsigned t = (uintptr_t) arg;
  uint8_t buf[3 * 4096];
  uint64_t rng = 77 + t;

  for (unsigned k = 0; k < 60; k++) {
    uint64_t n = 1 + rand_next (&rng) % 24;
    uint64_t first = rand_next (&rng) % (SECTORS / 8 - n + 1);

    /* Only origin writes here: the model is "not a snapshot's". */
    for (uint64_t j = 0; j < n; j++)
      stamp (buf + (j % 24) * 512, make_id (0, t, k + 1), first + j);
    if (cow_origin_pwrite (w.o, buf, n * 512, first * 512, false) < 0)
      note_failure ("thread %u: origin write failed", t);
  }
  return NULL;
}

START_TEST (test_full_concurrent)
{
  static const uint32_t cs[] = { 8, 32 };
  struct cow_origin_params op = { .defer_writes = defer_writes,
                                  .message = msgs_fn,
                                  .message_opaque = &full_msgs };
  pthread_t t[8];
  uint8_t *buf = malloc (SIZE);
  const uint8_t *d;
  size_t size;

  memset (&w, 0, sizeof w);
  msgs_init (&full_msgs);
  pthread_mutex_init (&w.failure_lock, NULL);
  w.n = 2;
  w.pit = malloc (SIZE);
  pattern_fill (w.pit, SIZE, SEED_PIT, 0);
  w.origin = origin_new (SIZE, SEED_PIT);
  w.cow[0] = cow_io_mem_new (NULL, 40 * 4096, false);
  w.cow[1] = cow_io_mem_new (NULL, 0, true);
  for (size_t i = 0; i < w.n; i++) {
    struct cow_store_params p = params_for (&full_msgs, cs[i]);

    p.live_origin = true;
    ck_assert_int_eq (cow_store_open (w.cow[i], w.origin, &p, &w.s[i]), 0);
  }
  ck_assert_int_eq (cow_origin_open (w.origin, w.s, w.n, &op, &w.o), 0);
  for (uintptr_t k = 0; k < 8; k++)
    ck_assert_int_eq (pthread_create (&t[k], NULL, full_thread, (void *) k),
                      0);
  for (unsigned k = 0; k < 8; k++)
    pthread_join (t[k], NULL);
  if (w.failures)
    ck_abort_msg ("%s", w.failure);
  ck_assert_int_eq (cow_snapshot_pread (w.s[0], buf, 512, 0), -EIO);
  d = cow_io_mem_data (w.cow[0], &size);
  ck_assert_int_eq (d[4] | d[5] | d[6] | d[7], 0);
  ck_assert_int_eq (cow_snapshot_pread (w.s[1], buf, SIZE, 0), 0);
  assert_bytes (buf, w.pit, SIZE, "snapshot 1");
  ck_assert_int_eq (cow_origin_flush (w.o), 0);
  cow_origin_close (w.o);
  cow_store_close (w.s[0]);
  ck_assert_int_eq (cow_store_close (w.s[1]), 0);
  for (size_t i = 0; i < w.n; i++)
    cow_io_close (w.cow[i]);
  cow_io_close (w.origin);
  free (w.pit);
  free (buf);
}
END_TEST

/* A backend that holds up syncs, to show without timing that commits
 * are shared and run side by side: a sync waits until the backend has
 * taken `until_pwrites` writes (all the copies of the concurrent
 * writers), or until the partner backend is in a sync too.
 */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;

struct gate {
  struct cow_io io;
  struct cow_io *inner;
  unsigned pwrites, syncs;
  unsigned until_pwrites;       /* 0: no wait */
  struct gate *partner;         /* wait for it to be in a sync, once */
  bool entered_sync, timed_out;
};

#define GATE(io) ((struct gate *) (io))

static int
g_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  return cow_io_pread (GATE (io)->inner, buf, count, offset);
}

static int
g_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  int r = cow_io_pwrite (GATE (io)->inner, buf, count, offset);

  pthread_mutex_lock (&gate_lock);
  GATE (io)->pwrites++;
  pthread_cond_broadcast (&gate_cond);
  pthread_mutex_unlock (&gate_lock);
  return r;
}

static int
g_sync (struct cow_io *io)
{
  struct gate *g = GATE (io);

  pthread_mutex_lock (&gate_lock);
  g->syncs++;
  g->entered_sync = true;
  pthread_cond_broadcast (&gate_cond);
  while (g->until_pwrites && g->pwrites < g->until_pwrites)
    pthread_cond_wait (&gate_cond, &gate_lock);
  g->until_pwrites = 0;
  if (g->partner) {
    /* Not a timing threshold: commits in turn never meet here, and
     * this only stops the test from hanging then.
     */
    struct timespec until;

    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    while (!g->partner->entered_sync && !g->timed_out)
      if (pthread_cond_timedwait (&gate_cond, &gate_lock, &until) != 0)
        g->timed_out = true;
    g->partner = NULL;
  }
  pthread_mutex_unlock (&gate_lock);
  return cow_io_sync (g->inner);
}

static int
g_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (GATE (io)->inner, size);
}

static int
g_grow (struct cow_io *io, uint64_t size)
{
  return GATE (io)->inner->ops->grow (GATE (io)->inner, size);
}

static void
g_close (struct cow_io *io)
{
  free (io);
}

static const struct cow_io_ops gate_ops = {
  .name = "gate", .pread = g_pread, .pwrite = g_pwrite, .sync = g_sync,
  .get_size = g_get_size, .grow = g_grow, .close = g_close,
};

static struct gate *
gate_new (struct cow_io *inner)
{
  struct gate *g = calloc (1, sizeof *g);

  ck_assert_ptr_nonnull (g);
  g->io.ops = &gate_ops;
  g->inner = inner;
  return g;
}

#define GROUP_WRITERS 16

static void *
group_thread (void *arg)
{
  uintptr_t k = (uintptr_t) arg;
  uint8_t b = 'a' + k;

  /* Each its own chunk (4K) of the stores. */
  if (cow_origin_pwrite (w.o, &b, 1, k * 4096 + 9, false) < 0)
    note_failure ("writer %u failed", (unsigned) k);
  return NULL;
}

/* Concurrent origin writes share their stores' commits: the first
 * commit's sync is held until every writer has copied its chunk, so
 * the rest of them are committed together, and the syncs number a
 * handful rather than two per write.  And two stores are committed
 * side by side: each one's first sync waits for the other's.
 */
START_TEST (test_shared_commits)
{
  static const uint32_t cs[] = { 8, 8 };
  struct cow_origin_params op = { .message = NULL,
                                  .defer_writes = defer_writes };
  struct cow_io *mem[2];
  struct gate *g[2];
  pthread_t t[GROUP_WRITERS];

  memset (&w, 0, sizeof w);
  pthread_mutex_init (&w.failure_lock, NULL);
  w.n = 2;
  w.origin = origin_new (SIZE, SEED_PIT);
  for (size_t i = 0; i < 2; i++) {
    struct cow_store_params p = { .chunk_sectors = cs[i],
                                  .live_origin = true };

    mem[i] = cow_io_mem_new (NULL, 0, true);
    g[i] = gate_new (mem[i]);
    w.cow[i] = &g[i]->io;
    ck_assert_int_eq (cow_store_open (w.cow[i], w.origin, &p, &w.s[i]), 0);
  }
  ck_assert_int_eq (cow_origin_open (w.origin, w.s, 2, &op, &w.o), 0);
  pthread_mutex_lock (&gate_lock);
  for (size_t i = 0; i < 2; i++) {
    g[i]->syncs = 0;
    g[i]->entered_sync = false;     /* opening the store synced */
    g[i]->until_pwrites = g[i]->pwrites + GROUP_WRITERS;
    g[i]->partner = g[1 - i];
  }
  pthread_mutex_unlock (&gate_lock);
  for (uintptr_t k = 0; k < GROUP_WRITERS; k++)
    ck_assert_int_eq (pthread_create (&t[k], NULL, group_thread, (void *) k),
                      0);
  for (unsigned k = 0; k < GROUP_WRITERS; k++)
    pthread_join (t[k], NULL);
  if (w.failures)
    ck_abort_msg ("%s", w.failure);
  ck_assert_int_eq (cow_origin_flush (w.o), 0);
  for (size_t i = 0; i < 2; i++) {
    struct cow_usage u;

    if (getenv ("SNAPCOW_ORIGIN_VERBOSE"))
      fprintf (stderr, "store %zu: %u syncs%s\n", i, g[i]->syncs,
               g[i]->timed_out ? ", timed out" : "");
    ck_assert (!g[i]->timed_out);
    cow_store_usage (w.s[i], &u);
    ck_assert_uint_eq (u.records, GROUP_WRITERS);
    ck_assert_uint_eq (u.pending, 0);
    ck_assert_uint_le (g[i]->syncs, 6);
  }
  close_all ();
  for (size_t i = 0; i < 2; i++) {
    cow_io_close (w.cow[i]);
    cow_io_close (mem[i]);
  }
  cow_io_close (w.origin);
}
END_TEST

static TCase *
concurrent_tcase (const char *name, bool deferred)
{
  TCase *tc = tcase_create (name);

  if (deferred)
    tcase_add_unchecked_fixture (tc, set_deferred, NULL);
  tcase_set_timeout (tc, 300);
  tcase_add_loop_test (tc, test_concurrent, 0,
                       sizeof configs / sizeof configs[0]);
  tcase_add_test (tc, test_single_copy);
  tcase_add_test (tc, test_full_concurrent);
  tcase_add_test (tc, test_shared_commits);
  return tc;
}

int
main (void)
{
  Suite *s = suite_create ("origin-concurrent");

  suite_add_tcase (s, concurrent_tcase ("synchronous", false));
  suite_add_tcase (s, concurrent_tcase ("deferred", true));
  return run_suite (s);
}
