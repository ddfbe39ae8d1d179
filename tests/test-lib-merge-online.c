/* test-lib-merge-online.c: the online merge (lib/merge-online.c) on
 * memory backends.
 *
 * Each test makes a store through the snapshot calls (random writes of
 * one to three chunks, so there are runs and scattered records over
 * two or three areas), keeps the snapshot's view as the model, closes
 * the store and opens it again to merge, as a server restarted in
 * mode=merge would.
 *
 * - concurrent: the merge thread runs in small steps while writers and
 *   readers work.  Each writer owns every chunk c with c % (WRITERS+1)
 *   == its number, writes pieces of them and reads each back exactly;
 *   the chunks c % (WRITERS+1) == WRITERS are never written, and
 *   readers check them against the model all along.  At the end the
 *   origin equals the model and the store has no records, in memory and
 *   once reopened.
 * - being merged: the merge thread is held inside its copy (the gate in
 *   the origin backend stops its write); a write to the chunk it is
 *   copying must wait until the step is committed, and then lands: the
 *   chunk reads the written bytes, and so does the origin at the end.
 *   A write to the store in between would be lost by the commit.
 * - a new store (magic 0) is refused, and a read-only one serves the
 *   view without merging.
 * - block status and prefetch every few steps and at the end, zeroes written in chunks
 *   with records and without: a hole is reported only where the view
 *   reads zeroes (a wrapper reports zero sectors as holes).
 * - power loss: steps run one by one with durable (FUA) writes in
 *   between, and a fault stops the merge at a random write or sync; the
 *   merge must then refuse writes to chunks not merged, say "Merge
 *   failed" once, and after a random power loss (any subset of unsynced
 *   writes, torn) the reopened store shows the model everywhere and a
 *   new merge finishes it with the origin equal to the model.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define CS 8                            /* 4K chunks: 256 records an area */
#define CB (CS * 512u)
#define CHUNKS 700                      /* the last one partial */
#define SIZE (CHUNKS * CB - 1024)
#define ORIGIN_SEED 21
#define WRITERS 3
#define READERS 2

struct world {
  struct msgs msgs;
  struct cow_io *origin, *cow;
  struct cow_store *s;
  struct cow_merging *mg;
  uint8_t *model;
  uint64_t rng;
};

static uint64_t
next_rand (uint64_t *rng)
{
  *rng ^= *rng << 13;
  *rng ^= *rng >> 7;
  *rng ^= *rng << 17;
  return *rng;
}

static void
open_store (struct world *w)
{
  struct cow_store_params p = params_for (&w->msgs, CS);

  ck_assert_int_eq (cow_store_open (w->cow, w->origin, &p, &w->s), 0);
}

/* The store, made through the snapshot calls, and the model. */
static void
world_make (struct world *w, uint64_t seed, unsigned writes)
{
  uint8_t *buf = malloc (3 * CB);

  memset (w, 0, sizeof *w);
  msgs_init (&w->msgs);
  w->rng = seed * 2654435761u + 7;
  w->origin = origin_new (SIZE, ORIGIN_SEED);
  w->cow = cow_io_mem_new (NULL, 0, true);
  w->model = malloc (SIZE);
  ck_assert (buf && w->origin && w->cow && w->model);
  pattern_fill (w->model, SIZE, ORIGIN_SEED, 0);
  open_store (w);
  for (unsigned i = 0; i < writes; i++) {
    uint64_t chunk = next_rand (&w->rng) % CHUNKS;
    uint64_t off = chunk * CB + next_rand (&w->rng) % CB;
    uint64_t len = 1 + next_rand (&w->rng) % (3 * CB);

    if (off >= SIZE)
      continue;
    if (len > SIZE - off)
      len = SIZE - off;
    pattern_fill (buf, len, 100 + i, off);
    ck_assert_int_eq (cow_snapshot_pwrite (w->s, buf, len, off, false), 0);
    memcpy (w->model + off, buf, len);
  }
  ck_assert_int_eq (cow_store_close (w->s), 0);
  w->s = NULL;
  free (buf);
  open_store (w);
}

static void
merging_open (struct world *w, uint64_t step_bytes)
{
  struct cow_merging_params mp = { .step_bytes = step_bytes };

  ck_assert_int_eq (cow_merging_open (w->s, &mp, &w->mg), 0);
}

/* The view, the origin and the store after the merge. */
static void
check_merged (struct world *w)
{
  struct cow_merging_status st;
  struct cow_usage u;
  uint8_t *got = malloc (SIZE);
  const uint8_t *img;
  size_t size;

  ck_assert_ptr_nonnull (got);
  cow_merging_get_status (w->mg, &st);
  ck_assert_int_eq (st.state, COW_MERGING_DONE);
  ck_assert_uint_eq (st.records_left, 0);
  ck_assert_int_eq (cow_merging_pread (w->mg, got, SIZE, 0), 0);
  assert_bytes (got, w->model, SIZE, "the view after the merge");
  img = cow_io_mem_data (w->origin, &size);
  ck_assert_uint_eq (size, SIZE);
  assert_bytes (img, w->model, SIZE, "the origin after the merge");
  cow_merging_close (w->mg);
  w->mg = NULL;
  ck_assert_int_eq (cow_store_close (w->s), 0);
  /* Reopened: no record on disk either; the kernel's usage after a
   * merge (2 chunks allocated, 2 of metadata).
   */
  open_store (w);
  cow_store_usage (w->s, &u);
  ck_assert_uint_eq (u.records, 0);
  ck_assert_uint_eq (u.allocated_sectors, 2 * CS);
  ck_assert_uint_eq (u.metadata_sectors, 2 * CS);
  ck_assert_int_eq (cow_snapshot_pread (w->s, got, SIZE, 0), 0);
  assert_bytes (got, w->model, SIZE, "the reopened store's view");
  ck_assert_int_eq (cow_store_close (w->s), 0);
  w->s = NULL;
  free (got);
}

static void
world_free (struct world *w)
{
  cow_io_close (w->origin);
  cow_io_close (w->cow);
  free (w->model);
}

/* Concurrent readers and writers. */

struct worker {
  struct world *w;
  unsigned id;
  uint64_t rng;
  _Atomic bool *stop;
  char failure[200];
  unsigned ops;
};

static bool
owned_by (uint64_t chunk, unsigned id)
{
  return chunk % (WRITERS + 1) == id;
}

static void *
writer (void *arg)
{
  struct worker *k = arg;
  struct world *w = k->w;
  uint8_t *buf = malloc (CB), *got = malloc (CB);

  /* At least some work after the merge is done, too. */
  while ((!*k->stop || k->ops < 200) && k->failure[0] == 0) {
    uint64_t chunk = next_rand (&k->rng) % CHUNKS;
    uint64_t start, in, len, valid;
    unsigned kind = next_rand (&k->rng) % 8;
    int r;

    chunk -= chunk % (WRITERS + 1);
    chunk += k->id;
    if (chunk >= CHUNKS || !owned_by (chunk, k->id))
      continue;
    start = chunk * CB;
    valid = SIZE - start < CB ? SIZE - start : CB;
    in = next_rand (&k->rng) % valid;
    len = 1 + next_rand (&k->rng) % (valid - in);
    if (kind == 0) {
      r = cow_merging_zero (w->mg, len, start + in, false, false);
      memset (w->model + start + in, 0, len);
    }
    else {
      pattern_fill (buf, len, 1000 + k->id * 100000 + k->ops, start + in);
      r = cow_merging_pwrite (w->mg, buf, len, start + in, kind == 1);
      memcpy (w->model + start + in, buf, len);
    }
    if (r == 0 && kind == 2)
      r = cow_merging_flush (w->mg);
    if (r == 0)
      r = cow_merging_pread (w->mg, got, valid, start);
    if (r != 0)
      snprintf (k->failure, sizeof k->failure, "writer %u: error %d",
                k->id, r);
    else if (memcmp (got, w->model + start, valid) != 0)
      snprintf (k->failure, sizeof k->failure, "writer %u: chunk %" PRIu64
                " reads other than written", k->id, chunk);
    k->ops++;
  }
  free (buf);
  free (got);
  return NULL;
}

static void *
reader (void *arg)
{
  struct worker *k = arg;
  struct world *w = k->w;
  uint8_t *got = malloc (4 * CB);

  while ((!*k->stop || k->ops < 200) && k->failure[0] == 0) {
    uint64_t chunk = next_rand (&k->rng) % CHUNKS;
    uint64_t start, len;

    chunk -= chunk % (WRITERS + 1);
    chunk += WRITERS;
    if (chunk >= CHUNKS)
      continue;
    start = chunk * CB + next_rand (&k->rng) % CB;
    len = 1 + next_rand (&k->rng) % CB;
    if (start >= SIZE)
      continue;
    if (len > SIZE - start)
      len = SIZE - start;
    /* Within one chunk nobody writes. */
    if ((start + len - 1) / CB != chunk)
      len = (chunk + 1) * CB - start;
    if (cow_merging_pread (w->mg, got, len, start) != 0)
      snprintf (k->failure, sizeof k->failure, "reader %u: read error",
                k->id);
    else if (memcmp (got, w->model + start, len) != 0)
      snprintf (k->failure, sizeof k->failure, "reader %u: %" PRIu64
                " bytes at %" PRIu64 " differ from the model", k->id, len,
                start);
    k->ops++;
  }
  free (got);
  return NULL;
}

START_TEST (test_concurrent)
{
  for (uint64_t seed = 1; seed <= 3; seed++) {
    struct world w;
    struct worker k[WRITERS + READERS];
    pthread_t t[WRITERS + READERS];
    struct cow_merging_status st;
    _Atomic bool stop = false;

    world_make (&w, seed, 400);
    /* Steps of one to three chunks: many of them, so writers meet. */
    merging_open (&w, CB * (1 + seed % 3));
    cow_merging_get_status (w.mg, &st);
    ck_assert_uint_gt (st.records_at_start, 300);
    ck_assert_int_eq (st.state, COW_MERGING_WAITING);
    for (unsigned i = 0; i < WRITERS + READERS; i++) {
      k[i] = (struct worker) {
        .w = &w, .id = i < WRITERS ? i : i - WRITERS,
        .rng = seed * 1000 + i + 1, .stop = &stop,
      };
      ck_assert_int_eq (pthread_create (&t[i], NULL,
                                        i < WRITERS ? writer : reader,
                                        &k[i]), 0);
    }
    ck_assert_int_eq (cow_merging_start (w.mg), 0);
    /* Running as soon as started, whether or not its thread has
     * taken a step yet.
     */
    cow_merging_get_status (w.mg, &st);
    ck_assert_int_ne (st.state, COW_MERGING_WAITING);
    ck_assert_int_eq (cow_merging_wait (w.mg), 0);
    stop = true;
    for (unsigned i = 0; i < WRITERS + READERS; i++) {
      pthread_join (t[i], NULL);
      ck_assert_msg (k[i].failure[0] == 0, "%s", k[i].failure);
    }
    cow_merging_get_status (w.mg, &st);
    ck_assert_uint_gt (st.bytes, 0);
    check_merged (&w);
    world_free (&w);
  }
}
END_TEST

/* A write to a chunk being merged. */

struct gate {
  struct cow_io io;
  struct cow_io *inner;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool armed, hit, open;
  uint64_t hit_offset;
};

static int
gate_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  struct gate *g = (struct gate *) io;

  return cow_io_pread (g->inner, buf, count, offset);
}

static int
gate_pwrite (struct cow_io *io, const void *buf, size_t count,
             uint64_t offset)
{
  struct gate *g = (struct gate *) io;

  pthread_mutex_lock (&g->lock);
  if (g->armed) {
    g->armed = false;
    g->hit = true;
    g->hit_offset = offset;
    pthread_cond_broadcast (&g->cond);
    while (!g->open)
      pthread_cond_wait (&g->cond, &g->lock);
  }
  pthread_mutex_unlock (&g->lock);
  return cow_io_pwrite (g->inner, buf, count, offset);
}

static int
gate_sync (struct cow_io *io)
{
  return cow_io_sync (((struct gate *) io)->inner);
}

static int
gate_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (((struct gate *) io)->inner, size);
}

static void
gate_close (struct cow_io *io)
{
}

static const struct cow_io_ops gate_ops = {
  .name = "gate",
  .pread = gate_pread,
  .pwrite = gate_pwrite,
  .sync = gate_sync,
  .get_size = gate_get_size,
  .close = gate_close,
};

struct late_write {
  struct world *w;
  uint64_t offset, len;
  const uint8_t *buf;
  _Atomic bool done;
  int r;
};

static void *
late_writer (void *arg)
{
  struct late_write *lw = arg;

  lw->r = cow_merging_pwrite (lw->w->mg, lw->buf, lw->len, lw->offset, false);
  lw->done = true;
  return NULL;
}

START_TEST (test_being_merged)
{
  struct world w;
  struct gate g = { .io.ops = &gate_ops };
  struct late_write lw;
  uint8_t *buf = malloc (CB);
  pthread_t t;
  struct timespec pause = { 0, 50 * 1000 * 1000 };
  struct cow_store_params p;
  chunk_t nc;

  world_make (&w, 9, 300);
  ck_assert_int_eq (cow_store_close (w.s), 0);
  g.inner = w.origin;
  pthread_mutex_init (&g.lock, NULL);
  pthread_cond_init (&g.cond, NULL);
  p = params_for (&w.msgs, CS);
  ck_assert_int_eq (cow_store_open (w.cow, &g.io, &p, &w.s), 0);
  merging_open (&w, CB);
  g.armed = true;
  ck_assert_int_eq (cow_merging_start (w.mg), 0);

  pthread_mutex_lock (&g.lock);
  while (!g.hit)
    pthread_cond_wait (&g.cond, &g.lock);
  pthread_mutex_unlock (&g.lock);
  /* The merge has read the chunk from the store and is writing it to
   * the origin; its record is still there.
   */
  ck_assert (cow_store_lookup (w.s, g.hit_offset / CB, &nc));
  lw = (struct late_write) {
    .w = &w, .offset = g.hit_offset + 100, .len = 200, .buf = buf,
  };
  pattern_fill (buf, lw.len, 77, lw.offset);
  memcpy (w.model + lw.offset, buf, lw.len);
  ck_assert_int_eq (pthread_create (&t, NULL, late_writer, &lw), 0);
  nanosleep (&pause, NULL);
  /* However long it is given, it cannot finish while the step holds
   * the chunk's lock.
   */
  ck_assert_msg (!lw.done, "a write to a chunk being merged did not wait");
  pthread_mutex_lock (&g.lock);
  g.open = true;
  pthread_cond_broadcast (&g.cond);
  pthread_mutex_unlock (&g.lock);
  pthread_join (t, NULL);
  ck_assert_int_eq (lw.r, 0);
  ck_assert_int_eq (cow_merging_wait (w.mg), 0);
  check_merged (&w);
  world_free (&w);
  free (buf);
}
END_TEST

/* Power loss at random points, then resume. */

static void
check_view (struct world *w, const char *what)
{
  uint8_t *got = malloc (SIZE);

  ck_assert_ptr_nonnull (got);
  ck_assert_int_eq (cow_merging_pread (w->mg, got, SIZE, 0), 0);
  assert_bytes (got, w->model, SIZE, what);
  free (got);
}

/* A durable write (FUA) of 1..2 chunks' worth somewhere. */
static void
random_write (struct world *w, unsigned i)
{
  uint8_t buf[2 * CB];
  uint64_t off = next_rand (&w->rng) % SIZE;
  uint64_t len = 1 + next_rand (&w->rng) % sizeof buf;

  if (len > SIZE - off)
    len = SIZE - off;
  pattern_fill (buf, len, 5000 + i, off);
  ck_assert_int_eq (cow_merging_pwrite (w->mg, buf, len, off, true), 0);
  memcpy (w->model + off, buf, len);
}

static void
clear_faults (struct world *w)
{
  cow_io_mem_fail (w->origin, "pwrite", 0, 0, false);
  cow_io_mem_fail (w->origin, "sync", 0, 0, false);
  cow_io_mem_fail (w->cow, "pwrite", 0, 0, false);
  cow_io_mem_fail (w->cow, "sync", 0, 0, false);
}

START_TEST (test_power_loss)
{
  static const char *const ops[] = { "pwrite", "sync" };

  for (uint64_t seed = 1; seed <= 24; seed++) {
    struct world w;
    unsigned steps_before, writes = 0, rounds = 0;
    uint64_t rng;
    int r;

    world_make (&w, 100 + seed, 250);
    rng = seed * 7919 + 3;
    ck_assert_int_eq (cow_io_mem_track_power_loss (w.origin), 0);
    ck_assert_int_eq (cow_io_mem_track_power_loss (w.cow), 0);

    /* Crash, resume, until a merge gets to the end. */
    for (;;) {
      struct cow_merging_status st;
      bool crashed = false, armed;

      merging_open (&w, CB * (1 + next_rand (&rng) % 4));
      check_view (&w, "the view at open");
      steps_before = next_rand (&rng) % 12;
      armed = false;
      for (unsigned i = 0; ; i++) {
        /* Until the fault is armed: it is for the merge to meet. */
        if (!armed)
          random_write (&w, writes++);
        if (i == steps_before && rounds < 3) {
          struct cow_io *io = next_rand (&rng) % 2 ? w.origin : w.cow;

          cow_io_mem_fail (io, ops[next_rand (&rng) % 2],
                           1 + next_rand (&rng) % 4, EIO, true);
          armed = true;
        }
        r = cow_merging_step (w.mg);
        if (r < 0) {
          crashed = true;
          break;
        }
        if (r == 0)
          break;
      }
      if (!crashed) {
        clear_faults (&w);
        check_view (&w, "the view at the end");
        check_merged (&w);
        break;
      }

      /* Failed: said once, as the kernel's status says it. */
      cow_merging_get_status (w.mg, &st);
      ck_assert_int_eq (st.state, COW_MERGING_FAILED);
      ck_assert_msg (strstr (w.msgs.last_error, "Merge failed") != NULL,
                     "last error: %s", w.msgs.last_error);
      ck_assert_int_lt (cow_merging_step (w.mg), 0);
      for (chunk_t c = 0; c < CHUNKS; c++) {
        chunk_t nc;
        uint8_t b = 1;

        if (cow_store_lookup (w.s, c, &nc)) {
          ck_assert_int_eq (cow_merging_pwrite (w.mg, &b, 1, c * CB, false),
                            -EIO);
          break;
        }
      }
      cow_merging_close (w.mg);
      w.mg = NULL;
      cow_store_close (w.s);
      w.s = NULL;
      clear_faults (&w);
      ck_assert_int_eq (cow_io_mem_power_loss_random (w.origin,
                                                      seed * 31 + rounds,
                                                      NULL), 0);
      ck_assert_int_eq (cow_io_mem_power_loss_random (w.cow,
                                                      seed * 37 + rounds,
                                                      NULL), 0);
      rounds++;
      open_store (&w);
    }
    world_free (&w);
  }
}
END_TEST

/* Read-only: the view is served, and the merge does not start. */
START_TEST (test_readonly)
{
  struct world w;
  struct cow_store_params p;
  uint8_t *got = malloc (SIZE);
  const uint8_t *img;
  size_t size;

  world_make (&w, 5, 100);
  ck_assert_int_eq (cow_store_close (w.s), 0);
  p = params_for (&w.msgs, CS);
  p.readonly = true;
  ck_assert_int_eq (cow_store_open (w.cow, w.origin, &p, &w.s), 0);
  merging_open (&w, 0);
  ck_assert_int_eq (cow_merging_start (w.mg), -EROFS);
  ck_assert_int_eq (cow_merging_pwrite (w.mg, got, 1, 0, false), -EROFS);
  ck_assert_int_eq (cow_merging_pread (w.mg, got, SIZE, 0), 0);
  assert_bytes (got, w.model, SIZE, "the read-only view");
  img = cow_io_mem_data (w.origin, &size);
  pattern_fill (got, SIZE, ORIGIN_SEED, 0);
  assert_bytes (img, got, SIZE, "the origin, untouched");
  cow_merging_close (w.mg);
  ck_assert_int_eq (cow_store_close (w.s), 0);
  world_free (&w);
  free (got);
}
END_TEST

/* A new store (magic 0), opened read-only as a server opens it: a
 * merge would initialise it only to empty it.  Refused, nothing
 * written.
 */
START_TEST (test_new_store)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, CS);
  struct cow_io *origin = origin_new (SIZE, ORIGIN_SEED);
  struct cow_io *cow = cow_io_mem_new (NULL, 0, true);
  struct cow_store *s;
  struct cow_merging *mg;
  size_t size;

  msgs_init (&m);
  p.readonly = true;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_merging_open (s, NULL, &mg), -EINVAL);
  ck_assert_ptr_null (mg);
  ck_assert_msg (strstr (m.last_error, "the store is new (magic 0): there "
                         "is no snapshot to merge") != NULL,
                 "%s", m.last_error);
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (size, 0);
  cow_io_close (origin);
  cow_io_close (cow);
}
END_TEST

/* Block status: a wrapper that reports sectors of zeroes as holes, so
 * that a wrong answer (data shown as a hole) can be seen.
 */
struct holes {
  struct cow_io io;
  struct cow_io *inner;
};

static int
holes_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  return cow_io_pread (((struct holes *) io)->inner, buf, count, offset);
}

static int
holes_pwrite (struct cow_io *io, const void *buf, size_t count,
              uint64_t offset)
{
  return cow_io_pwrite (((struct holes *) io)->inner, buf, count, offset);
}

static int
holes_sync (struct cow_io *io)
{
  return cow_io_sync (((struct holes *) io)->inner);
}

static int
holes_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (((struct holes *) io)->inner, size);
}

static int
holes_grow (struct cow_io *io, uint64_t size)
{
  struct cow_io *in = ((struct holes *) io)->inner;

  return in->ops->grow (in, size);
}

static int
holes_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  struct cow_io *in = ((struct holes *) io)->inner;

  return in->ops->punch (in, offset, count);
}

static bool
all_zero (const uint8_t *p, uint64_t n)
{
  return p[0] == 0 && memcmp (p, p + 1, n - 1) == 0;
}

/* Up to 64K at a time, sector by sector. */
static int
holes_extent (struct cow_io *io, uint64_t offset, uint64_t count,
              uint64_t *length, bool *is_hole)
{
  struct cow_io *in = ((struct holes *) io)->inner;
  static _Thread_local uint8_t buf[65536];
  uint64_t n = count < sizeof buf ? count : sizeof buf;
  uint64_t first = n < 512 - offset % 512 ? n : 512 - offset % 512;
  uint64_t len = first;
  bool z;

  ck_assert_int_eq (cow_io_pread (in, buf, n, offset), 0);
  z = all_zero (buf, first);
  while (len < n) {
    uint64_t m = n - len < 512 ? n - len : 512;

    if (all_zero (buf + len, m) != z)
      break;
    len += m;
  }
  *length = len;
  *is_hole = z;
  return 0;
}

static void
holes_close (struct cow_io *io)
{
}

static const struct cow_io_ops holes_ops = {
  .name = "holes",
  .pread = holes_pread,
  .pwrite = holes_pwrite,
  .sync = holes_sync,
  .get_size = holes_get_size,
  .grow = holes_grow,
  .punch = holes_punch,
  .extent = holes_extent,
  .close = holes_close,
};

struct walk {
  const uint8_t *model;
  uint64_t next;
};

static int
check_extent (void *opaque, uint64_t offset, uint64_t length, bool is_zero)
{
  struct walk *wk = opaque;

  ck_assert_uint_eq (offset, wk->next);
  ck_assert_uint_gt (length, 0);
  if (is_zero)
    for (uint64_t i = 0; i < length; i++)
      ck_assert_msg (wk->model[offset + i] == 0, "data at %" PRIu64
                     " reported as a hole", offset + i);
  wk->next = offset + length;
  return 0;
}

/* Block status and prefetch at every step: a hole only where the view
 * reads zeroes, and every byte covered.
 */
START_TEST (test_extents_cache)
{
  struct world w;
  struct holes ho, hc;
  struct cow_store_params p;
  bool done = false;
  int r;

  world_make (&w, 17, 300);
  ck_assert_int_eq (cow_store_close (w.s), 0);
  ho = (struct holes) { .io.ops = &holes_ops, .inner = w.origin };
  hc = (struct holes) { .io.ops = &holes_ops, .inner = w.cow };
  p = params_for (&w.msgs, CS);
  ck_assert_int_eq (cow_store_open (&hc.io, &ho.io, &p, &w.s), 0);
  merging_open (&w, 2 * CB);
  /* Zeroes in chunks with records and without. */
  for (uint64_t off = 5000; off + 3 * CB < SIZE; off += 97 * CB) {
    ck_assert_int_eq (cow_merging_zero (w.mg, 3 * CB, off, false, false), 0);
    memset (w.model + off, 0, 3 * CB);
  }
  for (unsigned step = 0; ; step++) {
    struct walk wk = { .model = w.model };

    while ((step % 8 == 0 || done) && wk.next < SIZE) {
      uint64_t n = SIZE - wk.next < (1u << 30) ? SIZE - wk.next : 1u << 30;

      ck_assert_int_eq (cow_merging_extents (w.mg, n, wk.next, check_extent,
                                             &wk), 0);
    }
    ck_assert_int_eq (cow_merging_cache (w.mg, SIZE, 0), 0);
    if (done)
      break;
    r = cow_merging_step (w.mg);
    ck_assert_int_ge (r, 0);
    done = r == 0;
  }
  check_merged (&w);
  world_free (&w);
}
END_TEST

static Suite *
merge_online_suite (void)
{
  Suite *s = suite_create ("merge-online");
  TCase *tc = tcase_create ("core");

  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_concurrent);
  tcase_add_test (tc, test_being_merged);
  tcase_add_test (tc, test_power_loss);
  tcase_add_test (tc, test_readonly);
  tcase_add_test (tc, test_new_store);
  tcase_add_test (tc, test_extents_cache);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return run_suite (merge_online_suite ());
}
