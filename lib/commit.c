/* commit.c: pending records and the ordered, batched commit
 * (cow-format.md, "Committing").
 *
 * Records wait in s->pending from the moment their data is written
 * until a commit.  A commit runs in two phases, whatever the batch size:
 *
 *   A. zero on disk the successor of every area this batch fills, then
 *      sync: the batch's data, the zeroed areas, and every other write
 *      completed before the commit are stable;
 *   B. write the areas the batch touches, then sync.
 *
 * So a commit costs two syncs, and a crash can only lose records
 * written in B, whose data was made stable in A.  If B's writes land
 * partially, a later area may be on disk while an earlier one is not;
 * the loader stops at the earlier one's terminator and the later
 * records are ignored, as their data chunks are (space leaked, nothing
 * wrong).  A torn area write loses only its newest records, because
 * records before current_committed do not change and none crosses a
 * sector.
 *
 * Group commit: callers take a ticket; one caller at a time commits,
 * covering every ticket issued before it started; the rest wait and
 * find their ticket served, or start the next commit.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

void
store_note_write (struct cow_store *s)
{
  atomic_fetch_add_explicit (&s->writes, 1, memory_order_release);
}

int
cow_store_add_exception (struct cow_store *s, chunk_t old_chunk,
                         chunk_t new_chunk)
{
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    struct pending *p = &s->pending;

    if (s->failed)
      return store_error (s, -s->failed, "the store has failed after an "
                          "I/O error and accepts no more writes");
    if (p->len == p->cap) {
      size_t cap = p->cap ? 2 * p->cap : 256;
      struct core_exception *v = realloc (p->v, cap * sizeof *v);
      if (v == NULL)
        return store_error (s, ENOMEM, "out of memory");
      p->v = v;
      p->cap = cap;
    }
    r = table_insert_locked (&s->table, old_chunk, new_chunk);
    if (r < 0)
      return store_error (s, -r, "cannot add the exception for chunk %"
                          PRIu64 ": %s", old_chunk, strerror (-r));
    p->v[p->len++] = (struct core_exception) { old_chunk, new_chunk };
    s->records++;
  }
  store_note_write (s);
  return 0;
}

/* Phase A: zero the successor of each area that `n` more records fill,
 * then sync.
 */
static int
zero_next_areas_and_sync (struct cow_store *s, size_t n)
{
  uint32_t E = s->exceptions_per_area;
  uint64_t area = s->current_area;
  uint64_t used = s->current_committed;
  int r;

  while (used + n >= E) {
    n -= E - used;
    used = 0;
    area++;
    r = cow_io_pwrite (s->cow, s->zero_chunk, s->chunk_bytes,
                       chunk_offset (s, cow_area_location (E, area)));
    if (r < 0)
      return store_error (s, -r, "cannot zero area %" PRIu64 ": %s",
                          area, strerror (-r));
  }
  r = cow_io_sync (s->cow);
  if (r < 0)
    return store_error (s, -r, "cannot sync the COW store: %s",
                        strerror (-r));
  return 0;
}

static int
write_current_area (struct cow_store *s)
{
  chunk_t loc = cow_area_location (s->exceptions_per_area, s->current_area);
  int r = cow_io_pwrite (s->cow, s->area, s->chunk_bytes,
                         chunk_offset (s, loc));

  if (r < 0)
    return store_error (s, -r, "cannot write area %" PRIu64 ": %s",
                        s->current_area, strerror (-r));
  return 0;
}

/* Phase B: put the records in the area buffer, writing each area as it
 * fills and the last partial one at the end, then sync.
 */
static int
write_areas_and_sync (struct cow_store *s, const struct core_exception *v,
                      size_t n)
{
  uint32_t E = s->exceptions_per_area;
  bool dirty = false;
  int r;

  for (size_t k = 0; k < n; k++) {
    cow_encode_exception (s->area, s->current_committed++, &v[k]);
    dirty = true;
    if (s->current_committed == E) {
      r = write_current_area (s);
      if (r < 0)
        return r;
      memset (s->area, 0, s->chunk_bytes);
      s->current_area++;
      s->current_committed = 0;
      dirty = false;
    }
  }
  if (dirty) {
    r = write_current_area (s);
    if (r < 0)
      return r;
  }
  r = cow_io_sync (s->cow);
  if (r < 0)
    return store_error (s, -r, "cannot sync the COW store: %s",
                        strerror (-r));
  return 0;
}

/* One commit, by the thread that set s->committing. */
static int
commit_now (struct cow_store *s)
{
  struct pending batch;
  uint64_t writes;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    if (s->failed)
      return store_error (s, -s->failed, "the store has failed after an "
                          "I/O error; nothing more can be made durable");
    if (!s->valid)
      return store_error (s, EIO, "the store is invalidated");
    batch = s->pending;
    s->pending = (struct pending) { NULL, 0, 0 };
    writes = atomic_load_explicit (&s->writes, memory_order_acquire);
  }
  if (batch.len == 0 && writes == s->writes_synced)
    return 0;                   /* nothing written since the last sync */

  r = zero_next_areas_and_sync (s, batch.len);
  if (r == 0)
    r = write_areas_and_sync (s, batch.v, batch.len);
  free (batch.v);
  if (r < 0) {
    /* The disk's state after a failed write or sync is unknown, and a
     * sync that failed must never be taken for one that succeeded: the
     * store takes no more writes.  What was committed before stays
     * readable.
     */
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    s->failed = -EIO;
    return r;
  }
  s->writes_synced = writes;
  return 0;
}

int
cow_store_commit (struct cow_store *s)
{
  uint64_t ticket;
  int r = 0;

  if (s->readonly)
    return 0;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
  ticket = ++s->tickets_issued;
  while (s->tickets_done < ticket) {
    if (!s->committing) {
      uint64_t covers = s->tickets_issued;

      s->committing = true;
      pthread_mutex_unlock (&s->commit_lock);
      r = commit_now (s);
      pthread_mutex_lock (&s->commit_lock);
      s->committing = false;
      if (r == 0 && s->tickets_done < covers)
        s->tickets_done = covers;
      pthread_cond_broadcast (&s->commit_done);
      if (r < 0)
        return r;
    }
    else {
      pthread_cond_wait (&s->commit_done, &s->commit_lock);
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
      if (s->failed && s->tickets_done < ticket)
        return store_error (s, -s->failed, "the store has failed after an "
                            "I/O error; nothing more can be made durable");
    }
  }
  return 0;
}
