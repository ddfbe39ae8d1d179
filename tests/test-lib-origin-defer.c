/* test-lib-origin-defer.c: deferred origin writes (origin-defer.c), on
 * memory backends wrapped in hooks that can hold a store's syncs, the
 * origin's writes or a read of the origin, and log what reaches the
 * origin, so that a test can look while writes wait for their commit.
 *
 * What must hold while a write is queued: it has returned; a read of
 * the origin shows it; the origin device does not hold it yet, and the
 * snapshot still shows its point in time.  Whatever comes after it
 * (another write, a FUA write, a zero, a trim, block status, a flush,
 * closing) reaches the origin after it.  A slow read does not hold up
 * writers; writers beyond the queue's room wait; a failure that can
 * pass (no space for a commit, one failed write into the origin) fails
 * one flush, not the export.  test-lib-origin and
 * test-lib-origin-concurrent run their whole suites (power loss
 * included) with deferred writes as well.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define SIZE (1u << 20)
#define SEED_PIT 5
/* origin-defer.c's DEFER_MAX_ENTRIES. */
#define QUEUE_ENTRIES 8192

/* A backend over a memory one.  Guarded by hook_lock. */
struct hook {
  struct cow_io io;
  struct cow_io *inner;
  bool hold_sync;               /* syncs wait */
  bool hold_pwrite;             /* writes wait */
  uint64_t hold_pread_at;       /* reads at this offset wait */
  unsigned waiting;             /* calls waiting at a hold */
  bool log;                     /* record writes, punches, extents */
};

/* The origin's log: 'W' a write begins, 'w' it ends, 'P' a punch, 'E'
 * block status.
 */
struct op {
  char kind;
  uint64_t offset, count;
};
#define MAX_OPS 4096
static struct op ops[MAX_OPS];
static unsigned nops;

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hook_cond = PTHREAD_COND_INITIALIZER;

#define HOOK(io) ((struct hook *) (io))

static void
note (struct hook *h, char kind, uint64_t offset, uint64_t count)
{
  pthread_mutex_lock (&hook_lock);
  if (h->log && nops < MAX_OPS)
    ops[nops++] = (struct op) { kind, offset, count };
  pthread_mutex_unlock (&hook_lock);
}

/* Wait while *hold is set (hook_lock held by the caller). */
static void
wait_hold (struct hook *h, const bool *hold)
{
  h->waiting++;
  pthread_cond_broadcast (&hook_cond);
  while (*hold)
    pthread_cond_wait (&hook_cond, &hook_lock);
  h->waiting--;
}

static int
h_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  struct hook *h = HOOK (io);
  bool held;

  pthread_mutex_lock (&hook_lock);
  held = offset == h->hold_pread_at;
  if (held) {
    h->waiting++;
    pthread_cond_broadcast (&hook_cond);
    while (offset == h->hold_pread_at)
      pthread_cond_wait (&hook_cond, &hook_lock);
    h->waiting--;
  }
  pthread_mutex_unlock (&hook_lock);
  return cow_io_pread (h->inner, buf, count, offset);
}

static int
h_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  struct hook *h = HOOK (io);
  int r;

  note (h, 'W', offset, count);
  pthread_mutex_lock (&hook_lock);
  wait_hold (h, &h->hold_pwrite);
  pthread_mutex_unlock (&hook_lock);
  r = cow_io_pwrite (h->inner, buf, count, offset);
  note (h, 'w', offset, count);
  return r;
}

static int
h_sync (struct cow_io *io)
{
  struct hook *h = HOOK (io);

  pthread_mutex_lock (&hook_lock);
  wait_hold (h, &h->hold_sync);
  pthread_mutex_unlock (&hook_lock);
  return cow_io_sync (h->inner);
}

static int
h_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (HOOK (io)->inner, size);
}

static int
h_grow (struct cow_io *io, uint64_t size)
{
  struct cow_io *in = HOOK (io)->inner;

  return in->ops->grow (in, size);
}

static int
h_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  struct cow_io *in = HOOK (io)->inner;

  note (HOOK (io), 'P', offset, count);
  return in->ops->punch (in, offset, count);
}

static int
h_extent (struct cow_io *io, uint64_t offset, uint64_t count,
          uint64_t *len, bool *hole)
{
  struct cow_io *in = HOOK (io)->inner;

  note (HOOK (io), 'E', offset, count);
  return in->ops->extent (in, offset, count, len, hole);
}

static void
h_close (struct cow_io *io)
{
  free (io);
}

static const struct cow_io_ops hook_ops = {
  .name = "hook",
  .pread = h_pread, .pwrite = h_pwrite, .sync = h_sync,
  .get_size = h_get_size, .grow = h_grow, .punch = h_punch,
  .extent = h_extent, .close = h_close,
};

static struct hook *
hook_new (struct cow_io *inner)
{
  struct hook *h = calloc (1, sizeof *h);

  ck_assert_ptr_nonnull (h);
  h->io.ops = &hook_ops;
  h->inner = inner;
  h->hold_pread_at = UINT64_MAX;
  return h;
}

/* Set a hold (or any hook field) under the lock and wake the waiters. */
#define HOOK_SET(field, value)                  \
  do {                                          \
    pthread_mutex_lock (&hook_lock);            \
    field = (value);                            \
    pthread_cond_broadcast (&hook_cond);        \
    pthread_mutex_unlock (&hook_lock);          \
  } while (0)

/* Wait until n calls wait at h's holds. */
static void
wait_waiting (struct hook *h, unsigned n)
{
  pthread_mutex_lock (&hook_lock);
  while (h->waiting < n)
    pthread_cond_wait (&hook_cond, &hook_lock);
  pthread_mutex_unlock (&hook_lock);
}

static void
sleep_ms (long ms)
{
  struct timespec t = { ms / 1000, ms % 1000 * 1000000 };

  nanosleep (&t, NULL);
}

/* One origin with one store of 4K chunks, both hooked. */
struct rig {
  size_t size;
  struct cow_io *omem, *mem;
  struct hook *origin, *cow;
  struct cow_store *s;
  struct cow_origin *o;
  uint8_t *pit;                 /* the origin at the point in time */
  uint8_t *want;                /* the origin as written */
  struct msgs m;
};

static void
rig_open (struct rig *r, size_t size, bool fail_write_when_full)
{
  struct cow_store_params p = { .chunk_sectors = 8, .live_origin = true };
  struct cow_origin_params op = {
    .defer_writes = true,
    .fail_write_when_full = fail_write_when_full,
    .message = msgs_fn, .message_opaque = &r->m,
  };

  msgs_init (&r->m);
  r->size = size;
  r->pit = malloc (size);
  r->want = malloc (size);
  ck_assert (r->pit && r->want);
  r->omem = origin_new (size, SEED_PIT);
  /* The top half of the origin is a hole, for block status. */
  ck_assert_int_eq (r->omem->ops->punch (r->omem, size / 2, size / 2), 0);
  cow_io_mem_set_extents (r->omem);
  ck_assert_int_eq (cow_io_pread (r->omem, r->pit, size, 0), 0);
  memcpy (r->want, r->pit, size);
  r->mem = cow_io_mem_new (NULL, 0, true);
  r->origin = hook_new (r->omem);
  r->cow = hook_new (r->mem);
  ck_assert_int_eq (cow_store_open (&r->cow->io, &r->origin->io, &p, &r->s),
                    0);
  ck_assert_int_eq (cow_origin_open (&r->origin->io, &r->s, 1, &op, &r->o),
                    0);
}

/* The origin's view, its device, and the snapshot. */
static void
check (struct rig *r, bool device_written, const char *when)
{
  uint8_t *buf = malloc (r->size);
  const uint8_t *d;
  size_t size;
  char what[128];

  ck_assert_ptr_nonnull (buf);
  ck_assert_int_eq (cow_origin_pread (r->o, buf, r->size, 0), 0);
  snprintf (what, sizeof what, "%s: the origin's view", when);
  assert_bytes (buf, r->want, r->size, what);
  ck_assert_int_eq (cow_snapshot_pread (r->s, buf, r->size, 0), 0);
  snprintf (what, sizeof what, "%s: the snapshot", when);
  assert_bytes (buf, r->pit, r->size, what);
  d = cow_io_mem_data (r->omem, &size);
  snprintf (what, sizeof what, "%s: the origin device", when);
  assert_bytes (d, device_written ? r->want : r->pit, r->size, what);
  free (buf);
}

static void
rig_close (struct rig *r)
{
  cow_origin_close (r->o);
  cow_store_close (r->s);
  cow_io_close (&r->cow->io);
  cow_io_close (r->mem);
  cow_io_close (&r->origin->io);
  cow_io_close (r->omem);
  free (r->pit);
  free (r->want);
}

static void
put (struct rig *r, char c, uint32_t count, uint64_t offset, bool fua)
{
  uint8_t buf[65536];

  ck_assert_uint_le (count, sizeof buf);
  memset (buf, c, count);
  ck_assert_int_eq (cow_origin_pwrite (r->o, buf, count, offset, fua), 0);
  memset (r->want + offset, c, count);
}

/* A write that needs a copy returns while its commit is held, shows in
 * the origin's view at once, and reaches the device only after the
 * commit; writes over it keep their order.
 */
START_TEST (test_queued)
{
  static struct rig r;

  rig_open (&r, SIZE, false);
  HOOK_SET (r.cow->hold_sync, true);
  put (&r, 'A', 8192, 8192, false);
  put (&r, 'B', 1024, 9216, false);     /* over it, queued behind it */
  put (&r, 'C', 512, 100000, false);
  wait_waiting (r.cow, 1);
  check (&r, false, "commit held");
  /* Partly over a queued write, and not on a 512-byte boundary. */
  put (&r, 'D', 3000, 8000, false);
  check (&r, false, "commit still held");
  HOOK_SET (r.cow->hold_sync, false);
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after the flush");
  rig_close (&r);
}
END_TEST

struct change {
  struct rig *r;
  int kind;                     /* 0 FUA write, 1 zero, 2 trim, 3 extents */
  uint32_t count;
  uint64_t offset;
  int result;
};

static int
ignore_extent (void *opaque, uint64_t offset, uint64_t length, bool zero)
{
  return 0;
}

static void *
change_thread (void *arg)
{
  struct change *c = arg;
  uint8_t buf[4096];

  memset (buf, 'F', sizeof buf);
  switch (c->kind) {
  case 0:
    c->result = cow_origin_pwrite (c->r->o, buf, c->count, c->offset, true);
    break;
  case 1:
    c->result = cow_origin_zero (c->r->o, c->count, c->offset, false, false);
    break;
  case 2:
    c->result = cow_origin_trim (c->r->o, c->count, c->offset, false);
    break;
  default:
    c->result = cow_origin_extents (c->r->o, c->count, c->offset,
                                    ignore_extent, NULL);
  }
  return NULL;
}

/* A FUA write, a zero, a trim and block status over a queued write
 * reach the origin after the queued write is written, not before.  The
 * queued writes are held at the origin's write, and the changes given
 * time to overtake them if they could; the origin's log then shows the
 * order.
 */
START_TEST (test_after_queued)
{
  static struct rig r;
  struct change c[4] = {
    { &r, 0, 4096, 16384, 0 },
    { &r, 1, 4096, 32768, 0 },
    { &r, 2, 4096, 49152, 0 },
    { &r, 3, 4096, SIZE / 2 + 8192, 0 },
  };
  pthread_t t[4];

  rig_open (&r, SIZE, false);
  HOOK_SET (r.origin->log, true);
  HOOK_SET (r.origin->hold_pwrite, true);
  for (int k = 0; k < 4; k++)
    put (&r, 'Q', 8192, c[k].offset - 2048, false);
  wait_waiting (r.origin, 1);           /* the applier, after the commit */
  for (int k = 0; k < 4; k++)
    ck_assert_int_eq (pthread_create (&t[k], NULL, change_thread, &c[k]), 0);
  sleep_ms (100);
  HOOK_SET (r.origin->hold_pwrite, false);
  for (int k = 0; k < 4; k++) {
    pthread_join (t[k], NULL);
    ck_assert_int_eq (c[k].result, 0);
  }
  /* Each change's first operation on the origin comes after the end of
   * the queued write under it.
   */
  for (int k = 0; k < 4; k++) {
    int done = -1, first = -1;

    for (unsigned i = 0; i < nops; i++) {
      if (ops[i].kind == 'w' && ops[i].offset == c[k].offset - 2048)
        done = i;
      else if (ops[i].kind != 'w' && ops[i].offset == c[k].offset &&
               first < 0)
        first = i;
    }
    ck_assert_int_ge (done, 0);
    ck_assert_int_ge (first, 0);
    if (first < done)
      ck_abort_msg ("change %d reached the origin (op %d, '%c') before "
                    "the queued write under it ended (op %d)", k, first,
                    ops[first].kind, done);
  }
  memset (r.want + 16384, 'F', 4096);
  memset (r.want + 32768, 0, 4096);
  memset (r.want + 49152, 0, 4096);     /* the mem origin punches */
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after the changes");
  rig_close (&r);
}
END_TEST

static int
note_extent (void *opaque, uint64_t offset, uint64_t length, bool is_zero)
{
  bool *hole_at = opaque;

  for (uint64_t k = offset / 4096; k < (offset + length) / 4096; k++)
    hole_at[k] = is_zero;
  return 0;
}

/* A queued write into a hole of the origin is data, not a hole, to
 * block status.
 */
START_TEST (test_extents)
{
  static struct rig r;
  bool hole_at[SIZE / 4096];

  rig_open (&r, SIZE, false);
  HOOK_SET (r.cow->hold_sync, true);
  put (&r, 'E', 4096, SIZE / 2 + 8192, false);
  wait_waiting (r.cow, 1);
  HOOK_SET (r.cow->hold_sync, false);
  ck_assert_int_eq (cow_origin_extents (r.o, SIZE / 2, SIZE / 2, note_extent,
                                        hole_at), 0);
  ck_assert (!hole_at[SIZE / 2 / 4096 + 2]);
  ck_assert (hole_at[SIZE / 2 / 4096 + 3]);
  check (&r, true, "after block status");
  rig_close (&r);
}
END_TEST

/* Closing without a flush still writes every queued write, after its
 * commit.
 */
START_TEST (test_close)
{
  static struct rig r;
  struct cow_store_params p = { .chunk_sectors = 8, .live_origin = true };
  uint8_t *buf = malloc (SIZE);
  const uint8_t *d;
  size_t size;

  rig_open (&r, SIZE, false);
  put (&r, 'K', 4096, 4096 * 7, false);
  put (&r, 'L', 600, 4096 * 200 + 17, false);
  cow_origin_close (r.o);
  cow_store_close (r.s);
  d = cow_io_mem_data (r.omem, &size);
  assert_bytes (d, r.want, SIZE, "the origin device after close");
  ck_assert_int_eq (cow_store_open (r.mem, r.omem, &p, &r.s), 0);
  ck_assert_int_eq (cow_snapshot_pread (r.s, buf, SIZE, 0), 0);
  assert_bytes (buf, r.pit, SIZE, "the snapshot after reopening");
  cow_store_close (r.s);
  cow_io_close (&r.cow->io);
  cow_io_close (r.mem);
  cow_io_close (&r.origin->io);
  cow_io_close (r.omem);
  free (r.pit);
  free (r.want);
  free (buf);
}
END_TEST

/* Many writes, all over one another: nothing is lost or reordered. */
START_TEST (test_many)
{
  static struct rig r;
  uint64_t rng = 12345;

  rig_open (&r, SIZE, false);
  for (unsigned k = 0; k < 20000; k++) {
    uint64_t offset, count;

    rng = rng * 6364136223846793005u + 1442695040888963407u;
    count = 1 + (rng >> 33) % 8192;
    offset = (rng >> 13) % (SIZE - count);
    put (&r, 'a' + k % 26, count, offset, false);
  }
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after 20000 writes");
  rig_close (&r);
}
END_TEST

#define ROOM_SIZE ((QUEUE_ENTRIES + 64) * 4096u)
static _Atomic unsigned room_done;

static void *
room_thread (void *arg)
{
  struct rig *r = arg;

  /* Each write copies a chunk of its own, so each needs the commit. */
  for (unsigned k = 0; k < QUEUE_ENTRIES + 8; k++) {
    put (r, 'a' + k % 26, 512, (uint64_t) k * 4096 + 512, false);
    room_done++;
  }
  return NULL;
}

/* With the commit held, the queue fills up and the next writer waits
 * for room; once the commit goes, it goes on, and nothing is lost.
 */
START_TEST (test_room)
{
  static struct rig r;
  pthread_t t;

  rig_open (&r, ROOM_SIZE, false);
  HOOK_SET (r.cow->hold_sync, true);
  ck_assert_int_eq (pthread_create (&t, NULL, room_thread, &r), 0);
  while (room_done < QUEUE_ENTRIES)
    sleep_ms (1);
  sleep_ms (200);
  ck_assert_uint_eq (room_done, QUEUE_ENTRIES);
  HOOK_SET (r.cow->hold_sync, false);
  pthread_join (t, NULL);
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after the queue was full");
  rig_close (&r);
}
END_TEST

struct reader {
  struct rig *r;
  uint8_t buf[4096];
  int result;
};

static void *
reader_thread (void *arg)
{
  struct reader *rd = arg;

  rd->result = cow_origin_pread (rd->r->o, rd->buf, sizeof rd->buf, 0);
  return NULL;
}

/* A read of the origin that overlaps a queued write and waits on the
 * device holds up neither writers nor the commit.
 */
START_TEST (test_slow_read)
{
  static struct rig r;
  static struct reader rd = { .r = &r };
  pthread_t t;

  rig_open (&r, SIZE, false);
  HOOK_SET (r.cow->hold_sync, true);
  put (&r, 'R', 4096, 0, false);
  HOOK_SET (r.origin->hold_pread_at, 0);
  ck_assert_int_eq (pthread_create (&t, NULL, reader_thread, &rd), 0);
  wait_waiting (r.origin, 1);
  /* Queued while the read waits (it would wait for the read if the
   * read held the queue), then written once the commit goes.
   */
  put (&r, 'S', 4096, 512 * 1024, false);
  HOOK_SET (r.cow->hold_sync, false);
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  HOOK_SET (r.origin->hold_pread_at, UINT64_MAX);
  pthread_join (t, NULL);
  ck_assert_int_eq (rd.result, 0);
  assert_bytes (rd.buf, r.want, 4096, "the slow read");
  check (&r, true, "after the slow read");
  rig_close (&r);
}
END_TEST

/* One write into the origin fails: the next flush fails, once; the
 * other writes of the batch, and everything after, go on.
 */
START_TEST (test_write_error)
{
  static struct rig r;

  rig_open (&r, SIZE, false);
  HOOK_SET (r.cow->hold_sync, true);
  put (&r, 'A', 4096, 0, false);
  put (&r, 'B', 4096, 512 * 1024, false);
  wait_waiting (r.cow, 1);
  cow_io_mem_fail (r.omem, "pwrite", 1, EIO, false);
  HOOK_SET (r.cow->hold_sync, false);
  ck_assert_int_eq (cow_origin_flush (r.o), -EIO);
  ck_assert (strstr (r.m.last_error, "cannot write the origin at offset 0")
             != NULL);
  /* A is lost, as a failed write-back is; the rest is not. */
  memcpy (r.want, r.pit, 4096);
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after the failed write");
  put (&r, 'C', 4096, 600 * 1024, false);
  put (&r, 'D', 4096, 700 * 1024, true);
  ck_assert_int_eq (cow_origin_zero (r.o, 4096, 800 * 1024, false, false), 0);
  memset (r.want + 800 * 1024, 0, 4096);
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after more writes");
  rig_close (&r);
}
END_TEST

static void *
release_sync_thread (void *arg)
{
  struct rig *r = arg;

  sleep_ms (100);
  HOOK_SET (r->cow->hold_sync, false);
  return NULL;
}

/* With on-full=fail-write, a commit that finds no space fails the flush
 * waiting for it; the queue stays, and the next flush commits it.
 */
START_TEST (test_commit_no_space)
{
  static struct rig r;
  pthread_t t;

  rig_open (&r, SIZE, true);
  HOOK_SET (r.cow->hold_sync, true);
  put (&r, 'N', 4096, 4096, false);
  wait_waiting (r.cow, 1);
  /* The commit's write of its area, once the held sync goes. */
  cow_io_mem_fail (r.mem, "pwrite", 1, ENOSPC, false);
  ck_assert_int_eq (pthread_create (&t, NULL, release_sync_thread, &r), 0);
  ck_assert_int_eq (cow_origin_flush (r.o), -ENOSPC);
  pthread_join (t, NULL);
  check (&r, false, "after the commit found no space");
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after the next flush");
  rig_close (&r);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("origin-defer");
  TCase *tc = tcase_create ("defer");

  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_queued);
  tcase_add_test (tc, test_after_queued);
  tcase_add_test (tc, test_extents);
  tcase_add_test (tc, test_close);
  tcase_add_test (tc, test_many);
  tcase_add_test (tc, test_room);
  tcase_add_test (tc, test_slow_read);
  tcase_add_test (tc, test_write_error);
  tcase_add_test (tc, test_commit_no_space);
  suite_add_tcase (s, tc);
  return run_suite (s);
}
