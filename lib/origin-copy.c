/* origin-copy.c: copy before write, for origin mode (the kernel's
 * snapshot-origin).
 *
 * Before a range of the origin changes, every usable store gets a copy
 * of each chunk of the range that it has no exception for, and every
 * record that maps a chunk of the range is made durable.  Only then may
 * the origin change: no crash can leave a snapshot that shows new
 * origin data.
 *
 * Locking.  A store's chunk locks over the range are held from the
 * lookup to the origin write (origin_unhold), so that
 *   - concurrent origin writers to one chunk wait for the single copy;
 *   - a snapshot writer, which copies a chunk under its lock, and a
 *     snapshot read from the origin, which holds the lock over lookup
 *     and read (snapshot.c), never see the origin change under them.
 * A store whose chunks are all mapped already needs no lock: an
 * exception never goes away, and its chunks never read the origin.
 * The locks of all stores are taken store by store, in ascending order
 * within each (chunk-lock.h), so two origin writers never deadlock.
 *
 * Durability of records we did not add.  A chunk mapped by a snapshot
 * write (or by another origin writer that has not finished its commit)
 * may have its record only in memory: if the origin changed and the
 * machine then crashed, the record would be lost and the snapshot read
 * the new origin data.  So a store with any record that is not known to
 * be durable is committed too (store_all_durable): coarse, but the
 * group commit makes it cheap, and a store where nothing is pending
 * costs nothing.
 *
 * The origin data is read once, over the envelope of the chunks that
 * any store needs (chunk sizes may differ), and written to each store
 * in runs: chunks consecutive in both the origin and the store go out
 * in one write.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "origin-internal.h"

int
origin_store_usable (struct cow_origin *o, size_t i)
{
  struct origin_store *st = &o->st[i];
  struct cow_store *s = st->s;
  bool invalidated;

  if (s->failed) {
    if (atomic_exchange (&st->said_failed, true))
      store_message (s, COW_MSG_DEBUG, "the store has failed: origin "
                     "write refused");
    else
      store_error (s, EIO, "the store has failed after an I/O error: "
                   "origin writes fail from now on, so that the origin "
                   "never changes under a snapshot that cannot keep its "
                   "copy");
    return -EIO;
  }
  if (s->valid)
    return 1;
  /* Wait for an invalidation under way to reach the disk. */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&st->inval_lock);
    invalidated = st->invalidated;
  }
  if (!invalidated)
    return store_error (s, EIO, "the store could not be invalidated: "
                        "origin writes fail, so that the origin never "
                        "changes under a snapshot that looks valid");
  if (!atomic_exchange (&st->said_invalid, true))
    store_message (s, COW_MSG_WARNING, "the snapshot is invalidated: "
                   "origin writes no longer copy to it");
  return 0;
}

int
origin_store_full (struct cow_origin *o, size_t i)
{
  struct origin_store *st = &o->st[i];
  struct cow_store *s = st->s;
  int r = 0;

  /* The "no space" error that got us here said the policy (the
   * store's full_policy): one line for a full store, not one per write.
   */
  if (o->fail_write_when_full) {
    store_message (s, COW_MSG_DEBUG, "the store is full: origin write "
                   "refused");
    return -ENOSPC;
  }
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&st->inval_lock);
    if (!st->invalidated) {
      r = cow_store_invalidate (s);
      if (r == 0)
        st->invalidated = true;
    }
  }
  if (r < 0)
    return store_error (s, EIO, "the store is full and could not be "
                        "invalidated: origin write refused");
  /* origin_store_usable need not say it again either. */
  if (!atomic_exchange (&st->said_invalid, true))
    store_message (s, COW_MSG_DEBUG, "the store is full: snapshot "
                   "invalidated, origin writes go on");
  return 0;
}

int
origin_hold_init (const struct cow_origin *o, struct origin_hold *hold)
{
  size_t n = o->nr_stores ? o->nr_stores : 1;

  hold->sets = malloc (n * sizeof *hold->sets);
  hold->held = calloc (n, sizeof *hold->held);
  hold->want = calloc (n, sizeof *hold->want);
  if (hold->sets == NULL || hold->held == NULL || hold->want == NULL) {
    origin_hold_free (hold);
    origin_message (o, COW_MSG_ERROR, "out of memory");
    return -ENOMEM;
  }
  return 0;
}

void
origin_hold_free (struct origin_hold *hold)
{
  free (hold->sets);
  free (hold->held);
  free (hold->want);
  hold->sets = NULL;
  hold->held = NULL;
  hold->want = NULL;
}

void
origin_unhold (struct cow_origin *o, struct origin_hold *hold)
{
  for (size_t i = o->nr_stores; i-- > 0;) {
    if (hold->held[i]) {
      chunk_lock_set_unlock (&o->st[i].s->chunk_locks, &hold->sets[i]);
      hold->held[i] = false;
    }
  }
}

/* The chunks of s over [offset, offset+count), count > 0. */
static void
chunk_span (const struct cow_store *s, uint64_t offset, uint64_t count,
            chunk_t *first, chunk_t *last)
{
  *first = offset >> s->chunk_shift;
  *last = (offset + count - 1) >> s->chunk_shift;
}

static bool
all_mapped (const struct cow_store *s, chunk_t first, chunk_t last)
{
  chunk_t nc;

  for (chunk_t c = first; c <= last; c++)
    if (!cow_store_lookup (s, c, &nc))
      return false;
  return true;
}

bool
origin_needs_copy (struct cow_origin *o, uint64_t offset, uint64_t count)
{
  for (size_t i = 0; i < o->nr_stores; i++) {
    struct cow_store *s = o->st[i].s;
    chunk_t first, last;

    if (!s->valid || count == 0)
      continue;
    chunk_span (s, offset, count, &first, &last);
    if (!all_mapped (s, first, last))
      return true;
  }
  return false;
}

/* A run of chunks to copy into one store: origin chunks old..old+n-1
 * into store chunks new..new+n-1.
 */
struct copy_run {
  chunk_t old, new, n;
};

/* Write the run's origin data (in buf, which holds the origin from byte
 * lo) into the store, then add its records.
 */
static int
flush_run (struct cow_store *s, const struct copy_run *run,
           const char *buf, uint64_t lo)
{
  chunk_t lastc = run->old + run->n - 1;
  uint64_t from = chunk_offset (s, run->old);
  uint64_t len = chunk_offset (s, lastc) + chunk_valid_bytes (s, lastc) - from;
  uint64_t at = chunk_offset (s, run->new);
  int r;

  if (run->n == 0)
    return 0;
  r = store_cow_written (s, cow_io_pwrite (s->cow, buf + (from - lo), len,
                                           at), at);
  if (r < 0)
    return r;
  for (chunk_t k = 0; k < run->n; k++) {
    r = cow_store_add_exception (s, run->old + k, run->new + k);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Copy every chunk of first..last that s has no exception for, from
 * buf.  Sets *added when a record was added.  Called with the chunks'
 * locks held.
 */
static int
copy_into (struct cow_store *s, chunk_t first, chunk_t last,
           const char *buf, uint64_t lo, bool *added)
{
  struct copy_run run = { 0, 0, 0 };
  int r = 0, rf;

  for (chunk_t c = first; c <= last; c++) {
    chunk_t nc;

    if (cow_store_lookup (s, c, &nc))
      continue;
    r = cow_store_allocate (s, &nc);
    if (r < 0)
      break;
    if (run.n > 0 && c == run.old + run.n && nc == run.new + run.n) {
      run.n++;
      continue;
    }
    r = flush_run (s, &run, buf, lo);
    if (r < 0) {
      run.n = 0;
      break;
    }
    *added |= run.n > 0;
    run = (struct copy_run) { c, nc, 1 };
  }
  /* What was allocated before a failure is written and recorded still:
   * the origin has not changed, so those copies hold the true old data.
   */
  rf = flush_run (s, &run, buf, lo);
  if (rf == 0)
    *added |= run.n > 0;
  else if (r == 0)
    r = rf;
  return r;
}

/* The byte range [*lo, *hi) of the origin that the unmapped chunks of
 * the held stores cover; *lo == *hi when none.
 */
static void
envelope (struct cow_origin *o, const struct origin_hold *hold,
          uint64_t offset, uint64_t count, uint64_t *lo, uint64_t *hi)
{
  *lo = UINT64_MAX;
  *hi = 0;
  for (size_t i = 0; i < o->nr_stores; i++) {
    struct cow_store *s = o->st[i].s;
    chunk_t first, last, nc;

    if (!hold->held[i])
      continue;
    chunk_span (s, offset, count, &first, &last);
    for (chunk_t c = first; c <= last; c++) {
      if (cow_store_lookup (s, c, &nc))
        continue;
      if (chunk_offset (s, c) < *lo)
        *lo = chunk_offset (s, c);
      if (chunk_offset (s, c) + chunk_valid_bytes (s, c) > *hi)
        *hi = chunk_offset (s, c) + chunk_valid_bytes (s, c);
    }
  }
  if (*lo >= *hi)
    *lo = *hi = 0;
}

/* Copy into every held store what it lacks; want[i] is set for each
 * store that got records.
 */
static int
copy_all (struct cow_origin *o, struct origin_hold *hold, uint64_t offset,
          uint64_t count, bool *want)
{
  CLEANUP_FREE char *buf = NULL;
  uint64_t lo, hi;
  int r;

  envelope (o, hold, offset, count, &lo, &hi);
  if (lo == hi)
    return 0;
  buf = malloc (hi - lo);
  if (buf == NULL) {
    origin_message (o, COW_MSG_ERROR, "out of memory");
    return -ENOMEM;
  }
  r = cow_io_pread (o->io, buf, hi - lo, lo);
  if (r < 0)
    return origin_io_error (o, r, "cannot read", lo);

  for (size_t i = 0; i < o->nr_stores; i++) {
    struct cow_store *s = o->st[i].s;
    chunk_t first, last;

    if (!hold->held[i])
      continue;
    chunk_span (s, offset, count, &first, &last);
    r = copy_into (s, first, last, buf, lo, &want[i]);
    if (r == -ENOSPC || (r < 0 && !s->valid)) {
      r = origin_store_full (o, i);
      /* Invalidated: the copies it did take need no commit. */
      if (r == 0)
        want[i] = false;
    }
    if (r < 0)
      return r;
  }
  return 0;
}

int
origin_copy (struct cow_origin *o, uint64_t offset, uint64_t count,
             struct origin_hold *hold)
{
  bool *want = hold->want;
  int r = 0;

  memset (want, 0, o->nr_stores * sizeof *want);
  if (o->nr_stores == 0 || count == 0)
    return 0;

  /* Lock, store by store, each store that has a chunk to copy. */
  for (size_t i = 0; r == 0 && i < o->nr_stores; i++) {
    struct cow_store *s = o->st[i].s;
    chunk_t first, last;

    r = origin_store_usable (o, i);
    if (r <= 0)
      continue;
    r = 0;
    chunk_span (s, offset, count, &first, &last);
    if (all_mapped (s, first, last))
      continue;
    chunk_lock_set_range (&hold->sets[i], first, last);
    chunk_lock_set_lock (&s->chunk_locks, &hold->sets[i]);
    hold->held[i] = true;
  }

  if (r == 0)
    r = copy_all (o, hold, offset, count, want);

  /* Records that others added, and copies of ours, must be durable.  A
   * store found invalid is skipped once its header says so on disk.
   */
  for (size_t i = 0; r == 0 && i < o->nr_stores; i++) {
    int ru;

    if (want[i])
      continue;
    ru = origin_store_usable (o, i);
    if (ru < 0)
      r = ru;
    else if (ru > 0 && !store_all_durable (o->st[i].s))
      want[i] = true;
  }
  if (r < 0)
    origin_unhold (o, hold);
  return r;
}

int
origin_commit_for_change (struct cow_origin *o, const bool *want)
{
  int r = origin_commit_stores (o, want);

  for (size_t i = 0; r == 0 && i < o->nr_stores; i++)
    if (o->st[i].s->failed)
      r = origin_store_usable (o, i);
  return r;
}

int
origin_prepare (struct cow_origin *o, uint64_t offset, uint64_t count,
                struct origin_hold *hold)
{
  int r = origin_copy (o, offset, count, hold);

  if (r < 0)
    return r;
  r = origin_commit_for_change (o, hold->want);
  if (r < 0)
    origin_unhold (o, hold);
  return r;
}
