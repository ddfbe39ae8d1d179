/* io-mem.c: an I/O backend in memory, for the unit tests and the
 * fuzzer only (built in tests/ and fuzz/, never into libsnapcow).  It
 * can fail the nth call of any op with a chosen errno, once or from
 * then on, and counts the calls of each op.  One mutex guards
 * the image; this backend is for correctness, not speed.
 *
 * Power loss: once tracking is on, the image as of the last sync is
 * kept apart (`durable`), with every change since (write, punch, grow)
 * as a record of its own, bytes and all, in call order (`log`).  A
 * sync applies the log to the durable image.  A crash either drops the
 * whole log (cow_io_mem_power_loss) or, like a disk losing power with
 * a volatile cache (cow_io_mem_power_loss_random), keeps any subset of
 * the records, applied in any order, each possibly torn: of a torn
 * record only some of its 512-byte sectors land.  A sector is atomic.
 * A grow that is lost shrinks the image back; bytes landing past the
 * size the crash leaves are lost with it.
 *
 * A vectored write (pwritev) is one write: it counts as a pwrite for
 * faults and counts, and as one change for a power loss.  Block status
 * (extent, sectors of zeroes are holes) and sharing blocks with another
 * memory backend (clone_from, a copy) are switched on per backend.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "io-mem.h"

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

/* One change since the last sync. */
enum change_kind { CH_WRITE, CH_PUNCH, CH_GROW };
struct change {
  enum change_kind kind;
  uint64_t offset, count;       /* grow: offset is the new size */
  uint8_t *bytes;               /* write: a copy of the data */
};

struct io_mem {
  struct cow_io io;
  struct cow_io_ops ops;        /* mem_ops, and the ops switched on */
  int clone_err;                /* what clone_from returns, negated */
  pthread_mutex_t lock;
  uint8_t *data;
  size_t size;
  bool growable;
  /* Power loss tracking: durable == NULL when off. */
  uint8_t *durable;
  size_t durable_size;
  struct change *log;
  size_t nr_log, log_cap;
  struct fault faults[NR_OPS];
  unsigned counts[NR_OPS];
  unsigned nr_pwritev, nr_clone;
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

/* Remember a change made since the last sync (bytes: the data of a
 * write, copied).  Lock held.
 */
static int
log_change_locked (struct io_mem *m, enum change_kind kind, uint64_t offset,
                   uint64_t count, const void *bytes)
{
  struct change c = { kind, offset, count, NULL };

  if (m->durable == NULL)
    return 0;
  if (m->nr_log == m->log_cap) {
    size_t cap = m->log_cap ? 2 * m->log_cap : 64;
    struct change *d = realloc (m->log, cap * sizeof *d);
    if (d == NULL)
      return -ENOMEM;
    m->log = d;
    m->log_cap = cap;
  }
  if (kind == CH_WRITE) {
    c.bytes = malloc (count ? count : 1);
    if (c.bytes == NULL)
      return -ENOMEM;
    memcpy (c.bytes, bytes, count);
  }
  m->log[m->nr_log++] = c;
  return 0;
}

static void
forget_log_locked (struct io_mem *m)
{
  for (size_t i = 0; i < m->nr_log; i++)
    free (m->log[i].bytes);
  m->nr_log = 0;
}

/* Resize a buffer of *size bytes to size bytes, zeroing what is new. */
static int
resize_buf (uint8_t **buf, size_t *cur, uint64_t size)
{
  uint8_t *p;

  if (size > SIZE_MAX)
    return -ENOMEM;
  if (size == *cur)
    return 0;
  p = realloc (*buf, size ? size : 1);
  if (p == NULL)
    return -ENOMEM;
  if (size > *cur)
    memset (p + *cur, 0, size - *cur);
  *buf = p;
  *cur = size;
  return 0;
}

/* Apply the sectors [s0, s1) of change c (sector numbers relative to
 * the device) to img of size bytes, clipping at size.
 */
static void
apply_sectors (const struct change *c, uint8_t *img, uint64_t size,
               uint64_t s0, uint64_t s1)
{
  uint64_t from = s0 * 512 > c->offset ? s0 * 512 : c->offset;
  uint64_t to = s1 * 512 < c->offset + c->count ? s1 * 512
    : c->offset + c->count;

  if (to > size)
    to = size;
  if (from >= to)
    return;
  if (c->kind == CH_WRITE)
    memcpy (img + from, c->bytes + (from - c->offset), to - from);
  else
    memset (img + from, 0, to - from);
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
    r = log_change_locked (m, CH_GROW, offset + count, 0, NULL);
    if (r == 0)
      r = resize_locked (m, offset + count);
    if (r < 0)
      return r;
  }
  r = log_change_locked (m, CH_WRITE, offset, count, buf);
  if (r < 0)
    return r;
  memcpy (m->data + offset, buf, count);
  return 0;
}

/* A vectored write is one write: one fault and one change, which a
 * power loss keeps, loses or tears as a whole.
 */
static int
mem_pwritev (struct cow_io *io, const struct iovec *iov, int iovcnt,
             uint64_t offset)
{
  CLEANUP_FREE uint8_t *buf = NULL;
  size_t count = 0;

  for (int i = 0; i < iovcnt; i++)
    count += iov[i].iov_len;
  buf = malloc (count ? count : 1);
  if (buf == NULL)
    return -ENOMEM;
  count = 0;
  for (int i = 0; i < iovcnt; i++) {
    memcpy (buf + count, iov[i].iov_base, iov[i].iov_len);
    count += iov[i].iov_len;
  }
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&MEM (io)->lock);
    MEM (io)->nr_pwritev++;
  }
  return mem_pwrite (io, buf, count, offset);
}

static int
mem_sync (struct cow_io *io)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  int r = fault_locked (m, OP_SYNC);

  if (r < 0 || m->durable == NULL)
    return r;
  /* Everything since the last sync is on disk now: the durable image
   * becomes the current one.
   */
  r = resize_buf (&m->durable, &m->durable_size, m->size);
  if (r < 0)
    return r;
  for (size_t i = 0; i < m->nr_log; i++) {
    const struct change *c = &m->log[i];
    if (c->kind != CH_GROW)
      memcpy (m->durable + c->offset, m->data + c->offset,
              c->offset < m->size ? (c->count < m->size - c->offset
                                     ? c->count : m->size - c->offset) : 0);
  }
  forget_log_locked (m);
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
  if (size > m->size) {
    r = log_change_locked (m, CH_GROW, size, 0, NULL);
    if (r < 0)
      return r;
  }
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
  r = log_change_locked (m, CH_PUNCH, offset, count, NULL);
  if (r < 0)
    return r;
  memset (m->data + offset, 0, count);
  return 0;
}

/* Block status for cow_io_mem_set_extents: 512-byte sectors that are
 * all zero are a hole.
 */
static bool
zero_sector (const struct io_mem *m, uint64_t sector)
{
  uint64_t from = sector * 512, to = from + 512 < m->size ? from + 512
    : m->size;

  for (uint64_t i = from; i < to; i++)
    if (m->data[i])
      return false;
  return true;
}

static int
mem_extent (struct cow_io *io, uint64_t offset, uint64_t count,
            uint64_t *length, bool *is_hole)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  uint64_t sec = offset / 512, end;

  if (!in_range (m, count, offset) || count == 0)
    return -EIO;
  *is_hole = zero_sector (m, sec);
  end = (sec + 1) * 512;
  while (end < offset + count && zero_sector (m, end / 512) == *is_hole)
    end += 512;
  *length = end - offset < count ? end - offset : count;
  return 0;
}

/* Clone for cow_io_mem_set_clone: the bytes are copied, as a reflink
 * would make them read.
 */
static int
mem_clone_from (struct cow_io *io, uint64_t offset, struct cow_io *src,
                uint64_t src_offset, uint64_t count)
{
  struct io_mem *m = MEM (io), *sm = MEM (src);
  CLEANUP_FREE uint8_t *buf = NULL;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
    m->nr_clone++;
    if (m->clone_err)
      return -m->clone_err;
  }
  if (src->ops->pread != mem_pread)
    return -EOPNOTSUPP;
  buf = malloc (count ? count : 1);
  if (buf == NULL)
    return -ENOMEM;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&sm->lock);
    if (!in_range (sm, count, src_offset))
      return -EINVAL;
    memcpy (buf, sm->data + src_offset, count);
  }
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
    if (!in_range (m, count, offset))
      return -EINVAL;
    r = log_change_locked (m, CH_WRITE, offset, count, buf);
    if (r < 0)
      return r;
    memcpy (m->data + offset, buf, count);
  }
  return 0;
}

static void
mem_close (struct cow_io *io)
{
  struct io_mem *m = MEM (io);

  pthread_mutex_destroy (&m->lock);
  free (m->data);
  free (m->durable);
  forget_log_locked (m);
  free (m->log);
  free (m);
}

static const struct cow_io_ops mem_ops = {
  .name = "mem",
  .pread = mem_pread,
  .pwrite = mem_pwrite,
  .pwritev = mem_pwritev,
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
  m->ops = mem_ops;
  m->io.ops = &m->ops;
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
  c->pwritev = m->nr_pwritev;
  c->clone = m->nr_clone;
}

void
cow_io_mem_set_extents (struct cow_io *io)
{
  MEM (io)->ops.extent = mem_extent;
}

void
cow_io_mem_set_clone (struct cow_io *io, int err)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);

  m->clone_err = err;
  m->ops.clone_from = mem_clone_from;
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
  forget_log_locked (m);
  return 0;
}

/* Make the image what the crash left (img, size bytes; taken over) and
 * the durable image a copy of it.  Lock held.
 */
static int
set_image_locked (struct io_mem *m, uint8_t *img, size_t size)
{
  uint8_t *d = malloc (size ? size : 1);

  if (d == NULL) {
    free (img);
    return -ENOMEM;
  }
  memcpy (d, img, size);
  free (m->data);
  free (m->durable);
  m->data = img;
  m->size = size;
  m->durable = d;
  m->durable_size = size;
  forget_log_locked (m);
  return 0;
}

int
cow_io_mem_power_loss (struct cow_io *io)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  uint8_t *img;

  if (m->durable == NULL)
    return -EINVAL;
  img = malloc (m->durable_size ? m->durable_size : 1);
  if (img == NULL)
    return -ENOMEM;
  memcpy (img, m->durable, m->durable_size);
  return set_image_locked (m, img, m->durable_size);
}

static uint64_t
splitmix (uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

int
cow_io_mem_power_loss_random (struct cow_io *io, uint64_t seed,
                              struct cow_io_mem_crash *stats)
{
  struct io_mem *m = MEM (io);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  struct cow_io_mem_crash st = { .unsynced = m->nr_log };
  uint64_t x = seed, size;
  size_t n = m->nr_log, *order, *fate;
  uint8_t *img;
  size_t img_size;
  int r;

  if (m->durable == NULL)
    return -EINVAL;
  order = malloc ((n ? n : 1) * sizeof *order);
  fate = malloc ((n ? n : 1) * sizeof *fate);
  if (order == NULL || fate == NULL) {
    free (order);
    free (fate);
    return -ENOMEM;
  }
  /* What happens to each change: 0 lost, 1 lands whole, 2 torn.  The
   * mix varies from crash to crash, so that some crashes keep almost
   * everything and some almost nothing.
   */
  unsigned keep = splitmix (&x) % 101, tear = splitmix (&x) % 51;
  for (size_t i = 0; i < n; i++) {
    order[i] = i;
    if (splitmix (&x) % 100 >= keep)
      fate[i] = 0;
    else if (m->log[i].kind != CH_GROW && splitmix (&x) % 100 < tear)
      fate[i] = 2;
    else
      fate[i] = 1;
  }
  /* Any order (Fisher-Yates). */
  for (size_t i = n; i > 1; i--) {
    size_t j = splitmix (&x) % i, t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  /* The size: the durable one, extended by the grows that landed. */
  size = m->durable_size;
  for (size_t i = 0; i < n; i++)
    if (fate[i] && m->log[i].kind == CH_GROW && m->log[i].offset > size)
      size = m->log[i].offset;
  img = malloc (m->durable_size ? m->durable_size : 1);
  if (img == NULL) {
    free (order);
    free (fate);
    return -ENOMEM;
  }
  memcpy (img, m->durable, m->durable_size);
  img_size = m->durable_size;
  r = resize_buf (&img, &img_size, size);
  if (r < 0) {
    free (img);
    free (order);
    free (fate);
    return r;
  }
  for (size_t k = 0; k < n; k++) {
    const struct change *c = &m->log[order[k]];
    uint64_t s0, s1;

    if (c->kind == CH_GROW || fate[order[k]] == 0) {
      st.lost += fate[order[k]] == 0;
      st.landed += fate[order[k]] == 1;
      continue;
    }
    s0 = c->offset / 512;
    s1 = (c->offset + c->count + 511) / 512;
    if (fate[order[k]] == 1) {
      st.landed++;
      apply_sectors (c, img, size, s0, s1);
    }
    else {
      /* Torn: each sector lands or not. */
      st.torn++;
      for (uint64_t sec = s0; sec < s1; sec++)
        if (splitmix (&x) & 1)
          apply_sectors (c, img, size, sec, sec + 1);
    }
  }
  free (order);
  free (fate);
  if (stats)
    *stats = st;
  return set_image_locked (m, img, size);
}
