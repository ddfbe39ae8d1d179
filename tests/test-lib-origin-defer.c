/* test-lib-origin-defer.c: deferred origin writes (origin-defer.c), on
 * memory backends, with the store's syncs held at a latch so that a
 * test can look while writes wait for their commit.
 *
 * What must hold while a write is queued: it has returned; a read of
 * the origin shows it; the origin device does not hold it yet, and the
 * snapshot still shows its point in time.  Whatever comes after it
 * (another write, a FUA write, a zero, a trim, block status, a flush,
 * closing) sees it, in order.  test-lib-origin and
 * test-lib-origin-concurrent run their whole suites (power loss
 * included) with deferred writes as well.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define SIZE (1u << 20)
#define SEED_PIT 5

/* A backend whose syncs wait while the latch is closed. */
struct latch {
  struct cow_io io;
  struct cow_io *inner;
};

static pthread_mutex_t latch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t latch_cond = PTHREAD_COND_INITIALIZER;
static bool latch_closed;
static unsigned syncs_waiting;

#define LATCH(io) ((struct latch *) (io))

static int
l_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  return cow_io_pread (LATCH (io)->inner, buf, count, offset);
}

static int
l_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  return cow_io_pwrite (LATCH (io)->inner, buf, count, offset);
}

static int
l_sync (struct cow_io *io)
{
  pthread_mutex_lock (&latch_lock);
  syncs_waiting++;
  pthread_cond_broadcast (&latch_cond);
  while (latch_closed)
    pthread_cond_wait (&latch_cond, &latch_lock);
  syncs_waiting--;
  pthread_mutex_unlock (&latch_lock);
  return cow_io_sync (LATCH (io)->inner);
}

static int
l_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (LATCH (io)->inner, size);
}

static int
l_grow (struct cow_io *io, uint64_t size)
{
  struct cow_io *in = LATCH (io)->inner;

  return in->ops->grow (in, size);
}

static int
l_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  struct cow_io *in = LATCH (io)->inner;

  return in->ops->punch (in, offset, count);
}

static void
l_close (struct cow_io *io)
{
  free (io);
}

static const struct cow_io_ops latch_ops = {
  .name = "latch",
  .pread = l_pread, .pwrite = l_pwrite, .sync = l_sync,
  .get_size = l_get_size, .grow = l_grow, .punch = l_punch,
  .close = l_close,
};

static void
latch_set (bool closed)
{
  pthread_mutex_lock (&latch_lock);
  latch_closed = closed;
  pthread_cond_broadcast (&latch_cond);
  pthread_mutex_unlock (&latch_lock);
}

/* Wait until a commit is held at the latch. */
static void
latch_wait_sync (void)
{
  pthread_mutex_lock (&latch_lock);
  while (syncs_waiting == 0)
    pthread_cond_wait (&latch_cond, &latch_lock);
  pthread_mutex_unlock (&latch_lock);
}

/* One origin (mem) with one store of 4K chunks behind a latch. */
struct rig {
  struct cow_io *origin, *mem, *cow;
  struct cow_store *s;
  struct cow_origin *o;
  uint8_t pit[SIZE];            /* the origin at the point in time */
  uint8_t want[SIZE];           /* the origin as written */
};

static void
rig_open (struct rig *r, bool extents)
{
  struct cow_store_params p = { .chunk_sectors = 8, .live_origin = true };
  struct cow_origin_params op = { .defer_writes = true };
  struct latch *l = calloc (1, sizeof *l);

  ck_assert_ptr_nonnull (l);
  r->origin = origin_new (SIZE, SEED_PIT);
  if (extents) {
    /* The top half of the origin is a hole. */
    ck_assert_int_eq (r->origin->ops->punch (r->origin, SIZE / 2, SIZE / 2),
                      0);
    cow_io_mem_set_extents (r->origin);
  }
  ck_assert_int_eq (cow_io_pread (r->origin, r->pit, SIZE, 0), 0);
  memcpy (r->want, r->pit, SIZE);
  r->mem = cow_io_mem_new (NULL, 0, true);
  l->io.ops = &latch_ops;
  l->inner = r->mem;
  r->cow = &l->io;
  latch_set (false);
  ck_assert_int_eq (cow_store_open (r->cow, r->origin, &p, &r->s), 0);
  ck_assert_int_eq (cow_origin_open (r->origin, &r->s, 1, &op, &r->o), 0);
}

/* The origin's view, its device, and the snapshot. */
static void
check (struct rig *r, bool device_written, const char *when)
{
  static uint8_t buf[SIZE];
  const uint8_t *d;
  size_t size;
  char what[128];

  ck_assert_int_eq (cow_origin_pread (r->o, buf, SIZE, 0), 0);
  snprintf (what, sizeof what, "%s: the origin's view", when);
  assert_bytes (buf, r->want, SIZE, what);
  ck_assert_int_eq (cow_snapshot_pread (r->s, buf, SIZE, 0), 0);
  snprintf (what, sizeof what, "%s: the snapshot", when);
  assert_bytes (buf, r->pit, SIZE, what);
  d = cow_io_mem_data (r->origin, &size);
  snprintf (what, sizeof what, "%s: the origin device", when);
  assert_bytes (d, device_written ? r->want : r->pit, SIZE, what);
}

static void
rig_close (struct rig *r)
{
  cow_origin_close (r->o);
  cow_store_close (r->s);
  cow_io_close (r->cow);
  cow_io_close (r->mem);
  cow_io_close (r->origin);
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

  rig_open (&r, false);
  latch_set (true);
  put (&r, 'A', 8192, 8192, false);
  put (&r, 'B', 1024, 9216, false);     /* over it, queued behind it */
  put (&r, 'C', 512, 100000, false);
  latch_wait_sync ();
  check (&r, false, "commit held");
  /* Partly over a queued write, and not on a 512-byte boundary. */
  put (&r, 'D', 3000, 8000, false);
  check (&r, false, "commit still held");
  latch_set (false);
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check (&r, true, "after the flush");
  rig_close (&r);
}
END_TEST

struct change {
  struct rig *r;
  int kind;                     /* 0 FUA write, 1 zero, 2 trim */
  uint32_t count;
  uint64_t offset;
  int result;
};

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
  default:
    c->result = cow_origin_trim (c->r->o, c->count, c->offset, false);
  }
  return NULL;
}

/* A FUA write, a zero and a trim over a queued write go after it, not
 * under it.
 */
START_TEST (test_after_queued)
{
  static struct rig r;
  struct change c[3] = {
    { &r, 0, 4096, 16384, 0 },
    { &r, 1, 4096, 32768, 0 },
    { &r, 2, 4096, 49152, 0 },
  };
  pthread_t t[3];

  rig_open (&r, false);
  latch_set (true);
  for (int k = 0; k < 3; k++)
    put (&r, 'Q', 8192, c[k].offset - 2048, false);
  latch_wait_sync ();
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq (pthread_create (&t[k], NULL, change_thread, &c[k]), 0);
  latch_set (false);
  for (int k = 0; k < 3; k++) {
    pthread_join (t[k], NULL);
    ck_assert_int_eq (c[k].result, 0);
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

  rig_open (&r, true);
  latch_set (true);
  put (&r, 'E', 4096, SIZE / 2 + 8192, false);
  latch_wait_sync ();
  latch_set (false);
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
  static uint8_t buf[SIZE];
  const uint8_t *d;
  size_t size;

  rig_open (&r, false);
  put (&r, 'K', 4096, 4096 * 7, false);
  put (&r, 'L', 600, 4096 * 200 + 17, false);
  cow_origin_close (r.o);
  cow_store_close (r.s);
  d = cow_io_mem_data (r.origin, &size);
  assert_bytes (d, r.want, SIZE, "the origin device after close");
  ck_assert_int_eq (cow_store_open (r.cow, r.origin, &p, &r.s), 0);
  ck_assert_int_eq (cow_snapshot_pread (r.s, buf, SIZE, 0), 0);
  assert_bytes (buf, r.pit, SIZE, "the snapshot after reopening");
  cow_store_close (r.s);
  cow_io_close (r.cow);
  cow_io_close (r.mem);
  cow_io_close (r.origin);
}
END_TEST

/* More writes than the queue holds, all over one another: writers wait
 * for room, and nothing is lost or reordered.
 */
START_TEST (test_room)
{
  static struct rig r;
  uint64_t rng = 12345;

  rig_open (&r, false);
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
  tcase_add_test (tc, test_room);
  suite_add_tcase (s, tc);
  return run_suite (s);
}
