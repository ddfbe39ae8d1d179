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
 * keeps their order); FUA writes, zeroes, trims and block status drain
 * the queue first.  Reads of the origin that overlap queued writes copy
 * their data over what the origin holds, under the queue lock, which
 * the applier takes to retire entries, so a read sees either an entry
 * or its data in the origin.  Overlap is found through counters per
 * 64K granule, hashed into a fixed array: a collision only sends a
 * request down the careful path.
 *
 * Room.  At most DEFER_MAX_BYTES of data and DEFER_MAX_ENTRIES writes
 * wait; a writer beyond that waits for the applier.  Requests larger
 * than one origin segment are not deferred.
 *
 * Failure.  If a batch's commit fails, or a store fails, the batch is
 * not written: the origin must not change under a snapshot that could
 * not keep its copy.  The error sticks: the entries stay queued (so
 * reads go on showing what was written), every later flush and every
 * write that would be deferred fails with it, as a page cache's write
 * error comes back from fsync.
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
/* A batch gathers for up to DEFER_GATHER_NS after its first write, or
 * until DEFER_BATCH_ENTRIES are queued, unless someone waits for it.
 */
#define DEFER_GATHER_NS 2000000
#define DEFER_BATCH_ENTRIES 1024
#define GRANULE_SHIFT 16

struct deferred {
  struct deferred *next;
  uint64_t seq;
  uint64_t offset;
  uint32_t count;
  char data[];
};

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

void
defer_init (struct origin_defer *d)
{
  memset (d, 0, sizeof *d);
  pthread_mutex_init (&d->lock, NULL);
  pthread_condattr_t attr;

  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&d->queued, &attr);
  pthread_condattr_destroy (&attr);
  pthread_cond_init (&d->retired, NULL);
}

/* Write entries from e to last (inclusive) into the origin, in order. */
static int
apply_batch (struct cow_origin *o, struct deferred *e,
             const struct deferred *last)
{
  for (;;) {
    int r = cow_io_pwrite (o->io, e->data, e->count, e->offset);

    if (r < 0)
      return origin_io_error (o, r, "cannot write", e->offset);
    if (e == last)
      return 0;
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

/* Called with d->lock held and a write queued.  Nobody waits for a
 * queued write but a flush, a drain or a writer short of room, so let
 * more gather for a moment: each commit costs the store a sync or two,
 * and on a virtual disk each I/O a trip to the host.
 */
static void
gather (struct origin_defer *d)
{
  struct timespec until;

  clock_gettime (CLOCK_MONOTONIC, &until);
  until.tv_nsec += DEFER_GATHER_NS;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  while (!d->stop && d->waiters == 0 &&
         d->entries < DEFER_BATCH_ENTRIES &&
         pthread_cond_timedwait (&d->queued, &d->lock, &until) == 0)
    ;
}

static void *
applier_thread (void *arg)
{
  struct cow_origin *o = arg;
  struct origin_defer *d = &o->defer;

  pthread_mutex_lock (&d->lock);
  for (;;) {
    struct deferred *first, *last;
    int r;

    while (!d->stop && (d->head == NULL || d->error))
      pthread_cond_wait (&d->queued, &d->lock);
    if (d->head == NULL || d->error)
      break;                    /* stop, with nothing to apply */
    gather (d);
    first = d->head;
    last = d->tail;
    pthread_mutex_unlock (&d->lock);

    /* Entries after `last` were queued after the commit below started,
     * and their copies may not be in it: they wait for the next one.
     */
    r = commit_for_batch (o) ?: apply_batch (o, first, last);

    pthread_mutex_lock (&d->lock);
    if (r < 0) {
      origin_message (o, COW_MSG_ERROR, "%zu origin writes (%" PRIu64
                      " bytes) that waited for their copies' commit are "
                      "not written, and flushes fail from now on: %s",
                      d->entries, d->bytes, cow_strerror (-r));
      d->error = r;
      pthread_cond_broadcast (&d->retired);
      continue;
    }
    d->head = last->next;
    if (d->head == NULL)
      d->tail = NULL;
    d->retired_seq = last->seq + 1;
    for (struct deferred *e = first, *next; e != d->head; e = next) {
      next = e->next;
      count_range (d, e->offset, e->count, -1);
      d->bytes -= e->count;
      d->entries--;
      free (e);
    }
    pthread_cond_broadcast (&d->retired);
  }
  pthread_mutex_unlock (&d->lock);
  return NULL;
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

/* Called with d->lock held: wait until every entry queued so far is
 * written into the origin.
 */
static int
drain_locked (struct origin_defer *d)
{
  uint64_t upto = d->next_seq;

  if (d->retired_seq < upto && !d->error) {
    d->waiters++;
    pthread_cond_signal (&d->queued);
    while (d->retired_seq < upto && !d->error)
      pthread_cond_wait (&d->retired, &d->lock);
    d->waiters--;
  }
  return d->error;
}

int
defer_drain (struct cow_origin *o)
{
  struct origin_defer *d = &o->defer;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&d->lock);

  return drain_locked (d);
}

int
defer_drain_overlap (struct cow_origin *o, uint64_t offset, uint64_t count)
{
  struct origin_defer *d = &o->defer;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&d->lock);

  if (!may_overlap (d, offset, count))
    return d->error;
  return drain_locked (d);
}

int
defer_pread (struct cow_origin *o, char *buf, uint32_t count,
             uint64_t offset)
{
  struct origin_defer *d = &o->defer;
  int r;

  pthread_mutex_lock (&d->lock);
  if (!may_overlap (d, offset, count)) {
    /* A write queued from now on is concurrent with this read: either
     * answer is right.
     */
    pthread_mutex_unlock (&d->lock);
    return cow_io_pread (o->io, buf, count, offset);
  }
  r = cow_io_pread (o->io, buf, count, offset);
  for (const struct deferred *e = d->head; r == 0 && e != NULL;
       e = e->next) {
    uint64_t lo = e->offset > offset ? e->offset : offset;
    uint64_t hi_e = e->offset + e->count, hi_r = offset + count;
    uint64_t hi = hi_e < hi_r ? hi_e : hi_r;

    if (lo < hi)
      memcpy (buf + (lo - offset), e->data + (lo - e->offset), hi - lo);
  }
  pthread_mutex_unlock (&d->lock);
  return r;
}

int
defer_write (struct cow_origin *o, const char *buf, uint32_t count,
             uint64_t offset, bool need_commit, bool *deferred)
{
  struct origin_defer *d = &o->defer;
  struct deferred *e;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&d->lock);
  int r;

  *deferred = false;
  if (!need_commit && !may_overlap (d, offset, count))
    return 0;                   /* the caller writes the origin now */
  if (d->error)
    return d->error;
  r = start_applier (o);
  if (r < 0)
    return r;
  if (d->head != NULL && (d->bytes + count > DEFER_MAX_BYTES ||
                         d->entries >= DEFER_MAX_ENTRIES)) {
    d->waiters++;
    pthread_cond_signal (&d->queued);
    while (d->head != NULL && !d->error &&
           (d->bytes + count > DEFER_MAX_BYTES ||
            d->entries >= DEFER_MAX_ENTRIES))
      pthread_cond_wait (&d->retired, &d->lock);
    d->waiters--;
  }
  if (d->error)
    return d->error;
  e = malloc (sizeof *e + count);
  if (e == NULL) {
    origin_message (o, COW_MSG_ERROR, "out of memory");
    return -ENOMEM;
  }
  e->next = NULL;
  e->seq = d->next_seq++;
  e->offset = offset;
  e->count = count;
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

  if (d->started) {
    pthread_mutex_lock (&d->lock);
    drain_locked (d);
    d->stop = true;
    pthread_cond_signal (&d->queued);
    pthread_mutex_unlock (&d->lock);
    pthread_join (d->thread, NULL);
  }
  /* What a failed batch left is lost; its error went to the flushes. */
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
