/* snapshot.c: the snapshot as a block device: reads, copy-on-write
 * writes, zeroes, trims, prefetches and block status over any range,
 * chunk by chunk.
 *
 * Hot path: a chunk with an exception costs one lock-free lookup and
 * goes straight to its COW chunk; runs of such chunks that are
 * contiguous in the store, and runs of chunks without one, are served
 * by one backend call each.
 *
 * A chunk without an exception is copied under its chunk lock, and the
 * lookup is repeated under the lock: two writers racing to the same new
 * chunk are serialised, the second finds the exception and writes
 * through it, so nothing is lost and no chunk is allocated twice.  The
 * exception becomes visible only after the chunk's data is written, so
 * a reader sees the origin or the full copy, never a half-made chunk.
 * A write over several new chunks copies them together (copy_run):
 * their locks as a set, one allocation, one write per run contiguous
 * in the store, the records together.  A copy reads from the origin
 * only the bytes the client does not supply, and none where the
 * origin is a hole or the store can share the origin's blocks.
 *
 * Zero and trim differ as in the kernel's discard_zeroes_cow: a zeroed
 * range reads as zeroes afterwards (the NBD protocol promises it), so a
 * chunk without an exception over origin data gets one; a trim only
 * gives back space, so it punches the chunks that have exceptions
 * (they then read as zeroes, their records stay) and leaves the others
 * reading from the origin.  Neither ever removes a record.
 *
 * Origin mode (s->live_origin: the origin is written through origin.c
 * meanwhile) changes two things: a read of chunks without an exception
 * holds their chunk locks over lookup and read, so no origin write
 * slips in between (read_tracked); and a trim releases whole chunks,
 * giving those without an exception one over a punched chunk, so they
 * are never copied (release_chunk).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

/* The extent of a request within one chunk. */
struct piece {
  chunk_t chunk;
  uint64_t in;                  /* byte offset in the chunk */
  uint64_t n;                   /* bytes */
};

static struct piece
piece_at (const struct cow_store *s, uint64_t offset, uint64_t count)
{
  struct piece p = {
    .chunk = offset >> s->chunk_shift,
    .in = offset & (s->chunk_bytes - 1),
  };

  p.n = s->chunk_bytes - p.in < count ? s->chunk_bytes - p.in : count;
  return p;
}

/* Extend a run that starts at `offset` (chunk c, mapped to nc or not)
 * over the following chunks with the same state, contiguous in the
 * store when mapped.  Returns the run's length in bytes.
 */
static uint64_t
run_length (const struct cow_store *s, uint64_t offset, uint64_t count,
            bool mapped, chunk_t c, chunk_t nc)
{
  uint64_t n = piece_at (s, offset, count).n;

  while (n < count) {
    chunk_t next = (offset + n) >> s->chunk_shift, nc2;
    bool m2 = cow_store_lookup (s, next, &nc2);

    if (m2 != mapped || (mapped && nc2 != nc + (next - c)))
      break;
    n += count - n < s->chunk_bytes ? count - n : s->chunk_bytes;
  }
  return n;
}

/* Where the data of a run of chunks lives: their COW chunks (mapped),
 * contiguous in the store, or the origin.
 */
struct run {
  bool mapped;
  struct cow_io *io;            /* s->cow or s->origin */
  uint64_t at;                  /* byte offset in io */
  uint64_t n;                   /* bytes */
};

/* The run that starts at offset, at most count bytes long. */
static struct run
run_at (const struct cow_store *s, uint64_t offset, uint64_t count)
{
  struct piece pc = piece_at (s, offset, count);
  chunk_t nc = 0;
  bool mapped = cow_store_lookup (s, pc.chunk, &nc);

  return (struct run) {
    .mapped = mapped,
    .io = mapped ? s->cow : s->origin,
    .at = mapped ? chunk_offset (s, nc) + pc.in : offset,
    .n = run_length (s, offset, count, mapped, pc.chunk, nc),
  };
}

/* An invalidated snapshot fails every request, as the kernel's does. */
static int
check_valid (const struct cow_store *s)
{
  if (!s->valid)
    return store_error (s, EIO, "the store is invalidated");
  return 0;
}

/* Origin mode: between the lookup that sends a read to the origin and
 * the read itself, an origin write could copy the chunk and overwrite
 * it, and the snapshot would return new origin data (the kernel's "fix
 * race during exception creation").  So hold the chunks' locks, which
 * origin writers hold from their copy to their write (origin-copy.c),
 * over the lookup and the read, TRACKED_READ bytes at a time.
 */
#define TRACKED_READ (1u << 20)

static int
read_tracked (struct cow_store *s, char *p, uint64_t count, uint64_t offset)
{
  int r = 0;

  while (r == 0 && count > 0) {
    uint64_t len = count < TRACKED_READ ? count : TRACKED_READ;
    struct chunk_lock_set set;

    chunk_lock_set_range (&set, offset >> s->chunk_shift,
                          (offset + len - 1) >> s->chunk_shift);
    chunk_lock_set_lock (&s->chunk_locks, &set);
    while (r == 0 && len > 0) {
      struct run run = run_at (s, offset, len);

      r = cow_io_pread (run.io, p, run.n, run.at);
      if (r < 0)
        r = store_io_error (s, r, "cannot read", run.io, run.at);
      p += run.n;
      offset += run.n;
      count -= run.n;
      len -= run.n;
    }
    chunk_lock_set_unlock (&s->chunk_locks, &set);
  }
  return r;
}

int
cow_snapshot_pread (struct cow_store *s, void *buf, uint32_t count,
                    uint64_t offset)
{
  char *p = buf;
  int r = check_valid (s) ?: store_check_range (s, count, offset);

  while (r == 0 && count > 0) {
    struct run run = run_at (s, offset, count);

    if (!run.mapped && s->live_origin) {
      r = read_tracked (s, p, run.n, offset);
      if (r < 0)
        return r;
      p += run.n;
      offset += run.n;
      count -= run.n;
      continue;
    }
    r = cow_io_pread (run.io, p, run.n, run.at);
    if (r < 0)
      return store_io_error (s, r, "cannot read", run.io, run.at);
    p += run.n;
    offset += run.n;
    count -= run.n;
  }
  return r;
}

static int
write_cow (struct cow_store *s, const void *buf, uint64_t n, uint64_t at)
{
  return store_cow_written (s, cow_io_pwrite (s->cow, buf, n, at), at);
}

/* Make the range zero in the COW device: punch where the backend can,
 * else write zeroes a chunk at a time.
 */
static int
zero_cow (struct cow_store *s, uint64_t n, uint64_t at)
{
  int r = 0;

  if (s->cow->ops->punch == NULL) {
    while (r == 0 && n > 0) {
      uint64_t len = n < s->chunk_bytes ? n : s->chunk_bytes;

      r = write_cow (s, s->zero_chunk, len, at);
      at += len;
      n -= len;
    }
    return r;
  }
  r = s->cow->ops->punch (s->cow, at, n);
  if (r < 0)
    return store_io_error (s, r, "cannot zero", s->cow, at);
  store_note_write (s);
  return 0;
}

/* What to put in a chunk. */
enum fill { FILL_DATA, FILL_ZERO };

/* Write pc's bytes (buf, or zeroes) into new_chunk, the COW chunk that
 * origin chunk pc->chunk already has.  Zeroes over the whole chunk are
 * punched rather than written.
 */
static int
write_through (struct cow_store *s, const struct piece *pc, chunk_t nc,
               const void *buf, enum fill fill)
{
  uint64_t at = chunk_offset (s, nc) + pc->in;

  if (fill == FILL_DATA)
    return write_cow (s, buf, pc->n, at);
  if (pc->in == 0 && pc->n == chunk_valid_bytes (s, pc->chunk))
    return zero_cow (s, pc->n, at);
  return write_cow (s, s->zero_chunk, pc->n, at);
}

/* Write the buffers of iov (iovcnt of them, at most COPY_IOV) at `at`
 * in the COW device: one vectored write, or, on a backend without
 * pwritev, one gathered into a buffer.
 */
static int
write_cowv (struct cow_store *s, const struct iovec *iov, int iovcnt,
            uint64_t at)
{
  CLEANUP_FREE char *tmp = NULL;
  uint64_t n = 0;

  if (iovcnt == 1)
    return write_cow (s, iov[0].iov_base, iov[0].iov_len, at);
  if (s->cow->ops->pwritev)
    return store_cow_written (s, s->cow->ops->pwritev (s->cow, iov, iovcnt,
                                                       at), at);
  for (int i = 0; i < iovcnt; i++)
    n += iov[i].iov_len;
  tmp = malloc (n);
  if (tmp == NULL)
    return store_error (s, ENOMEM, "out of memory");
  n = 0;
  for (int i = 0; i < iovcnt; i++) {
    memcpy (tmp + n, iov[i].iov_base, iov[i].iov_len);
    n += iov[i].iov_len;
  }
  return write_cow (s, tmp, n, at);
}

static bool origin_is_hole (struct cow_store *s, uint64_t offset,
                            uint64_t count);

/* Share the origin's blocks of chunk c with new chunk nc (a reflink),
 * so that the copy moves no data.  Only whole chunks: the end of a
 * last partial chunk is not aligned to the filesystem's block.  Where
 * the backends cannot share blocks at all, say so once and stop
 * trying; any other error just means this chunk is copied.
 */
static bool
clone_chunk (struct cow_store *s, chunk_t c, chunk_t nc)
{
  int r;

  if (s->cow->ops->clone_from == NULL ||
      atomic_load_explicit (&s->no_clone, memory_order_relaxed) ||
      chunk_valid_bytes (s, c) != s->chunk_bytes)
    return false;
  r = s->cow->ops->clone_from (s->cow, chunk_offset (s, nc), s->origin,
                               chunk_offset (s, c), s->chunk_bytes);
  if (r == 0) {
    store_note_write (s);
    return true;
  }
  if ((r == -EOPNOTSUPP || r == -ENOTSUP || r == -EXDEV || r == -EINVAL ||
       r == -ENOTTY || r == -ENOSYS || r == -EPERM || r == -EBADF) &&
      !atomic_exchange (&s->no_clone, true))
    store_message (s, COW_MSG_DEBUG, "the COW store cannot share the "
                   "origin's blocks (%s): first writes copy the data",
                   cow_strerror (-r));
  return false;
}

/* How a new chunk gets the origin's bytes around the client's. */
enum edge {
  EDGE_NONE,                    /* the client covers the chunk */
  EDGE_DONE,                    /* cloned: nothing to write but the
                                 * client's bytes */
  EDGE_ZERO,                    /* the origin is a hole: write zeroes
                                 * around them */
  EDGE_READ,                    /* read and write the origin's bytes */
};

/* Prepare new chunk nc for origin chunk c, of which the client writes
 * [in, in + n): clone it, or where the origin is a hole, have the rest
 * written as zeroes.  It must be zeroed for real: a chunk past the old
 * next_free may hold stray bytes from before a crash.  The zeroes go
 * in the same vectored write as the client's bytes, from the zero
 * chunk, rather than being punched: on ext4 a punch (and on XFS a
 * clone) takes the file's lock and a journal transaction, which
 * serialised concurrent first writes and made them 5 times slower.
 */
static int
prepare_edge (struct cow_store *s, chunk_t c, chunk_t nc, uint64_t in,
              uint64_t n, enum edge *edge)
{
  *edge = EDGE_NONE;
  if (in == 0 && n == chunk_valid_bytes (s, c))
    return 0;
  *edge = EDGE_DONE;
  if (clone_chunk (s, c, nc))
    return 0;
  *edge = origin_is_hole (s, chunk_offset (s, c), chunk_valid_bytes (s, c))
    ? EDGE_ZERO : EDGE_READ;
  return 0;
}

/* At most this many chunks are copied in one go (a write over more new
 * chunks takes several), and a write has at most this many buffers.
 */
#define COPY_RUN 64
#define COPY_IOV 3

/* Give the chunks of [offset, offset + count), which have no
 * exception at the lookup before the call, exceptions whose chunks
 * hold the origin's data with the range replaced by buf (FILL_DATA)
 * or by zeroes (FILL_ZERO: one chunk at most), or, where another
 * writer got there first, write through its exception.
 *
 * The chunks' locks are held from the lookup to the record, and the
 * lookup is repeated under them.  The new chunks are allocated at
 * once, each run of them that is contiguous in the store is written
 * with one call, and the records are added together after the data.
 * Of the origin, only the head of the first chunk and the tail of the
 * last (the bytes of the chunks the client does not supply) are read,
 * into one buffer, and written as pieces of the same vectored write:
 * no whole-chunk buffer and no copy of the client's bytes.  A chunk
 * that can be cloned, or where the origin is a hole, is prepared
 * first and reads nothing (prepare_edge).
 *
 * Sets *done to the bytes handled (fewer than count where the store
 * had room for fewer chunks or a racing writer mapped one of them:
 * the caller goes on with the rest) and *added if records were added.
 */
static int
copy_run (struct cow_store *s, uint64_t offset, uint64_t count,
          const char *buf, enum fill fill, uint64_t *done, bool *added)
{
  chunk_t first = offset >> s->chunk_shift, last, old[COPY_RUN],
    nc[COPY_RUN];
  uint64_t end, in, tail_at, head, tail;
  struct chunk_lock_set set;
  enum edge head_edge = EDGE_NONE, tail_edge = EDGE_NONE;
  CLEANUP_FREE char *origin_bytes = NULL;
  size_t k = 0;
  int got, r = 0;

  *done = 0;
  *added = false;
  last = (offset + count - 1) >> s->chunk_shift;
  if (last - first >= COPY_RUN)
    last = first + COPY_RUN - 1;
  if (fill == FILL_ZERO)
    last = first;

  chunk_lock_set_range (&set, first, last);
  chunk_lock_set_lock (&s->chunk_locks, &set);

  /* The chunks still without an exception, under the locks. */
  while (first + k <= last && !cow_store_lookup (s, first + k, &nc[k])) {
    old[k] = first + k;
    k++;
  }
  if (k == 0) {
    struct piece pc = piece_at (s, offset, count);

    cow_store_lookup (s, first, &nc[0]);
    r = write_through (s, &pc, nc[0], buf, fill);
    if (r == 0)
      *done = pc.n;
    goto out;
  }
  got = store_allocate_chunks (s, k, nc);
  if (got < 0) {
    r = got;
    goto out;
  }
  last = first + got - 1;
  end = chunk_offset (s, last) + chunk_valid_bytes (s, last);
  if (end > offset + count)
    end = offset + count;

  /* The origin's bytes the client does not supply: [0, in) of the
   * first chunk and [tail_at, its valid bytes) of the last.
   */
  in = offset - chunk_offset (s, first);
  tail_at = end - chunk_offset (s, last);
  head = in;
  tail = chunk_valid_bytes (s, last) - tail_at;
  if (got == 1)
    r = prepare_edge (s, first, nc[0], in, end - offset, &head_edge);
  else {
    r = prepare_edge (s, first, nc[0], in, s->chunk_bytes - in, &head_edge);
    if (r == 0)
      r = prepare_edge (s, last, nc[got - 1], 0, tail_at, &tail_edge);
  }
  if (r < 0)
    goto out;
  if (got == 1)
    tail_edge = head_edge;
  if (head_edge != EDGE_READ)
    head = head_edge == EDGE_ZERO ? head : 0;
  if (tail_edge != EDGE_READ)
    tail = tail_edge == EDGE_ZERO ? tail : 0;
  if (head_edge == EDGE_READ || tail_edge == EDGE_READ) {
    uint64_t n_read = (head_edge == EDGE_READ ? head : 0) +
      (tail_edge == EDGE_READ ? tail : 0);

    origin_bytes = malloc (n_read ? n_read : 1);
    if (origin_bytes == NULL) {
      r = store_error (s, ENOMEM, "out of memory");
      goto out;
    }
    if (head_edge == EDGE_READ && head > 0) {
      r = cow_io_pread (s->origin, origin_bytes, head,
                        chunk_offset (s, first));
      if (r < 0) {
        r = store_io_error (s, r, "cannot read", s->origin,
                            chunk_offset (s, first));
        goto out;
      }
    }
    if (tail_edge == EDGE_READ && tail > 0) {
      uint64_t from = chunk_offset (s, last) + tail_at;

      r = cow_io_pread (s->origin, origin_bytes + n_read - tail, tail, from);
      if (r < 0) {
        r = store_io_error (s, r, "cannot read", s->origin, from);
        goto out;
      }
    }
  }

  if (got == 1 && in == 0 && end - offset == chunk_valid_bytes (s, first) &&
      fill == FILL_ZERO)
    /* A whole chunk of zeroes: punched, never written. */
    r = zero_cow (s, end - offset, chunk_offset (s, nc[0]));
  else {
    /* One write per run of chunks contiguous in the store: the head
     * (first run), the client's bytes, the tail (last run).
     */
    for (int i = 0; r == 0 && i < got; ) {
      struct iovec iov[COPY_IOV];
      int j = i + 1, n = 0;
      uint64_t from, to, at = chunk_offset (s, nc[i]);

      while (j < got && nc[j] == nc[j - 1] + 1)
        j++;
      from = i == 0 ? offset : chunk_offset (s, first + i);
      to = j == got ? end : chunk_offset (s, first + j);
      if (i == 0 && head > 0)
        iov[n++] = (struct iovec) {
          head_edge == EDGE_READ ? origin_bytes : (void *) s->zero_chunk,
          head
        };
      else if (i == 0)
        at += in;
      iov[n++] = (struct iovec) {
        fill == FILL_ZERO ? (void *) s->zero_chunk
        : (void *) (buf + (from - offset)),
        to - from
      };
      if (j == got && tail > 0)
        iov[n++] = (struct iovec) {
          tail_edge == EDGE_READ
          ? origin_bytes + (head_edge == EDGE_READ ? head : 0)
          : (void *) s->zero_chunk,
          tail
        };
      r = write_cowv (s, iov, n, at);
      i = j;
    }
  }
  /* On an error the chunks leak: no record points at them. */
  if (r == 0)
    r = store_add_exceptions (s, old, nc, got);
  if (r == 0) {
    *done = end - offset;
    *added = true;
  }
 out:
  chunk_lock_set_unlock (&s->chunk_locks, &set);
  return r;
}

/* After a request: FUA, or a new exception under the kernel's timing,
 * needs a commit before the request completes.
 */
static int
finish (struct cow_store *s, int r, bool fua, bool copied)
{
  if (r == 0 && (fua || (copied && s->commit_each_copy)))
    r = cow_store_commit (s);
  return r;
}

/* Also for writes to chunks already mapped, which allocate nothing: a
 * failed store takes no write at all.
 */
static int
check_writable (const struct cow_store *s)
{
  if (s->readonly)
    return store_error (s, EROFS, "the snapshot is read-only");
  if (s->failed)
    return store_failed_error (s, false);
  return check_valid (s);
}

int
cow_snapshot_pwrite (struct cow_store *s, const void *buf, uint32_t count,
                     uint64_t offset, bool fua)
{
  const char *p = buf;
  int r = check_writable (s) ?: store_check_range (s, count, offset);
  bool copied = false;

  while (r == 0 && count > 0) {
    struct piece pc = piece_at (s, offset, count);
    chunk_t nc;
    bool added;

    if (cow_store_lookup (s, pc.chunk, &nc)) {
      pc.n = run_length (s, offset, count, true, pc.chunk, nc);
      r = write_through (s, &pc, nc, p, FILL_DATA);
    }
    else {
      r = copy_run (s, offset, run_length (s, offset, count, false,
                                           pc.chunk, 0),
                    p, FILL_DATA, &pc.n, &added);
      copied |= added;
    }
    p += pc.n;
    offset += pc.n;
    count -= pc.n;
  }
  return finish (s, r, fua, copied);
}

/* True if the origin reads as zeroes over the whole range. */
static bool
origin_is_hole (struct cow_store *s, uint64_t offset, uint64_t count)
{
  uint64_t len;
  bool hole;

  if (s->origin->ops->extent == NULL)
    return false;
  return s->origin->ops->extent (s->origin, offset, count, &len, &hole) == 0
    && hole && len >= count;
}

/* True if zeroing the range would copy origin data into a new chunk:
 * part of a chunk without an exception, where the origin is not a hole.
 * Exceptions are never removed, so the answer can only become false
 * while the zero runs, never true.
 */
static bool
zero_needs_copy (struct cow_store *s, uint32_t count, uint64_t offset)
{
  while (count > 0) {
    struct piece pc = piece_at (s, offset, count);
    chunk_t nc;

    if (!(pc.in == 0 && pc.n == chunk_valid_bytes (s, pc.chunk)) &&
        !cow_store_lookup (s, pc.chunk, &nc) &&
        !origin_is_hole (s, offset, pc.n))
      return true;
    offset += pc.n;
    count -= pc.n;
  }
  return false;
}

int
cow_snapshot_zero (struct cow_store *s, uint32_t count, uint64_t offset,
                   bool fua, bool fast)
{
  int r = check_writable (s) ?: store_check_range (s, count, offset);
  bool copied = false;

  if (r == 0 && fast && zero_needs_copy (s, count, offset)) {
    /* Not an error: the client falls back to writing zeroes. */
    store_message (s, COW_MSG_DEBUG, "fast zero of %" PRIu32 " bytes at %"
                   PRIu64 " would copy from the origin", count, offset);
    return -ENOTSUP;
  }
  while (r == 0 && count > 0) {
    struct piece pc = piece_at (s, offset, count);
    chunk_t nc;
    uint64_t done;
    bool added;

    if (cow_store_lookup (s, pc.chunk, &nc))
      r = write_through (s, &pc, nc, NULL, FILL_ZERO);
    else if (!origin_is_hole (s, offset, pc.n)) {
      r = copy_run (s, offset, pc.n, NULL, FILL_ZERO, &done, &added);
      copied |= added;
    }
    offset += pc.n;
    count -= pc.n;
  }
  return finish (s, r, fua, copied);
}

/* Origin mode: a trim releases the chunk (a backup tool discards what it
 * has copied).  A whole chunk without an exception gets one that points
 * at a punched chunk, so later origin writes never copy it and the
 * store stays small; the lookup is repeated under the chunk lock, as in
 * copy_on_write.  Part of a chunk is left alone: releasing it would
 * lose the rest of the chunk.  A full store releases nothing more.
 */
static int
release_chunk (struct cow_store *s, const struct piece *pc, bool *released)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (chunk_lock_for (&s->chunk_locks, pc->chunk));
  chunk_t nc;
  int r;

  if (cow_store_lookup (s, pc->chunk, &nc))
    return zero_cow (s, pc->n, chunk_offset (s, nc));
  r = cow_store_allocate (s, &nc);
  if (r == -ENOSPC)
    return 0;
  /* The chunk may hold stray data from before a crash. */
  r = r ?: zero_cow (s, pc->n, chunk_offset (s, nc))
    ?: cow_store_add_exception (s, pc->chunk, nc);
  if (r == 0)
    *released = true;
  return r;
}

static int
release_run (struct cow_store *s, uint64_t offset, uint64_t count,
             bool *released)
{
  int r = 0;

  while (r == 0 && count > 0) {
    struct piece pc = piece_at (s, offset, count);

    if (pc.in == 0 && pc.n == chunk_valid_bytes (s, pc.chunk))
      r = release_chunk (s, &pc, released);
    offset += pc.n;
    count -= pc.n;
  }
  return r;
}

int
cow_snapshot_trim (struct cow_store *s, uint32_t count, uint64_t offset,
                   bool fua)
{
  int r = check_writable (s) ?: store_check_range (s, count, offset);
  bool released = false;

  while (r == 0 && count > 0) {
    struct run run = run_at (s, offset, count);

    if (run.mapped)
      r = zero_cow (s, run.n, run.at);
    else if (s->live_origin)
      r = release_run (s, offset, run.n, &released);
    offset += run.n;
    count -= run.n;
  }
  return finish (s, r, fua, released);
}

int
cow_snapshot_cache (struct cow_store *s, uint32_t count, uint64_t offset)
{
  int r = check_valid (s) ?: store_check_range (s, count, offset);

  if (s->cow->ops->cache == NULL && s->origin->ops->cache == NULL)
    return r;
  while (r == 0 && count > 0) {
    struct run run = run_at (s, offset, count);

    if (run.io->ops->cache) {
      r = run.io->ops->cache (run.io, run.at, run.n);
      if (r < 0)
        return store_io_error (s, r, "cannot prefetch", run.io, run.at);
    }
    offset += run.n;
    count -= run.n;
  }
  return r;
}

int
cow_snapshot_extents (struct cow_store *s, uint32_t count, uint64_t offset,
                      cow_extent_fn add, void *opaque)
{
  int r = check_valid (s) ?: store_check_range (s, count, offset);

  while (r == 0 && count > 0) {
    struct run run = run_at (s, offset, count);
    uint64_t len = run.n;
    bool hole = false;

    if (run.io->ops->extent) {
      r = run.io->ops->extent (run.io, run.at, run.n, &len, &hole);
      if (r < 0)
        return store_io_error (s, r, "cannot get block status of",
                               run.io, run.at);
      if (len == 0 || len > run.n)
        len = run.n;
    }
    r = add (opaque, offset, len, hole);
    offset += len;
    count -= len;
  }
  return r;
}
