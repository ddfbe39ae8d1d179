/* io-mem.c: an I/O backend in memory, for the unit tests and the
 * fuzzer.  It can fail the nth call of any op with a chosen errno, once
 * or from then on, and counts the calls of each op.  One mutex guards
 * the image; this backend is for correctness, not speed.
 *
 * Power loss: once tracking is on, the image as of the last sync is
 * kept apart (`durable`), with the ranges changed since (`dirty`).  A
 * crash puts those ranges back as they were and the size as it was, as
 * if every write since the last sync never reached the disk.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "io.h"

enum { OP_PREAD, OP_PWRITE, OP_SYNC, OP_GROW, OP_PUNCH, NR_OPS };
static const char *const op_names[NR_OPS] = {
  "pread", "pwrite", "sync", "grow", "punch",
};

struct fault {
  unsigned nth;         /* calls left before it fires; 0 = off */
  int err;
  bool sticky;
  bool fired;
};

struct range {
  uint64_t offset, count;
};

struct io_mem {
  struct cow_io io;
  pthread_mutex_t lock;
  uint8_t *data;
  size_t size;
  bool growable;
  /* Power loss tracking: durable == NULL when off. */
  uint8_t *durable;
  size_t durable_size;
  struct range *dirty;
  size_t nr_dirty, dirty_cap;
  struct fault faults[NR_OPS];
  unsigned counts[NR_OPS];
};

#define MEM(io) ((struct io_mem *) (io))

/* Count the call and decide whether it fails.  Lock held. */
static int
fault_locked (struct io_mem *m, int op)
{
  struct fault *f = &m->faults[op];

  m->counts[op]++;
  if (f->fired && f->sticky)
    return -f->err;
  if (f->nth > 0 && --f->nth == 0) {
    f->fired = true;
    return -f->err;
  }
  return 0;
}

static bool
in_range (const struct io_mem *m, size_t count, uint64_t offset)
{
  return offset <= m->size && count <= m->size - offset;
}

static int
mem_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  int r = fault_locked (m, OP_PREAD);

  if (r < 0)
    return r;
  if (!in_range (m, count, offset))
    return -EIO;
  memcpy (buf, m->data + offset, count);
  return 0;
}

/* Remember a range changed since the last sync.  Lock held. */
static int
note_dirty_locked (struct io_mem *m, uint64_t offset, uint64_t count)
{
  if (m->durable == NULL)
    return 0;
  if (m->nr_dirty == m->dirty_cap) {
    size_t cap = m->dirty_cap ? 2 * m->dirty_cap : 64;
    struct range *d = realloc (m->dirty, cap * sizeof *d);
    if (d == NULL)
      return -ENOMEM;
    m->dirty = d;
    m->dirty_cap = cap;
  }
  m->dirty[m->nr_dirty++] = (struct range) { offset, count };
  return 0;
}

/* Copy the dirty ranges, clipped to limit bytes, from src to dst (the
 * current image and the durable one, one way or the other) and forget
 * them.  Lock held.
 */
static void
copy_dirty_locked (struct io_mem *m, uint8_t *dst, const uint8_t *src,
                   uint64_t limit)
{
  for (size_t i = 0; i < m->nr_dirty; i++) {
    const struct range *d = &m->dirty[i];
    if (d->offset < limit) {
      uint64_t n = d->count < limit - d->offset ? d->count
        : limit - d->offset;
      memcpy (dst + d->offset, src + d->offset, n);
    }
  }
  m->nr_dirty = 0;
}

/* Make the image at least size bytes.  Lock held. */
static int
resize_locked (struct io_mem *m, uint64_t size)
{
  uint8_t *p;

  if (size <= m->size)
    return 0;
  if (size > SIZE_MAX)
    return -ENOMEM;
  p = realloc (m->data, size);
  if (p == NULL)
    return -ENOMEM;
  memset (p + m->size, 0, size - m->size);
  m->data = p;
  m->size = size;
  return 0;
}

static int
mem_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  int r = fault_locked (m, OP_PWRITE);

  if (r < 0)
    return r;
  if (!in_range (m, count, offset)) {
    /* Like a file, a growable image extends on a write past the end. */
    if (!m->growable)
      return -ENOSPC;
    r = resize_locked (m, offset + count);
    if (r < 0)
      return r;
  }
  r = note_dirty_locked (m, offset, count);
  if (r < 0)
    return r;
  memcpy (m->data + offset, buf, count);
  return 0;
}

static int
mem_sync (struct cow_io *io)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  int r = fault_locked (m, OP_SYNC);

  if (r < 0 || m->durable == NULL)
    return r;
  if (m->size != m->durable_size) {
    uint8_t *p = realloc (m->durable, m->size ? m->size : 1);
    if (p == NULL)
      return -ENOMEM;
    if (m->size > m->durable_size)
      memset (p + m->durable_size, 0, m->size - m->durable_size);
    m->durable = p;
    m->durable_size = m->size;
  }
  copy_dirty_locked (m, m->durable, m->data, m->size);
  return 0;
}

static int
mem_get_size (struct cow_io *io, uint64_t *size)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);

  *size = m->size;
  return 0;
}

static int
mem_grow (struct cow_io *io, uint64_t size)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  int r = fault_locked (m, OP_GROW);

  if (r < 0)
    return r;
  if (!m->growable)
    return -ENOTSUP;            /* a fixed size, like a block device */
  return resize_locked (m, size);
}

static int
mem_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  int r = fault_locked (m, OP_PUNCH);

  if (r < 0)
    return r;
  if (!in_range (m, count, offset))
    return -EIO;
  r = note_dirty_locked (m, offset, count);
  if (r < 0)
    return r;
  memset (m->data + offset, 0, count);
  return 0;
}

static void
mem_close (struct cow_io *io)
{
  struct io_mem *m = MEM (io);

  pthread_mutex_destroy (&m->lock);
  free (m->data);
  free (m->durable);
  free (m->dirty);
  free (m);
}

static const struct cow_io_ops mem_ops = {
  .name = "mem",
  .pread = mem_pread,
  .pwrite = mem_pwrite,
  .sync = mem_sync,
  .get_size = mem_get_size,
  .grow = mem_grow,
  .punch = mem_punch,
  .extent = NULL,
  .close = mem_close,
};

struct cow_io *
cow_io_mem_new (const void *data, size_t size, bool growable)
{
  struct io_mem *m = calloc (1, sizeof *m);

  if (m == NULL)
    return NULL;
  m->data = calloc (1, size ? size : 1);
  if (m->data == NULL) {
    free (m);
    return NULL;
  }
  if (data)
    memcpy (m->data, data, size);
  m->size = size;
  m->growable = growable;
  m->io.ops = &mem_ops;
  pthread_mutex_init (&m->lock, NULL);
  return &m->io;
}

const uint8_t *
cow_io_mem_data (struct cow_io *io, size_t *size)
{
  *size = MEM (io)->size;
  return MEM (io)->data;
}

void
cow_io_mem_fail (struct cow_io *io, const char *op, unsigned nth, int err,
                 bool sticky)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);

  for (int i = 0; i < NR_OPS; i++)
    if (strcmp (op, op_names[i]) == 0)
      m->faults[i] = (struct fault) { .nth = nth, .err = err,
                                      .sticky = sticky };
}

void
cow_io_mem_counts (struct cow_io *io, struct cow_io_mem_counts *c)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);

  c->pread = m->counts[OP_PREAD];
  c->pwrite = m->counts[OP_PWRITE];
  c->sync = m->counts[OP_SYNC];
  c->grow = m->counts[OP_GROW];
  c->punch = m->counts[OP_PUNCH];
}

int
cow_io_mem_track_power_loss (struct cow_io *io)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);

  if (m->durable)
    return 0;
  m->durable = malloc (m->size ? m->size : 1);
  if (m->durable == NULL)
    return -ENOMEM;
  memcpy (m->durable, m->data, m->size);
  m->durable_size = m->size;
  m->nr_dirty = 0;
  return 0;
}

int
cow_io_mem_power_loss (struct cow_io *io)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  uint8_t *p;

  if (m->durable == NULL)
    return -EINVAL;
  /* Writes may have grown the image past the durable size: those bytes
   * go with the crash.
   */
  copy_dirty_locked (m, m->data, m->durable, m->durable_size);
  if (m->size != m->durable_size) {
    p = realloc (m->data, m->durable_size ? m->durable_size : 1);
    if (p == NULL)
      return -ENOMEM;
    if (m->durable_size > m->size)
      memcpy (p + m->size, m->durable + m->size, m->durable_size - m->size);
    m->data = p;
    m->size = m->durable_size;
  }
  return 0;
}
