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
 * written in B, whose data was made stable in A.  A commit with no
 * records (only writes into chunks already copied) has no B and costs
 * one sync.  If B's writes land
 * partially, a later area may be on disk while an earlier one is not;
 * the loader stops at the earlier one's terminator and the later
 * records are ignored, as their data chunks are (space leaked, nothing
 * wrong).  A torn area write loses only its newest records, because
 * records before current_committed do not change and none crosses a
 * sector.
 *
 * Failure: a sync that failed cannot be retried as if it had worked
 * (the kernel may have dropped the dirty pages it could not write), so
 * it fails the store for good (s->failed).  A pwrite that failed with
 * ENOSPC never reached the page cache: the batch goes back to the head
 * of s->pending, the in-memory area is restored, and the next commit
 * tries again once there is space.  alloc.c reserves every block a
 * commit writes, so on a file this should not happen at all.
 *
 * Group commit: callers take a ticket; one caller at a time commits,
 * covering every ticket issued before it started; the rest wait and
 * find their ticket served, or start the next commit.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

int
store_failed_error (const struct cow_store *s, bool durable)
{
  return store_error (s, -s->failed, "the store has failed after an I/O "
                      "error%s", durable
                      ? "; nothing more can be made durable"
                      : " and accepts no more writes");
}

int
store_full_error (struct cow_store *s, const char *fs, ...)
{
  char msg[256];
  va_list args;
  bool was = atomic_exchange (&s->full_reported, true);

  va_start (args, fs);
  vsnprintf (msg, sizeof msg, fs, args);
  va_end (args);
  store_message (s, was ? COW_MSG_DEBUG : COW_MSG_ERROR, "%s", msg);
  return -ENOSPC;
}

void
store_not_full (struct cow_store *s)
{
  if (atomic_load_explicit (&s->full_reported, memory_order_relaxed))
    atomic_store (&s->full_reported, false);
}

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
      return store_failed_error (s, false);
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
                          PRIu64 ": %s", old_chunk, cow_strerror (-r));
    p->v[p->len++] = (struct core_exception) { old_chunk, new_chunk };
    s->records++;
  }
  store_note_write (s);
  return 0;
}

/* A pwrite in a commit failed: ENOSPC is reported once per spell of a
 * full filesystem, the rest as errors.
 */
static int
write_failed (struct cow_store *s, int r, const char *what, uint64_t area)
{
  if (r == -ENOSPC)
    return store_full_error (s, "cannot %s area %" PRIu64 ": %s", what,
                             area, cow_strerror (-r));
  return store_error (s, -r, "cannot %s area %" PRIu64 ": %s", what, area,
                      cow_strerror (-r));
}

static int
sync_store (struct cow_store *s, bool *sync_failed)
{
  int r = cow_io_sync (s->cow);

  if (r < 0) {
    *sync_failed = true;
    return store_error (s, -r, "cannot sync the COW store: %s",
                        cow_strerror (-r));
  }
  return 0;
}

/* Phase A: zero the successor of each area that `n` more records fill,
 * then sync.
 */
static int
zero_next_areas_and_sync (struct cow_store *s, size_t n, bool *sync_failed)
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
      return write_failed (s, r, "zero", area);
  }
  return sync_store (s, sync_failed);
}

static int
write_current_area (struct cow_store *s)
{
  chunk_t loc = cow_area_location (s->exceptions_per_area, s->current_area);
  int r = cow_io_pwrite (s->cow, s->area, s->chunk_bytes,
                         chunk_offset (s, loc));

  if (r < 0)
    return write_failed (s, r, "write", s->current_area);
  return 0;
}

/* Phase B: put the records in the area buffer, writing each area as it
 * fills and the last partial one at the end, then sync.
 */
static int
write_areas_and_sync (struct cow_store *s, const struct core_exception *v,
                      size_t n, bool *sync_failed)
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
  return sync_store (s, sync_failed);
}

/* Put a batch whose area writes ran out of space back at the head of
 * s->pending, ahead of the records added since, so the next commit
 * writes them all in order.  Takes ownership of batch->v.
 */
static int
requeue (struct cow_store *s, struct pending *batch)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
  struct pending *p = &s->pending;
  size_t len = batch->len + p->len;

  if (batch->cap < len) {
    struct core_exception *v = realloc (batch->v, len * sizeof *v);

    if (v == NULL) {
      free (batch->v);
      s->failed = -EIO;
      return store_error (s, ENOMEM, "out of memory: %zu records that "
                          "were not committed are lost", batch->len);
    }
    batch->v = v;
    batch->cap = len;
  }
  if (p->len)                   /* p->v may be NULL */
    memcpy (batch->v + batch->len, p->v, p->len * sizeof *p->v);
  batch->len = len;
  free (p->v);
  *p = *batch;
  return 0;
}

/* Where the area state stood before a commit, to undo phase B. */
struct area_state {
  uint64_t current_area;
  uint32_t current_committed;
};

static void
restore_area (struct cow_store *s, const struct area_state *st,
              const uint8_t *saved_area)
{
  s->current_area = st->current_area;
  s->current_committed = st->current_committed;
  memcpy (s->area, saved_area, s->chunk_bytes);
}

/* One commit, by the thread that set s->committing. */
static int
commit_now (struct cow_store *s)
{
  struct pending batch;
  struct area_state st = { s->current_area, s->current_committed };
  CLEANUP_FREE uint8_t *saved_area = NULL;
  uint64_t writes;
  bool sync_failed = false;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    if (s->failed)
      return store_failed_error (s, true);
    if (!s->valid)
      return store_error (s, EIO, "the store is invalidated");
    batch = s->pending;
    s->pending = (struct pending) { NULL, 0, 0 };
    writes = atomic_load_explicit (&s->writes, memory_order_acquire);
  }
  if (batch.len == 0) {
    if (writes == s->writes_synced)
      return 0;                 /* nothing written since the last sync */
    /* Only data in chunks that already have records: one sync. */
    r = sync_store (s, &sync_failed);
    if (r < 0) {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
      s->failed = -EIO;
      return r;
    }
    s->writes_synced = writes;
    return 0;
  }

  /* Phase B changes the area buffer as it goes; keep a copy to undo it
   * if a write runs out of space.
   */
  saved_area = malloc (s->chunk_bytes);
  if (saved_area == NULL) {
    r = store_error (s, ENOMEM, "out of memory");
    return requeue (s, &batch) ?: r;
  }
  memcpy (saved_area, s->area, s->chunk_bytes);

  r = zero_next_areas_and_sync (s, batch.len, &sync_failed);
  if (r == 0)
    r = write_areas_and_sync (s, batch.v, batch.len, &sync_failed);
  if (r == -ENOSPC && !sync_failed) {
    /* A write found no space.  Whatever writes did land are harmless:
     * zeroed areas past the current one, or areas whose records' data
     * phase A made stable.  The next commit writes the same areas
     * again, from the same state.
     */
    restore_area (s, &st, saved_area);
    return requeue (s, &batch) ?: r;
  }
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
  store_not_full (s);
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
        return store_failed_error (s, true);
    }
  }
  return 0;
}
