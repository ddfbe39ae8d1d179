/* commit.c: pending records, the ordered and pipelined group commit
 * (cow-format.md, "Committing"), and the background committer.
 *
 * Records wait in s->pending from the moment their data is written
 * until a commit.  A commit is made of rounds, each ending in exactly
 * one sync.  A round, run by the one thread that set s->committing:
 *
 *   1. takes the pending records: P, the first s->prepared of them,
 *      which an earlier round prepared, and N, the rest;
 *   2. writes the areas P touches (no sync yet);
 *   3. zeroes on disk the successor of every area that N will fill,
 *      counting from where P left the area state;
 *   4. syncs.  P is now durable; N's data and the areas zeroed for it
 *      are stable, so N becomes the prepared head of s->pending (its
 *      records are not put in the area buffer yet).
 *
 * With no P, a round is the old phase A (zero, sync); with no N, the
 * old phase B (write the areas, sync).  A lone flush over new records
 * still costs two rounds, two syncs; a flush that finds only writes
 * into chunks already copied costs one sync (a round with neither P
 * nor N), and a flush with nothing written since the last sync none.
 * Under a stream of flushes the rounds run back to back and each sync
 * is at once the previous batch's area durability and the next batch's
 * data barrier, so a round serves the flushes of a whole batch.
 *
 * Why the pipelined round keeps the rules of cow-format.md:
 *
 *   - A record reaches the disk only after its data is stable.  A
 *     record is added to s->pending after its data write completed
 *     (snapshot.c), so a record taken in step 1 has its data written
 *     before the round's sync starts.  Its record is first encoded into
 *     the area buffer, and so first written, in step 2 of the NEXT
 *     round, after that sync returned.  Records added while a round
 *     runs, whose data may have been written after its sync started,
 *     are not in that round's N: they wait for the next round's sync.
 *   - The next area is zeroed before an area fills.  N's successors
 *     are zeroed in step 3 and made stable by the sync in step 4;
 *     N's areas are written in the next round's step 2, after it.  The
 *     areas zeroed for N all lie past the current area as P leaves it,
 *     and P writes none of them, so the zeroing and P's area writes,
 *     which share one sync, never touch the same area, and may land in
 *     any order.  P's own successors were zeroed in P's round.
 *   - Only the newest records can be lost.  An area write rewrites its
 *     area in place: records before current_committed do not change and
 *     none crosses a sector, so a torn write loses only records that
 *     no flush was told were durable.  If P's writes land partly, a
 *     later area may be on disk while an earlier one is not; the loader
 *     stops at the earlier one's terminator and ignores the rest, as it
 *     ignores their data chunks (space leaked, nothing wrong).
 *   - A flush returns only once its writes and records are durable.  A
 *     flush takes a ticket.  Each round notes the last ticket issued
 *     before step 1 (`covers`).  For any such ticket, every write it
 *     must make durable completed, and every record it needs was added,
 *     before the ticket was issued, so the records are in P or N (or
 *     were committed earlier) and the data is written before the sync.
 *     If N is empty, the sync makes all of it durable: the round serves
 *     `covers`.  Otherwise it serves the tickets P's round covered
 *     (s->prepared_covers), and the next round, which writes N, serves
 *     this round's.  A flush waits for at most two rounds that start
 *     after it, however many writers keep adding records.
 *
 * Pending records are bounded: once an area's worth (E) is pending, the
 * background committer (a thread started on first use, since a server
 * may fork after opening the store) runs rounds until fewer than E
 * are, so memory stays bounded and a flush finds a small batch.  Its
 * rounds are the same rounds and take a ticket each, as a flush's do,
 * so origin-commit.c's store_all_durable sees them.  It stops in
 * store_commit_stop (from cow_store_close).
 *
 * Failure: a sync that failed cannot be retried as if it had worked
 * (the kernel may have dropped the dirty pages it could not write), so
 * it fails the store for good (s->failed).  A pwrite that failed with
 * ENOSPC never reached the page cache: the round's records go back to
 * the head of s->pending (P still prepared, as its zeroed areas and its
 * data are still stable), the in-memory area is restored, and the next
 * commit tries again once there is space; the background committer
 * then waits for a flush to succeed before it tries again.  alloc.c
 * reserves every block a commit writes, so on a file this should not
 * happen at all.
 *
 * Counters: s->syncs (syncs of the COW device by commits), s->flushes
 * (cow_store_commit calls) and s->background_rounds go to the debug log
 * every COMMIT_REPORT_EVERY flushes and when the store closes, as
 * "commits: F flushes, S syncs (X per flush), B background rounds", so
 * a benchmark can read syncs per flush from nbdkit -D snapcow.verbose=1.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

/* A debug line with the counters every this many flushes. */
#define COMMIT_REPORT_EVERY 4096

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
  store_message (s, was ? COW_MSG_DEBUG : COW_MSG_ERROR, "%s%s%s", msg,
                 s->full_policy ? ": " : "",
                 s->full_policy ? s->full_policy : "");
  return -ENOSPC;
}

void
store_not_full (struct cow_store *s)
{
  if (atomic_load_explicit (&s->full_reported, memory_order_relaxed))
    atomic_store (&s->full_reported, false);
}

int
store_cow_written (struct cow_store *s, int r, uint64_t at)
{
  /* A chunk trimmed earlier needs its space again. */
  if (r == -ENOSPC)
    return store_full_error (s, "cannot write the COW store at offset %"
                             PRIu64 ": %s", at, cow_strerror (-r));
  if (r < 0)
    return store_io_error (s, r, "cannot write", s->cow, at);
  store_note_write (s);
  return 0;
}

void
store_note_write (struct cow_store *s)
{
  atomic_fetch_add_explicit (&s->writes, 1, memory_order_release);
}

static void kick_background (struct cow_store *s);

/* Under s->lock, after adding records: true if the background
 * committer must be woken (an area's worth pending and not yet asked).
 */
static bool
want_background_locked (struct cow_store *s)
{
  if (!s->background_commit || s->bg_kicked
      || s->pending.len < s->exceptions_per_area)
    return false;
  s->bg_kicked = true;
  return true;
}

int
cow_store_add_exception (struct cow_store *s, chunk_t old_chunk,
                         chunk_t new_chunk)
{
  return store_add_exceptions (s, &old_chunk, &new_chunk, 1);
}

/* The records of a write over several new chunks (snapshot.c), under
 * one lock.  On an error, the records added before it stay.
 */
int
store_add_exceptions (struct cow_store *s, const chunk_t *old,
                      const chunk_t *new_chunks, size_t n)
{
  bool kick;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    struct pending *p = &s->pending;

    if (s->failed)
      return store_failed_error (s, false);
    if (p->cap - p->len < n) {
      size_t cap = p->cap ? 2 * p->cap : 256;
      struct core_exception *v;

      while (cap - p->len < n)
        cap *= 2;
      v = realloc (p->v, cap * sizeof *v);
      if (v == NULL)
        return store_error (s, ENOMEM, "out of memory");
      p->v = v;
      p->cap = cap;
    }
    for (size_t k = 0; k < n; k++) {
      r = table_insert_locked (&s->table, old[k], new_chunks[k]);
      if (r < 0)
        return store_error (s, -r, "cannot add the exception for chunk %"
                            PRIu64 ": %s", old[k], cow_strerror (-r));
      p->v[p->len++] = (struct core_exception) { old[k], new_chunks[k] };
      s->records++;
    }
    kick = want_background_locked (s);
  }
  store_note_write (s);
  if (kick)
    kick_background (s);
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
  int r;

  atomic_fetch_add_explicit (&s->syncs, 1, memory_order_relaxed);
  r = cow_io_sync (s->cow);
  if (r < 0) {
    *sync_failed = true;
    return store_error (s, -r, "cannot sync the COW store: %s",
                        cow_strerror (-r));
  }
  return 0;
}

/* Step 3: zero the successor of each area that `n` more records fill,
 * from the area state as it stands (after P).  No sync.
 */
static int
zero_next_areas (struct cow_store *s, size_t n)
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
  return 0;
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

/* Step 2: put P's records in the area buffer, writing each area as it
 * fills and the last partial one at the end.  No sync.
 */
static int
write_areas (struct cow_store *s, const struct core_exception *v, size_t n)
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
  if (dirty)
    return write_current_area (s);
  return 0;
}

/* Put a round's records back at the head of s->pending, ahead of the
 * records added since, the first `prepared` of them prepared.  After a
 * round that found no space (blocked), the background committer is not
 * woken again until a round takes the records.  Takes ownership of
 * batch->v.
 */
static int
requeue (struct cow_store *s, struct pending *batch, size_t prepared,
         bool blocked)
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
  s->prepared = prepared;
  if (blocked)
    s->bg_kicked = true;
  return 0;
}

/* Where the area state stood before a round, to undo step 2. */
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

static void
fail_store (struct cow_store *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
  s->failed = -EIO;
}

/* One round (see the top of the file), by the thread that set
 * s->committing.  *served: every ticket up to it is served (0: none
 * newly).
 */
static int
commit_round (struct cow_store *s, uint64_t *served)
{
  struct pending batch;
  size_t nprep;
  uint64_t covers, writes;
  struct area_state st = { s->current_area, s->current_committed };
  CLEANUP_FREE uint8_t *saved_area = NULL;
  bool sync_failed = false;
  int r = 0;

  *served = 0;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
    covers = s->tickets_issued;
  }
  /* Step 1, after `covers`: a ticket's records were added before it. */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    if (s->failed)
      return store_failed_error (s, true);
    if (!s->valid)
      return store_error (s, EIO, "the store is invalidated");
    batch = s->pending;
    nprep = s->prepared;
    s->pending = (struct pending) { NULL, 0, 0 };
    s->prepared = 0;
    s->bg_kicked = false;
    writes = atomic_load_explicit (&s->writes, memory_order_acquire);
  }

  if (batch.len == 0) {
    free (batch.v);
    if (writes != s->writes_synced) {
      /* Only data in chunks that already have records: one sync. */
      r = sync_store (s, &sync_failed);
      if (r < 0) {
        fail_store (s);
        return r;
      }
      s->writes_synced = writes;
    }
    *served = covers;
    return 0;
  }

  if (nprep > 0) {
    /* Step 2 changes the area buffer as it goes; keep a copy to undo
     * it if a write runs out of space.
     */
    saved_area = malloc (s->chunk_bytes);
    if (saved_area == NULL) {
      r = store_error (s, ENOMEM, "out of memory");
      return requeue (s, &batch, nprep, false) ?: r;
    }
    memcpy (saved_area, s->area, s->chunk_bytes);
    r = write_areas (s, batch.v, nprep);
  }
  if (r == 0 && batch.len > nprep)
    r = zero_next_areas (s, batch.len - nprep);
  if (r == 0)
    r = sync_store (s, &sync_failed);
  if (r == -ENOSPC && !sync_failed) {
    /* A write found no space.  Whatever writes did land are harmless:
     * zeroed areas past the current one, or areas whose records' data
     * is stable.  The next round writes the same areas again, from the
     * same state, and P is still prepared.
     */
    if (nprep > 0)
      restore_area (s, &st, saved_area);
    s->commit_short_of_space = true;
    return requeue (s, &batch, nprep, true) ?: r;
  }
  if (r < 0) {
    /* The disk's state after a failed write or sync is unknown, and a
     * sync that failed must never be taken for one that succeeded: the
     * store takes no more writes.  What was committed before stays
     * readable.
     */
    free (batch.v);
    fail_store (s);
    return r;
  }
  s->writes_synced = writes;
  /* The spell of "no space" that a commit met is over; a commit that
   * met none says nothing about whether the store is full (an
   * allocation does, alloc.c).
   */
  if (s->commit_short_of_space) {
    s->commit_short_of_space = false;
    store_not_full (s);
  }
  if (batch.len == nprep) {
    free (batch.v);
    *served = covers;
    return 0;
  }
  if (nprep > 0)
    *served = s->prepared_covers;
  s->prepared_covers = covers;
  batch.len -= nprep;
  memmove (batch.v, batch.v + nprep, batch.len * sizeof *batch.v);
  return requeue (s, &batch, batch.len, false);
}

/* Under s->commit_lock: the counters, every COMMIT_REPORT_EVERY
 * flushes and at close.
 */
static void
report_counters (const struct cow_store *s)
{
  uint64_t syncs = atomic_load_explicit (&s->syncs, memory_order_relaxed);

  store_message (s, COW_MSG_DEBUG, "commits: %" PRIu64 " flushes, %" PRIu64
                 " syncs (%.2f per flush), %" PRIu64 " background rounds",
                 s->flushes, syncs,
                 s->flushes ? (double) syncs / s->flushes : 0.0,
                 s->background_rounds);
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
  if (++s->flushes % COMMIT_REPORT_EVERY == 0)
    report_counters (s);
  while (s->tickets_done < ticket) {
    if (!s->committing) {
      uint64_t served;

      s->committing = true;
      pthread_mutex_unlock (&s->commit_lock);
      r = commit_round (s, &served);
      pthread_mutex_lock (&s->commit_lock);
      s->committing = false;
      if (r == 0 && s->tickets_done < served)
        s->tickets_done = served;
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

/* The background committer. */

static bool
background_stopping (struct cow_store *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->bg_lock);
  return s->bg_stop;
}

/* Rounds while an area's worth is pending.  Errors were reported by the
 * round; a flush meets them again.
 */
static void
background_commit (struct cow_store *s)
{
  while (!background_stopping (s)) {
    uint64_t served;
    int r;

    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
      while (s->committing)
        pthread_cond_wait (&s->commit_done, &s->commit_lock);
      {
        ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
        if (s->failed || !s->valid)
          return;
        if (s->pending.len < s->exceptions_per_area) {
          s->bg_kicked = false;
          return;
        }
      }
      /* A ticket of its own: a round starts only for a ticket not yet
       * served (origin-commit.c, store_all_durable).
       */
      s->tickets_issued++;
      s->background_rounds++;
      s->committing = true;
    }
    r = commit_round (s, &served);
    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
      s->committing = false;
      if (r == 0 && s->tickets_done < served)
        s->tickets_done = served;
      pthread_cond_broadcast (&s->commit_done);
    }
    if (r < 0)
      return;
  }
}

static void *
background_thread (void *arg)
{
  struct cow_store *s = arg;

  pthread_mutex_lock (&s->bg_lock);
  for (;;) {
    while (!s->bg_asked && !s->bg_stop)
      pthread_cond_wait (&s->bg_wake, &s->bg_lock);
    if (s->bg_stop)
      break;
    s->bg_asked = false;
    pthread_mutex_unlock (&s->bg_lock);
    background_commit (s);
    pthread_mutex_lock (&s->bg_lock);
  }
  pthread_mutex_unlock (&s->bg_lock);
  return NULL;
}

/* Wake the background committer, starting it on first use.  Where the
 * thread cannot start, records wait for the next flush, as they did
 * before there was one.
 */
static void
kick_background (struct cow_store *s)
{
  int err = 0;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->bg_lock);
    if (s->bg_stop || s->bg_start_failed)
      return;
    if (!s->bg_started) {
      err = pthread_create (&s->bg_thread, NULL, background_thread, s);
      s->bg_started = err == 0;
      s->bg_start_failed = err != 0;
    }
    s->bg_asked = true;
    pthread_cond_signal (&s->bg_wake);
  }
  if (err)
    store_message (s, COW_MSG_DEBUG, "cannot start the background "
                   "committer: %s; records wait for a flush",
                   cow_strerror (err));
}

void
store_commit_init (struct cow_store *s)
{
  s->background_commit = true;
  pthread_mutex_init (&s->bg_lock, NULL);
  pthread_cond_init (&s->bg_wake, NULL);
}

void
store_commit_stop (struct cow_store *s)
{
  bool started;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->bg_lock);
    s->bg_stop = true;
    started = s->bg_started;
    pthread_cond_signal (&s->bg_wake);
  }
  if (started)
    pthread_join (s->bg_thread, NULL);
  s->bg_started = false;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
    if (s->flushes || s->background_rounds)
      report_counters (s);
  }
}

void
store_set_background_commit (struct cow_store *s, bool on)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
  s->background_commit = on;
}
