/* recording-io.c: a cow_io that passes every op to an inner cow_io and
 * records it (see recording-io.h).  The ops the inner backend lacks
 * (grow, punch, extent, pwritev, clone_from) are absent here too, so
 * the store behaves as it would on the inner backend.  reserve and
 * cache are the exceptions: they can be switched on, reserve to stand
 * for a filesystem with or without room.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recording-io.h"

struct recording_io {
  struct cow_io io;
  struct cow_io_ops ops;
  struct cow_io *inner;
  pthread_mutex_t lock;
  struct rec_op *v;
  size_t len, cap;
  unsigned sync_delay;
  _Atomic int reserve_err;
  void (*sync_hook) (void *opaque);
  void *sync_hook_opaque;
};

#define REC(io) ((struct recording_io *) (io))

static void
record (struct cow_io *io, enum rec_kind kind, uint64_t offset,
        uint64_t length)
{
  struct recording_io *r = REC (io);

  pthread_mutex_lock (&r->lock);
  if (r->len == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 256;
    struct rec_op *v = realloc (r->v, cap * sizeof *v);
    if (v == NULL)
      abort ();
    r->v = v;
    r->cap = cap;
  }
  r->v[r->len++] = (struct rec_op) { kind, offset, length };
  pthread_mutex_unlock (&r->lock);
}

static int
rec_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  record (io, REC_PREAD, offset, count);
  return cow_io_pread (REC (io)->inner, buf, count, offset);
}

static int
rec_pwrite (struct cow_io *io, const void *buf, size_t count,
            uint64_t offset)
{
  record (io, REC_PWRITE, offset, count);
  return cow_io_pwrite (REC (io)->inner, buf, count, offset);
}

/* Recorded as one op, with the total length. */
static int
rec_pwritev (struct cow_io *io, const struct iovec *iov, int iovcnt,
             uint64_t offset)
{
  struct cow_io *inner = REC (io)->inner;
  uint64_t count = 0;

  for (int i = 0; i < iovcnt; i++)
    count += iov[i].iov_len;
  record (io, REC_PWRITEV, offset, count);
  return inner->ops->pwritev (inner, iov, iovcnt, offset);
}

/* A source that is a recording backend too is passed on unwrapped, so
 * that the inner backends see each other.
 */
static int
rec_clone_from (struct cow_io *io, uint64_t offset, struct cow_io *src,
                uint64_t src_offset, uint64_t count)
{
  struct cow_io *inner = REC (io)->inner;

  record (io, REC_CLONE, offset, count);
  if (src->ops->pread == rec_pread)
    src = REC (src)->inner;
  return inner->ops->clone_from (inner, offset, src, src_offset, count);
}

static int
rec_sync (struct cow_io *io)
{
  struct recording_io *r = REC (io);
  int ret;

  record (io, REC_SYNC, 0, 0);
  if (r->sync_delay)
    usleep (r->sync_delay);
  ret = cow_io_sync (r->inner);
  if (r->sync_hook)
    r->sync_hook (r->sync_hook_opaque);
  return ret;
}

static int
rec_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (REC (io)->inner, size);
}

static int
rec_grow (struct cow_io *io, uint64_t size)
{
  struct cow_io *inner = REC (io)->inner;

  record (io, REC_GROW, size, 0);
  return inner->ops->grow (inner, size);
}

static int
rec_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  struct cow_io *inner = REC (io)->inner;

  record (io, REC_PUNCH, offset, count);
  return inner->ops->punch (inner, offset, count);
}

static int
rec_extent (struct cow_io *io, uint64_t offset, uint64_t count,
            uint64_t *length, bool *is_hole)
{
  struct cow_io *inner = REC (io)->inner;

  return inner->ops->extent (inner, offset, count, length, is_hole);
}

static int
rec_reserve (struct cow_io *io, uint64_t offset, uint64_t count)
{
  record (io, REC_RESERVE, offset, count);
  return -REC (io)->reserve_err;
}

static int
rec_cache (struct cow_io *io, uint64_t offset, uint64_t count)
{
  record (io, REC_CACHE, offset, count);
  return 0;
}

static void
rec_close (struct cow_io *io)
{
  struct recording_io *r = REC (io);

  pthread_mutex_destroy (&r->lock);
  free (r->v);
  free (r);
}

struct cow_io *
recording_io_new (struct cow_io *inner)
{
  struct recording_io *r = calloc (1, sizeof *r);

  if (r == NULL)
    return NULL;
  r->inner = inner;
  r->ops = (struct cow_io_ops) {
    .name = "recording",
    .pread = rec_pread,
    .pwrite = rec_pwrite,
    .pwritev = inner->ops->pwritev ? rec_pwritev : NULL,
    .sync = rec_sync,
    .get_size = rec_get_size,
    .grow = inner->ops->grow ? rec_grow : NULL,
    .punch = inner->ops->punch ? rec_punch : NULL,
    .extent = inner->ops->extent ? rec_extent : NULL,
    .clone_from = inner->ops->clone_from ? rec_clone_from : NULL,
    .close = rec_close,
  };
  r->io.ops = &r->ops;
  pthread_mutex_init (&r->lock, NULL);
  return &r->io;
}

size_t
recording_io_log (struct cow_io *io, struct rec_op **ops)
{
  struct recording_io *r = REC (io);
  size_t n;

  pthread_mutex_lock (&r->lock);
  n = r->len;
  *ops = malloc ((n ? n : 1) * sizeof **ops);
  if (*ops == NULL)
    abort ();
  memcpy (*ops, r->v, n * sizeof **ops);
  pthread_mutex_unlock (&r->lock);
  return n;
}

void
recording_io_clear (struct cow_io *io)
{
  struct recording_io *r = REC (io);

  pthread_mutex_lock (&r->lock);
  r->len = 0;
  pthread_mutex_unlock (&r->lock);
}

unsigned
recording_io_count (struct cow_io *io, enum rec_kind kind)
{
  struct recording_io *r = REC (io);
  unsigned n = 0;

  pthread_mutex_lock (&r->lock);
  for (size_t i = 0; i < r->len; i++)
    n += r->v[i].kind == kind;
  pthread_mutex_unlock (&r->lock);
  return n;
}

void
recording_io_set_sync_delay (struct cow_io *io, unsigned usec)
{
  REC (io)->sync_delay = usec;
}

void
recording_io_set_sync_hook (struct cow_io *io, void (*fn) (void *opaque),
                            void *opaque)
{
  REC (io)->sync_hook_opaque = opaque;
  REC (io)->sync_hook = fn;
}

void
recording_io_set_reserve (struct cow_io *io, int err)
{
  REC (io)->reserve_err = err;
  REC (io)->ops.reserve = rec_reserve;
}

void
recording_io_set_cache (struct cow_io *io)
{
  REC (io)->ops.cache = rec_cache;
}
