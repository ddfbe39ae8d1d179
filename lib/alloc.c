/* alloc.c: hand out data chunks (cow-format.md, "Allocating a chunk"):
 * next_free moves on by one and steps over metadata areas.  A file store
 * grows ahead of the allocations; the device, or the cap on it, decides
 * when the store is full.
 *
 * A file store also reserves the blocks (io reserve op: fallocate) of
 * every chunk it hands out, and of the metadata area next_free steps
 * over, before the chunk is used.  So when the filesystem under it is
 * full, the write that needs a new chunk gets ENOSPC and the chunk is
 * given back, while the copy and the commit that zeroes the next area
 * never run out of space half-way.  It reserves RESERVE_AHEAD chunks at
 * a time, as it grows the file, because one fallocate per chunk made
 * small copies a quarter slower; when the filesystem has no room for
 * that many, it asks for just what the chunk needs.
 *
 * A write over several new chunks takes them all at once
 * (store_allocate_chunks): one trip through the lock, one grow and one
 * reservation for the lot.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "store-internal.h"

/* Grow the COW file to hold at least `chunks` chunks.  It grows by a
 * sixteenth at a time (at least 16 chunks), so a busy store does not
 * call ftruncate per chunk, and never past max_chunks.
 */
int
store_grow_for (struct cow_store *s, chunk_t chunks)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->grow_lock);
  chunk_t have, target, step;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    have = s->dev_chunks;
  }
  if (chunks <= have)
    return 0;
  step = have / 16 > 16 ? have / 16 : 16;
  target = chunks + step;
  if (target > s->max_chunks || target < chunks)
    target = s->max_chunks > chunks ? s->max_chunks : chunks;
  r = s->cow->ops->grow (s->cow, chunk_offset (s, target));
  if (r < 0)
    return store_error (s, -r, "cannot grow the COW file to %" PRIu64
                        " bytes: %s", chunk_offset (s, target),
                        cow_strerror (-r));
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    s->dev_chunks = target;
    s->dev_size = chunk_offset (s, target);
  }
  return 0;
}

#define RESERVE_AHEAD 16

/* Reserve the space of chunks c up to need (exclusive), unless done
 * already.  need <= dev_chunks.
 */
static int
reserve_for (struct cow_store *s, chunk_t c, chunk_t need)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->grow_lock);
  chunk_t from, ahead, dev;
  int r;

  if (need <= s->reserved_to)
    return 0;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    dev = s->dev_chunks;
  }
  from = c > s->reserved_to ? c : s->reserved_to;
  ahead = need + RESERVE_AHEAD < dev ? need + RESERVE_AHEAD : dev;
  r = s->cow->ops->reserve (s->cow, chunk_offset (s, from),
                            chunk_offset (s, ahead - from));
  if (r == -ENOSPC && ahead > need) {
    ahead = need;
    r = s->cow->ops->reserve (s->cow, chunk_offset (s, from),
                              chunk_offset (s, ahead - from));
  }
  if (r == -ENOSPC)
    return store_full_error (s, "no space for chunk %" PRIu64 " in the "
                             "COW file: %s", c, cow_strerror (-r));
  if (r < 0)
    return store_error (s, -r, "cannot allocate chunk %" PRIu64 " in the "
                        "COW file: %s", c, cow_strerror (-r));
  s->reserved_to = ahead;
  return 0;
}

/* Give chunks c up to next back after a failed allocation, if nobody
 * allocated after them (else they stay unused: a hole, as after a
 * crash).
 */
static void
give_back (struct cow_store *s, chunk_t c, chunk_t next)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
  if (s->next_free == next)
    s->next_free = c;
}

int
store_allocate_chunks (struct cow_store *s, size_t n, chunk_t *chunks)
{
  uint32_t E = s->exceptions_per_area;
  chunk_t first, next, need = 0;
  size_t got = 0;
  bool room = false;
  int r = 0;

  if (s->readonly)
    return store_error (s, EROFS, "the store is read-only");
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    if (s->failed)
      return store_failed_error (s, false);
    if (!s->valid)
      return store_error (s, EIO, "the store is invalidated");
    first = next = s->next_free;
    while (got < n) {
      chunk_t c = next, after = cow_skip_metadata (E, c + 1);
      /* When next_free steps over an area, that area must exist on
       * the device too: the batch that fills the area before it zeroes
       * it (cow-format.md: the kernel then holds E-1 records, not E).
       */
      chunk_t c_need = after > c + 1 ? c + 2 : c + 1;

      if (c_need > s->max_chunks)
        break;
      chunks[got++] = c;
      next = after;
      need = c_need;
    }
    if (got > 0) {
      s->next_free = next;
      room = need <= s->dev_chunks;
    }
  }

  if (got == 0) {
    if (!s->invalidate_on_overflow)
      return store_full_error (s, "the COW store is full (%" PRIu64
                               " chunks of %" PRIu64 " bytes)",
                               s->max_chunks, s->chunk_bytes);
    /* The kernel's strict mode: a full snapshot is invalid from now on,
     * on disk too, and every request fails.
     */
    store_error (s, EIO, "the COW store is full (%" PRIu64 " chunks of %"
                 PRIu64 " bytes): invalidating it (overflow=invalidate)",
                 s->max_chunks, s->chunk_bytes);
    cow_store_invalidate (s);
    return -EIO;
  }

  if (!room)
    r = store_grow_for (s, need);
  /* The chunks, and the areas they step over. */
  if (r == 0 && s->cow->ops->reserve)
    r = reserve_for (s, first, need);
  if (r < 0) {
    give_back (s, first, next);
    return r;
  }
  store_not_full (s);
  return got;
}

int
cow_store_allocate (struct cow_store *s, chunk_t *new_chunk)
{
  int r = store_allocate_chunks (s, 1, new_chunk);

  return r < 0 ? r : 0;
}
