/* origin-defer.c: deferred origin writes, for origin mode.
 *
 * The kernel's snapshot-origin holds every origin write until the
 * copies it made are committed: a first overwrite costs a sync of the
 * store, and at queue depth 16 a handful of writes share each one.  Yet
 * what must wait for the commit is only the write reaching the origin
 * device, not the reply: a write without FUA promises nothing until a
 * flush.  So here a write that needs a commit first
 *   1. copies what the stores lack, under the chunk locks, as before
 *      (origin-copy.c): once that is done every usable store maps the
 *      chunks, so no snapshot read goes to the origin for them;
 *   2. keeps its data in memory, in a FIFO of deferred writes, and
 *      returns;
 * and one thread, the applier, takes whatever is queued, commits every
 * store (one group commit for the whole batch, however large) and only
 * then writes the batch into the origin, in order.  The origin is still
 * written only after the copies and their records are durable, so no
 * crash can show a snapshot new origin data; a crash may lose deferred
 * writes, as it may lose any write not yet flushed.
 *
 * Ordering.  Every origin change that could overlap a deferred write
 * goes after it: a write that overlaps one is deferred too (the FIFO
 * keeps their order); FUA writes, zeroes, trims and block status wait
 * until the queued writes they overlap are written.  Overlap is found
 * through counters per 64K granule, hashed into a fixed array: a
 * collision only sends a request down the careful path.  A read of the
 * origin that overlaps queued writes pins them (so that the applier,
 * which may write and retire them meanwhile, does not free them), reads
 * the origin without the queue lock, and copies their data over it in
 * queue order: every byte is then either a queued write's or what the
 * origin held after every write retired before the read began.
 *
 * Room.  At most DEFER_MAX_BYTES of data and DEFER_MAX_ENTRIES writes
 * wait; a writer beyond that waits for the applier.
 *
 * Failure.
 *   - A store fails (an I/O error in its commit, or it could not be
 *     invalidated): the origin must not change under a snapshot that
 *     cannot keep its copy, so the queue is never written, as
 *     synchronous origin writes fail from then on.  This sticks: the
 *     queued writes stay visible to reads, and every flush, and every
 *     change that waits for a queued write, fails.
 *   - A commit fails for want of space or memory (on-full=fail-write, a
 *     full filesystem): the batch stays queued; the flushes and writers
 *     waiting for it get the error, and the applier tries again when
 *     asked (a flush) or after DEFER_RETRY_NS.
 *   - A write into the origin fails: the rest of the batch is still
 *     written, and the next flush fails once with the error, as a page
 *     cache's write-back error comes back from fsync.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "origin-internal.h"

#define DEFER_MAX_BYTES (64u << 20)
#define DEFER_MAX_ENTRIES 8192
/* A batch that starts from an idle queue gathers for up to
 * DEFER_GATHER_NS, or until DEFER_BATCH_ENTRIES are queued, unless
 * someone waits for it.
 */
#define DEFER_GATHER_NS 2000000
#define DEFER_BATCH_ENTRIES 1024
#define DEFER_RETRY_NS 1000000000
#define GRANULE_SHIFT 16

struct deferred {
  struct deferred *next;
  uint64_t seq;
  uint64_t offset;
  uint32_t count;
  unsigned pins;                /* readers copying from it, unlocked */
  bool retired;                 /* out of the queue: the last pin frees */
  char data[];
};

/* The overlap counters cannot overflow: at most DEFER_MAX_BYTES / 64K +
 * 2 * DEFER_MAX_ENTRIES granules are counted at once.
 */
static size_t
granule_slot (uint64_t granule)
{
  return (granule * UINT64_C (0x9e3779b97f4a7c15)) >> (64 - DEFER_SLOTS_SHIFT);
}

/* Count the entry in (delta 1) or out (-1) of the overlap counters. */
static void
count_range (struct origin_defer *d, uint64_t offset, uint64_t count,
             int delta)
{
  uint64_t last = (offset + count - 1) >> GRANULE_SHIFT;

  for (uint64_t g = offset >> GRANULE_SHIFT; g <= last; g++)
    d->slots[granule_slot (g)] += delta;
}

/* Called with d->lock held.  True if a queued write may overlap. */
static bool
may_overlap (const struct origin_defer *d, uint64_t offset, uint64_t count)
{
  uint64_t last;

  if (d->head == NULL || count == 0)
    return false;
  last = (offset + count - 1) >> GRANULE_SHIFT;
  for (uint64_t g = offset >> GRANULE_SHIFT; g <= last; g++)
    if (d->slots[granule_slot (g)] > 0)
      return true;
  return false;
}

static bool
overlaps (const struct deferred *e, uint64_t offset, uint64_t count)
{
  return e->offset < offset + count && offset < e->offset + e->count;
}

void
defer_init (struct origin_defer *d)
{
  pthread_condattr_t attr;

  memset (d, 0, sizeof *d);
  pthread_mutex_init (&d->lock, NULL);
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&d->queued, &attr);
  pthread_condattr_destroy (&attr);
  pthread_cond_init (&d->retired, NULL);
}

/* Write entries from e to last (inclusive) into the origin, in order.
 * One that fails does not stop the others; the first error is returned.
 */
static int
apply_batch (struct cow_origin *o, struct deferred *e,
             const struct deferred *last)
{
  int err = 0;

  for (;;) {
    int r = cow_io_pwrite (o->io, e->data, e->count, e->offset);

    if (r < 0 && err == 0)
      err = origin_io_error (o, r, "cannot write", e->offset);
    if (e == last)
      return err;
    e = e->next;
  }
}

/* Commit every store with a record that may not be durable: the
 * batch's copies added theirs before they were queued, so before this
 * looks.
 */
static int
commit_for_batch (struct cow_origin *o)
{
  bool *want = o->defer.want;

  for (size_t i = 0; i < o->nr_stores; i++)
    want[i] = !store_all_durable (o->st[i].s);
  return origin_commit_for_change (o, want);
}

/* After a failed commit: true if the queue may never be written (a
 * store has failed, or could not be invalidated), false if a later
 * commit may succeed.
 */
static bool
failure_sticks (const struct cow_origin *o, int r)
{
  if (r == -EIO)
    return true;
  for (size_t i = 0; i < o->nr_stores; i++)
    if (o->st[i].s->failed)
      return true;
  return false;
}

static void
deadline_in (struct timespec *t, long ns)
{
  clock_gettime (CLOCK_MONOTONIC, t);
  t->tv_nsec += ns;
  while (t->tv_nsec >= 1000000000) {
    t->tv_sec++;
    t->tv_nsec -= 1000000000;
  }
}

/* Called with d->lock held and a write queued.  Nobody waits for a
 * queued write but a flush, a drain or a writer short of room, so let
 * more gather for a moment: each commit costs the store a sync or two,
 * and on a virtual disk each I/O a trip to the host.
 */
static void
gather (struct origin_defer *d)
{
  struct timespec until;

  deadline_in (&until, DEFER_GATHER_NS);
  while (!d->stop && d->waiters == 0 &&
         d->entries < DEFER_BATCH_ENTRIES &&
         pthread_cond_timedwait (&d->queued, &d->lock, &until) == 0)
    ;
}

/* Called with d->lock held, after a commit failed for want of space or
 * memory: try again once someone asks (a flush, or a writer short of
 * room, that came after the failure), or after a while.
 */
static void
wait_to_retry (struct origin_defer *d)
{
  struct timespec until;

  deadline_in (&until, DEFER_RETRY_NS);
  while (!d->stop && !d->retry_asked &&
         pthread_cond_timedwait (&d->queued, &d->lock, &until) == 0)
    ;
  d->retry_asked = false;
}

/* Called with d->lock held: take first..last out of the queue. */
static void
retire (struct origin_defer *d, struct deferred *first,
        struct deferred *last)
{
  d->head = last->next;
  if (d->head == NULL)
    d->tail = NULL;
  d->retired_seq = last->seq + 1;
  for (struct deferred *e = first, *next; e != d->head; e = next) {
    next = e->next;
    count_range (d, e->offset, e->count, -1);
    d->bytes -= e->count;
    d->entries--;
    if (e->pins > 0)
      e->retired = true;
    else
      free (e);
  }
}

static void *
applier_thread (void *arg)
{
  struct cow_origin *o = arg;
  struct origin_defer *d = &o->defer;

  pthread_mutex_lock (&d->lock);
  for (;;) {
    struct deferred *first, *last;
    bool idle = false;
    int r, rw = 0;

    while (!d->stop && !d->failed && d->head == NULL) {
      idle = true;
      pthread_cond_wait (&d->queued, &d->lock);
    }
    if (d->head == NULL || d->failed)
      break;                    /* stopped, or nothing can be written */
    if (d->commit_error)
      wait_to_retry (d);
    else if (idle)
      gather (d);
    first = d->head;
    last = d->tail;
    pthread_mutex_unlock (&d->lock);

    /* Entries after `last` were queued after the commit below started,
     * and their copies may not be in it: they wait for the next one.
     */
    r = commit_for_batch (o);
    if (r == 0)
      rw = apply_batch (o, first, last);

    pthread_mutex_lock (&d->lock);
    /* A failure for good, or any when closing: there is nobody left
     * to try again for.
     */
    if (r < 0 && (d->stop || failure_sticks (o, r))) {
      origin_message (o, COW_MSG_ERROR, "%zu origin writes (%" PRIu64
                      " bytes) that waited for their copies' commit will "
                      "not be written%s: %s", (size_t) d->entries, d->bytes,
                      d->stop ? "" : ", and flushes fail from now on",
                      cow_strerror (-r));
      d->failed = r;
    }
    else if (r < 0) {
      if (d->commit_error == 0)
        origin_message (o, COW_MSG_ERROR, "origin writes wait, since "
                        "their copies could not be committed: %s; the "
                        "next flush fails and the commit is tried again",
                        cow_strerror (-r));
      d->commit_error = r;
      d->commit_failures++;
    }
    else {
      d->commit_error = 0;
      retire (d, first, last);
      if (rw < 0 && d->write_error == 0)
        d->write_error = rw;
    }
    pthread_cond_broadcast (&d->retired);
  }
  pthread_mutex_unlock (&d->lock);
  return NULL;
}

/* Called with d->lock held, by a thread about to wait for the
 * applier.
 */
static void
ask_applier (struct origin_defer *d)
{
  d->waiters++;
  if (d->commit_error)
    d->retry_asked = true;
  pthread_cond_signal (&d->queued);
}

/* Called with d->lock held.  The thread starts on first use, since a
 * server may fork after cow_origin_open.
 */
static int
start_applier (struct cow_origin *o)
{
  struct origin_defer *d = &o->defer;
  int err;

  if (d->started)
    return 0;
  if (d->want == NULL)
    d->want = calloc (o->nr_stores ?: 1, sizeof *d->want);
  if (d->want == NULL) {
    origin_message (o, COW_MSG_ERROR, "out of memory");
    return -ENOMEM;
  }
  err = pthread_create (&d->thread, NULL, applier_thread, o);
  if (err) {
    origin_message (o, COW_MSG_ERROR, "cannot start the thread for "
                    "deferred origin writes: %s", cow_strerror (err));
    return -err;
  }
  d->started = true;
  return 0;
}

/* Called with d->lock held, by a thread waiting on d->retired: the
 * error that ends its wait, if the queue can never be written or a
 * commit failed since it read `failures`; else 0.
 */
static int
wait_error (const struct origin_defer *d, uint64_t failures)
{
  if (d->failed)
    return d->failed;
  if (d->commit_failures != failures)
    return d->commit_error ?: -EIO;
  return 0;
}

/* Called with d->lock held: wait until every entry before seq `upto`
 * is written into the origin.
 */
static int
drain_upto (struct origin_defer *d, uint64_t upto)
{
  uint64_t failures = d->commit_failures;
  int r = 0;

  if (d->retired_seq >= upto)
    return 0;
  ask_applier (d);
  while (d->retired_seq < upto && (r = wait_error (d, failures)) == 0)
    pthread_cond_wait (&d->retired, &d->lock);
  d->waiters--;
  return d->retired_seq >= upto ? 0 : r;
}

int
defer_flush (struct cow_origin *o)
{
  struct origin_defer *d = &o->defer;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&d->lock);
  int r = drain_upto (d, d->next_seq);

  if (r == 0 && d->write_error) {
    r = d->write_error;
    d->write_error = 0;
  }
  return r;
}

int
defer_drain_overlap (struct cow_origin *o, uint64_t offset, uint64_t count)
{
  struct origin_defer *d = &o->defer;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&d->lock);
  uint64_t upto = 0;

  if (!may_overlap (d, offset, count))
    return 0;
  for (const struct deferred *e = d->head; e != NULL; e = e->next)
    if (overlaps (e, offset, count))
      upto = e->seq + 1;
  return drain_upto (d, upto);
}

/* Copy the part of e's data that falls in [offset, offset+count). */
static void
overlay (char *buf, uint32_t count, uint64_t offset,
         const struct deferred *e)
{
  uint64_t lo = e->offset > offset ? e->offset : offset;
  uint64_t hi = e->offset + e->count < offset + count
    ? e->offset + e->count : offset + count;

  memcpy (buf + (lo - offset), e->data + (lo - e->offset), hi - lo);
}

/* Drop the pins of n entries, freeing those retired meanwhile. */
static void
unpin (struct origin_defer *d, struct deferred **pinned, size_t n)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&d->lock);

  for (size_t i = 0; i < n; i++)
    if (--pinned[i]->pins == 0 && pinned[i]->retired)
      free (pinned[i]);
}

int
defer_pread (struct cow_origin *o, char *buf, uint32_t count,
             uint64_t offset)
{
  struct origin_defer *d = &o->defer;
  CLEANUP_FREE struct deferred **pinned = NULL;
  size_t n = 0;
  int r;

  /* Nothing queued: every write retired is in the origin already, and
   * one queued from now on is concurrent with this read.
   */
  if (d->entries == 0)
    return cow_io_pread (o->io, buf, count, offset);
  pthread_mutex_lock (&d->lock);
  if (may_overlap (d, offset, count)) {
    for (const struct deferred *e = d->head; e != NULL; e = e->next)
      n += overlaps (e, offset, count);
    if (n > 0)
      pinned = malloc (n * sizeof *pinned);
    if (pinned == NULL && n > 0) {
      /* No memory to pin: read under the lock instead. */
      r = cow_io_pread (o->io, buf, count, offset);
      for (const struct deferred *e = d->head; r == 0 && e; e = e->next)
        if (overlaps (e, offset, count))
          overlay (buf, count, offset, e);
      pthread_mutex_unlock (&d->lock);
      return r;
    }
    n = 0;
    for (struct deferred *e = d->head; e != NULL; e = e->next)
      if (overlaps (e, offset, count)) {
        e->pins++;
        pinned[n++] = e;
      }
  }
  pthread_mutex_unlock (&d->lock);

  /* A write queued from now on is concurrent with this read: either
   * answer is right for it.
   */
  r = cow_io_pread (o->io, buf, count, offset);
  for (size_t i = 0; r == 0 && i < n; i++)
    overlay (buf, count, offset, pinned[i]);
  if (n > 0)
    unpin (d, pinned, n);
  return r;
}

int
defer_write (struct cow_origin *o, const char *buf, uint32_t count,
             uint64_t offset, bool need_commit, bool *deferred)
{
  struct origin_defer *d = &o->defer;
  struct deferred *e;
  int r;

  /* The common case, an overwrite of chunks every store holds durably
   * with nothing queued, takes no lock: a write queued from now on is
   * concurrent with this one.
   */
  *deferred = false;
  if (!need_commit && d->entries == 0)
    return 0;                   /* the caller writes the origin now */

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&d->lock);
  if (!need_commit && !may_overlap (d, offset, count))
    return 0;
  if (d->failed)
    return d->failed;
  r = start_applier (o);
  if (r < 0)
    return r;
  if (d->head != NULL && (d->bytes + count > DEFER_MAX_BYTES ||
                         d->entries >= DEFER_MAX_ENTRIES)) {
    uint64_t failures = d->commit_failures;

    ask_applier (d);
    while (d->head != NULL &&
           (d->bytes + count > DEFER_MAX_BYTES ||
            d->entries >= DEFER_MAX_ENTRIES) &&
           (r = wait_error (d, failures)) == 0)
      pthread_cond_wait (&d->retired, &d->lock);
    d->waiters--;
    if (r < 0)
      return r;
  }
  e = malloc (sizeof *e + count);
  if (e == NULL) {
    origin_message (o, COW_MSG_ERROR, "out of memory");
    return -ENOMEM;
  }
  *e = (struct deferred) {
    .seq = d->next_seq++, .offset = offset, .count = count,
  };
  memcpy (e->data, buf, count);
  if (d->tail)
    d->tail->next = e;
  else
    d->head = e;
  d->tail = e;
  count_range (d, offset, count, 1);
  d->bytes += count;
  d->entries++;
  /* The first write starts a batch; a full batch need not wait more. */
  if (d->entries == 1 || d->entries >= DEFER_BATCH_ENTRIES)
    pthread_cond_signal (&d->queued);
  *deferred = true;
  return 0;
}

void
defer_stop (struct cow_origin *o)
{
  struct origin_defer *d = &o->defer;

  /* The applier leaves only once the queue is empty, or can never be
   * written.
   */
  if (d->started) {
    pthread_mutex_lock (&d->lock);
    d->stop = true;
    pthread_cond_signal (&d->queued);
    pthread_mutex_unlock (&d->lock);
    pthread_join (d->thread, NULL);
  }
  /* What a failed store kept from the origin is lost; its error went to
   * the flushes.
   */
  while (d->head) {
    struct deferred *next = d->head->next;

    free (d->head);
    d->head = next;
  }
  free (d->want);
  pthread_mutex_destroy (&d->lock);
  pthread_cond_destroy (&d->queued);
  pthread_cond_destroy (&d->retired);
}
