/* merge-online.c: the online merge, the kernel's snapshot-merge target:
 * a background thread folds the store into its origin with merge.c's
 * steps while the store serves the snapshot's view.
 *
 * The view during the merge:
 *   read    a chunk with an exception reads its COW chunk (lock-free
 *           lookup: once copied, the origin holds the same bytes, so a
 *           lookup that races with the commit dropping the record reads
 *           the same data from either side); any other chunk reads the
 *           origin.
 *   write   a chunk without an exception is written straight to the
 *           origin: no exception is ever added during a merge (nor by
 *           the kernel's snapshot-merge), so "no exception" is final.
 *           A chunk with one is written in the store, under its chunk
 *           lock with the lookup repeated.  The merge holds the chunk
 *           locks of every run of a step (one set, each index once, in
 *           ascending order, as origin-copy.c takes them) from before
 *           its copy until the records are committed and dropped from
 *           the table.  So a write to a chunk being merged waits for
 *           one step at most, then finds no record and goes to the
 *           origin; it can never land in the store after the copy read
 *           the chunk, where the merge would lose it.
 *   flush   syncs the origin and the store's data; no record is added,
 *           so there is nothing to commit.
 *
 * A step prepares runs (last record first) until `step_bytes` of data,
 * takes their locks, copies them, and commits (merge.c).  A single run
 * is never split, so one step may be longer than step_bytes: at most
 * one area's records (E chunks).
 *
 * When no record is left, merge.c's finish punches the store's data
 * chunks.  A reader that looked a record up before the last commit may
 * still be reading its COW chunk (or asking for its block status), so
 * readers hold view_lock shared until the merge is done, and the last
 * step holds it exclusive.
 *
 * A step that fails (an I/O error) stops the merge: said once ("Merge
 * failed", the kernel's status word), and from then on the writes that
 * would need the merge (to chunks that still have a record) fail with
 * EIO; reads and writes elsewhere go on.  What is on disk is a good,
 * half-merged store: a new cow_store_open and merge finishes it.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

struct cow_merging {
  struct cow_store *s;
  uint64_t step_bytes;
  struct cow_merge *m;          /* from the first step */
  uint64_t records_at_start;
  _Atomic uint64_t bytes;
  _Atomic int state;            /* enum cow_merging_state */
  _Atomic int error;            /* negative errno once FAILED */

  /* Shared by readers of the store's data until DONE; exclusive over
   * the last step (see the top).
   */
  pthread_rwlock_t view_lock;

  pthread_mutex_t lock;         /* thread state */
  pthread_cond_t ended;
  pthread_t thread;
  bool started, running, stop;
};

int
cow_merging_open (struct cow_store *s, const struct cow_merging_params *p,
                  struct cow_merging **mgp)
{
  struct cow_merging *mg;
  pthread_rwlockattr_t attr;
  struct cow_usage u;

  *mgp = NULL;
  if (s->origin == NULL)
    return store_error (s, EINVAL, "cannot merge without the origin");
  if (!s->valid)
    return store_error (s, EINVAL, "the store is invalidated: there is no "
                        "snapshot to merge");
  /* Opened read-only, a new store would be initialised by the first
   * write: a merge would make a store only to empty it.
   */
  if (s->unformatted)
    return store_error (s, EINVAL, "the store is new (magic 0): there is "
                        "no snapshot to merge");
  mg = calloc (1, sizeof *mg);
  if (mg == NULL)
    return store_error (s, ENOMEM, "out of memory");
  mg->s = s;
  mg->step_bytes = p && p->step_bytes ? p->step_bytes : COW_MERGING_STEP;
  cow_store_usage (s, &u);
  mg->records_at_start = u.records;
  mg->state = COW_MERGING_WAITING;
  /* Writer preference: readers come all the time during a merge, and
   * the last step must not wait for a gap between them.
   */
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init (&mg->view_lock, &attr);
  pthread_rwlockattr_destroy (&attr);
  pthread_mutex_init (&mg->lock, NULL);
  pthread_cond_init (&mg->ended, NULL);
  *mgp = mg;
  return 0;
}

static int
add_bytes (void *opaque, uint64_t bytes)
{
  struct cow_merging *mg = opaque;

  mg->bytes += bytes;
  return 0;
}

/* Add the lock indices of a run to set. */
static void
add_run_locks (struct chunk_lock_set *set, const struct cow_merge_run *run)
{
  struct chunk_lock_set one;

  chunk_lock_set_range (&one, run->old_chunk,
                        run->old_chunk + run->chunks - 1);
  for (size_t w = 0; w < sizeof set->bits / sizeof set->bits[0]; w++)
    set->bits[w] |= one.bits[w];
}

static int
fail (struct cow_merging *mg, int r)
{
  int expected = COW_MERGING_RUNNING;

  mg->error = r;
  if (atomic_compare_exchange_strong (&mg->state, &expected,
                                      COW_MERGING_FAILED))
    store_message (mg->s, COW_MSG_ERROR, "Merge failed: %s; the snapshot "
                   "is still served, but writes to its chunks not yet "
                   "merged fail; restart to resume the merge",
                   cow_strerror (-r));
  return r;
}

/* The last step: nothing left to copy; merge.c releases the data chunks
 * (its finish), with no reader left in them.
 */
static int
last_step (struct cow_merging *mg)
{
  int64_t r;

  pthread_rwlock_wrlock (&mg->view_lock);
  r = cow_merge_step (mg->m, 1, NULL, NULL);
  if (r == 0)
    mg->state = COW_MERGING_DONE;
  pthread_rwlock_unlock (&mg->view_lock);
  if (r != 0)
    return fail (mg, r < 0 ? (int) r : -EIO);
  store_message (mg->s, COW_MSG_DEBUG, "merge done: %" PRIu64 " records, %"
                 PRIu64 " bytes", mg->records_at_start,
                 (uint64_t) mg->bytes);
  return 0;
}

int
cow_merging_step (struct cow_merging *mg)
{
  struct cow_store *s = mg->s;
  struct cow_merge_run run;
  struct chunk_lock_set set;
  uint64_t bytes = 0, n_runs = 0;
  CLEANUP_FREE struct cow_merge_run *runs = NULL;
  size_t cap = 0;
  bool last = false;
  int r = 0;

  switch (atomic_load (&mg->state)) {
  case COW_MERGING_DONE:
    return 0;
  case COW_MERGING_FAILED:
    return mg->error;
  case COW_MERGING_WAITING:
    mg->state = COW_MERGING_RUNNING;
    break;
  }
  if (mg->m == NULL) {
    r = cow_merge_begin (s, &mg->m);
    if (r < 0)
      return fail (mg, r);
  }

  /* Prepare the step's runs; their records are still in the table, so
   * the view does not change.
   */
  while (bytes < mg->step_bytes) {
    r = cow_merge_prepare (mg->m, &run);
    if (r < 0)
      return fail (mg, r);
    if (r == 0) {
      last = true;
      break;
    }
    if (n_runs == cap) {
      size_t c = cap ? 2 * cap : 16;
      struct cow_merge_run *v = realloc (runs, c * sizeof *v);

      if (v == NULL)
        return fail (mg, store_error (s, ENOMEM, "out of memory"));
      runs = v;
      cap = c;
    }
    runs[n_runs++] = run;
    bytes += run.chunks << s->chunk_shift;
  }

  if (n_runs > 0) {
    memset (&set, 0, sizeof set);
    for (size_t i = 0; i < n_runs; i++)
      add_run_locks (&set, &runs[i]);
    chunk_lock_set_lock (&s->chunk_locks, &set);
    for (size_t i = 0; r >= 0 && i < n_runs; i++)
      r = cow_merge_copy (mg->m, &runs[i], add_bytes, mg);
    if (r >= 0)
      r = cow_merge_commit (mg->m);
    chunk_lock_set_unlock (&s->chunk_locks, &set);
    if (r < 0)
      return fail (mg, r);
  }
  if (last)
    return last_step (mg) < 0 ? mg->error : 0;
  return 1;
}

static void *
merge_thread (void *arg)
{
  struct cow_merging *mg = arg;
  bool stop = false;

  while (!stop) {
    if (cow_merging_step (mg) <= 0)
      break;
    pthread_mutex_lock (&mg->lock);
    stop = mg->stop;
    pthread_mutex_unlock (&mg->lock);
  }
  pthread_mutex_lock (&mg->lock);
  mg->running = false;
  pthread_cond_broadcast (&mg->ended);
  pthread_mutex_unlock (&mg->lock);
  return NULL;
}

int
cow_merging_start (struct cow_merging *mg)
{
  int err;

  if (mg->s->readonly)
    return store_error (mg->s, EROFS, "cannot merge a store opened "
                        "read-only");
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&mg->lock);
  if (mg->started)
    return 0;
  mg->running = true;
  /* Running from now on, as the description says, though the thread
   * has not taken its first step yet.
   */
  {
    int expected = COW_MERGING_WAITING;
    atomic_compare_exchange_strong (&mg->state, &expected,
                                    COW_MERGING_RUNNING);
  }
  err = pthread_create (&mg->thread, NULL, merge_thread, mg);
  if (err) {
    mg->running = false;
    mg->state = COW_MERGING_WAITING;
    return store_error (mg->s, err, "cannot start the merge thread: %s",
                        cow_strerror (err));
  }
  mg->started = true;
  return 0;
}

int
cow_merging_wait (struct cow_merging *mg)
{
  pthread_mutex_lock (&mg->lock);
  while (mg->running)
    pthread_cond_wait (&mg->ended, &mg->lock);
  pthread_mutex_unlock (&mg->lock);
  return mg->state == COW_MERGING_FAILED ? mg->error : 0;
}

void
cow_merging_close (struct cow_merging *mg)
{
  bool started;

  if (mg == NULL)
    return;
  pthread_mutex_lock (&mg->lock);
  mg->stop = true;
  started = mg->started;
  pthread_mutex_unlock (&mg->lock);
  if (started)
    pthread_join (mg->thread, NULL);
  /* Runs prepared and not committed stay recorded: a later merge
   * copies them again.
   */
  cow_merge_end (mg->m);
  pthread_rwlock_destroy (&mg->view_lock);
  pthread_mutex_destroy (&mg->lock);
  pthread_cond_destroy (&mg->ended);
  free (mg);
}

void
cow_merging_get_status (struct cow_merging *mg, struct cow_merging_status *st)
{
  struct cow_usage u;

  cow_store_usage (mg->s, &u);
  st->state = mg->state;
  st->error = mg->error;
  st->records_at_start = mg->records_at_start;
  st->records_left = u.records;
  st->bytes = mg->bytes;
  cow_usage_status (&u, st->usage, sizeof st->usage);
}

/* The I/O of the view. */

/* The part of a request within one chunk, and where it lives now. */
struct piece {
  chunk_t chunk;
  uint64_t n;                   /* bytes */
  bool mapped;
  chunk_t nc;                   /* the COW chunk, if mapped */
  uint64_t at;                  /* byte offset in the store or origin */
};

static struct piece
piece_at (const struct cow_store *s, uint64_t offset, uint64_t count)
{
  uint64_t in = offset & (s->chunk_bytes - 1);
  struct piece p = { .chunk = offset >> s->chunk_shift };

  p.n = s->chunk_bytes - in < count ? s->chunk_bytes - in : count;
  p.mapped = cow_store_lookup (s, p.chunk, &p.nc);
  p.at = p.mapped ? chunk_offset (s, p.nc) + in : offset;
  return p;
}

/* The run of pieces from offset that live alike: unmapped, or mapped
 * to consecutive COW chunks.  One backend call serves it.
 */
static struct piece
run_at (const struct cow_store *s, uint64_t offset, uint64_t count)
{
  struct piece p = piece_at (s, offset, count);

  while (p.n < count) {
    struct piece q = piece_at (s, offset + p.n, count - p.n);

    if (q.mapped != p.mapped ||
        (p.mapped && q.nc != p.nc + (q.chunk - p.chunk)))
      break;
    p.n += q.n;
  }
  return p;
}

static bool
merging (const struct cow_merging *mg)
{
  return mg->state != COW_MERGING_DONE;
}

int
cow_merging_pread (struct cow_merging *mg, void *buf, uint32_t count,
                   uint64_t offset)
{
  struct cow_store *s = mg->s;
  bool shared = merging (mg);
  char *p = buf;
  int r = store_check_range (s, count, offset);

  if (shared)
    pthread_rwlock_rdlock (&mg->view_lock);
  while (r == 0 && count > 0) {
    struct piece run = run_at (s, offset, count);
    struct cow_io *io = run.mapped ? s->cow : s->origin;

    r = cow_io_pread (io, p, run.n, run.at);
    if (r < 0)
      r = store_io_error (s, r, "cannot read", io, run.at);
    p += run.n;
    offset += run.n;
    count -= run.n;
  }
  if (shared)
    pthread_rwlock_unlock (&mg->view_lock);
  return r;
}

/* What a write puts in the range: the caller's bytes or zeroes. */
struct fill {
  const char *buf;              /* NULL: zeroes */
  bool fast;                    /* zero only where it can punch */
};

static int
write_io (struct cow_store *s, struct cow_io *io, const struct fill *f,
          uint64_t n, uint64_t at)
{
  int r = 0;

  if (f->buf)
    r = cow_io_pwrite (io, f->buf, n, at);
  else if (io->ops->punch)
    r = io->ops->punch (io, at, n);
  else if (f->fast)
    return -ENOTSUP;
  else {
    for (uint64_t done = 0; r == 0 && done < n; done += s->chunk_bytes) {
      uint64_t len = n - done < s->chunk_bytes ? n - done : s->chunk_bytes;

      r = cow_io_pwrite (io, s->zero_chunk, len, at + done);
    }
  }
  if (r < 0)
    return store_io_error (s, r, f->buf ? "cannot write" : "cannot zero",
                           io, at);
  return 0;
}

/* A chunk that had a record at the lookup: under its lock, where the
 * merge cannot be between its copy and its commit, it still has one
 * (write the store) or the merge committed it (write the origin).
 */
static int
write_mapped (struct cow_merging *mg, uint64_t offset, uint64_t n,
              const struct fill *f)
{
  struct cow_store *s = mg->s;
  chunk_t chunk = offset >> s->chunk_shift;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (chunk_lock_for (&s->chunk_locks, chunk));
  struct piece p = piece_at (s, offset, n);

  if (!p.mapped)
    return write_io (s, s->origin, f, n, offset);
  if (mg->state == COW_MERGING_FAILED)
    return store_error (s, EIO, "the merge failed: chunk %" PRIu64
                        " is not merged and cannot be written", chunk);
  if (s->failed)
    return store_failed_error (s, false);
  return write_io (s, s->cow, f, n, p.at);
}

static int
change (struct cow_merging *mg, const struct fill *fill, uint32_t count,
        uint64_t offset, bool fua)
{
  struct cow_store *s = mg->s;
  struct fill f = *fill;
  int r = store_check_range (s, count, offset);

  if (r == 0 && s->readonly)
    r = store_error (s, EROFS, "the snapshot is read-only");
  if (r == 0 && f.fast && s->origin->ops->punch == NULL)
    return -ENOTSUP;
  while (r == 0 && count > 0) {
    struct piece run = run_at (s, offset, count);

    if (run.mapped) {
      /* Chunk by chunk: one chunk lock at a time. */
      run = piece_at (s, offset, count);
      r = write_mapped (mg, offset, run.n, &f);
    }
    else
      r = write_io (s, s->origin, &f, run.n, offset);
    if (f.buf)
      f.buf += run.n;
    offset += run.n;
    count -= run.n;
  }
  if (r == 0 && fua)
    r = cow_merging_flush (mg);
  return r;
}

int
cow_merging_pwrite (struct cow_merging *mg, const void *buf, uint32_t count,
                    uint64_t offset, bool fua)
{
  struct fill f = { .buf = buf };

  return change (mg, &f, count, offset, fua);
}

int
cow_merging_zero (struct cow_merging *mg, uint32_t count, uint64_t offset,
                  bool fua, bool fast)
{
  struct fill f = { .fast = fast };

  /* A store without punch writes zeroes: not fast. */
  if (fast && mg->s->cow->ops->punch == NULL && mg->state != COW_MERGING_DONE)
    return -ENOTSUP;
  return change (mg, &f, count, offset, fua);
}

int
cow_merging_trim (struct cow_merging *mg, uint32_t count, uint64_t offset,
                  bool fua)
{
  int r = store_check_range (mg->s, count, offset);

  if (r == 0 && mg->s->readonly)
    r = store_error (mg->s, EROFS, "the snapshot is read-only");
  /* Nothing to give back: see snapcow.h. */
  if (r == 0 && fua)
    r = cow_merging_flush (mg);
  return r;
}

int
cow_merging_flush (struct cow_merging *mg)
{
  struct cow_store *s = mg->s;
  int r;

  if (s->readonly)
    return 0;
  r = cow_io_sync (s->origin);
  if (r < 0)
    return origin_error (s, -r, "cannot sync the origin: %s",
                         cow_strerror (-r));
  r = cow_io_sync (s->cow);
  if (r < 0)
    return store_error (s, -r, "cannot sync the COW store: %s",
                        cow_strerror (-r));
  return 0;
}

int
cow_merging_cache (struct cow_merging *mg, uint32_t count, uint64_t offset)
{
  struct cow_store *s = mg->s;
  int r = store_check_range (s, count, offset);

  while (r == 0 && count > 0) {
    struct piece run = run_at (s, offset, count);
    struct cow_io *io = run.mapped ? s->cow : s->origin;

    if (io->ops->cache) {
      r = io->ops->cache (io, run.at, run.n);
      if (r < 0)
        r = store_io_error (s, r, "cannot prefetch", io, run.at);
    }
    offset += run.n;
    count -= run.n;
  }
  return r;
}

/* At most this many extents per call: a client asks again from where
 * the answer ends.
 */
#define MAX_EXTENTS 1024

int
cow_merging_extents (struct cow_merging *mg, uint32_t count, uint64_t offset,
                     cow_extent_fn add, void *opaque)
{
  struct cow_store *s = mg->s;
  bool shared = merging (mg);
  int r = store_check_range (s, count, offset);

  /* As a read: the last step must not punch a COW chunk between the
   * lookup and its block status, or its data would show as a hole.
   */
  if (shared)
    pthread_rwlock_rdlock (&mg->view_lock);
  for (unsigned k = 0; r == 0 && count > 0 && k < MAX_EXTENTS; k++) {
    struct piece run = run_at (s, offset, count);
    struct cow_io *io = run.mapped ? s->cow : s->origin;
    uint64_t len = run.n;
    bool hole = false;

    if (io->ops->extent) {
      r = io->ops->extent (io, run.at, run.n, &len, &hole);
      if (r < 0) {
        /* No block status is no error: everything is data. */
        len = run.n;
        hole = false;
        r = 0;
      }
    }
    r = add (opaque, offset, len, hole);
    offset += len;
    count -= len;
  }
  if (shared)
    pthread_rwlock_unlock (&mg->view_lock);
  return r;
}
