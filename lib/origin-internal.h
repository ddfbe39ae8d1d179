/* origin-internal.h: struct cow_origin, shared by the files of origin
 * mode: origin.c (the origin as a block device), origin-copy.c (copy
 * before write) and origin-commit.c (the stores' commits, run side by
 * side).  Not for plugin/ or the tool.
 *
 * Locks, outermost first:
 *   chunk locks      each store's, taken as sets (chunk-lock.h), store by
 *                    store in index order; held from the copy until the
 *                    origin write is issued, or queued (origin-defer.c).
 *   defer.lock       the queue of deferred origin writes (origin-defer.c).
 *   c->lock          one committer's request counters (origin-commit.c).
 *   the stores' own locks (store-internal.h).
 */
#ifndef SNAPCOW_ORIGIN_INTERNAL_H
#define SNAPCOW_ORIGIN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "store-internal.h"

/* A thread that commits one store on request, so that the commits of
 * several stores run at the same time (origin-commit.c).
 */
struct committer {
  struct cow_store *s;
  pthread_mutex_t lock;
  pthread_cond_t work;          /* asked moved, or stop */
  pthread_cond_t done;          /* finished moved */
  uint64_t asked;               /* requests made */
  uint64_t finished;            /* requests covered by a finished commit */
  int result;                   /* of the latest finished commit */
  bool stop;
  bool started;
  pthread_t thread;
};

struct origin_store {
  struct cow_store *s;
  /* Held over invalidating the store, so that a writer that finds it
   * invalid waits until the header says so on disk before it skips the
   * store and changes the origin.
   */
  pthread_mutex_t inval_lock;
  _Atomic bool invalidated;     /* by us, and durable */
  /* Said once, then at debug level only. */
  _Atomic bool said_invalid;
  _Atomic bool said_failed;
  struct committer committer;   /* unused for store 0: its commit runs
                                 * in the writer's own thread */
};

/* Origin writes waiting for their copies' commit (origin-defer.c). */
#define DEFER_SLOTS_SHIFT 14
struct deferred;
struct origin_defer {
  pthread_mutex_t lock;
  pthread_cond_t queued;        /* an entry was queued, a waiter came, or
                                 * stop */
  pthread_cond_t retired;       /* entries were written, or a commit
                                 * failed */
  struct deferred *head, *tail; /* FIFO, oldest first */
  uint64_t next_seq;            /* of the next entry queued */
  uint64_t retired_seq;         /* every entry before it is written */
  uint64_t bytes;               /* of data queued */
  _Atomic size_t entries;       /* changed under the lock; read without
                                 * it to skip the lock when it is 0 */
  unsigned waiters;             /* threads waiting for entries to go */
  int failed;                   /* sticky: the queue can never be written */
  int commit_error;             /* the last commit failed; tried again */
  uint64_t commit_failures;     /* commits failed so far */
  bool retry_asked;             /* a waiter came after the failure */
  int write_error;              /* a write into the origin failed: told
                                 * to the next flush */
  bool stop;
  bool started;
  pthread_t thread;
  bool *want;                   /* the applier's: stores to commit */
  /* Queued entries per 64K granule of the origin, hashed. */
  uint16_t slots[1u << DEFER_SLOTS_SHIFT];
};

struct cow_origin {
  struct cow_io *io;
  uint64_t size;                /* bytes */
  size_t nr_stores;
  struct origin_store *st;
  bool fail_write_when_full;
  uint32_t max_chunk_bytes;     /* the largest chunk of any store */
  cow_msg_fn message;
  void *message_opaque;
  const char *origin_name;
  pthread_mutex_t start_lock;   /* starting the committer threads */
  bool committers_started;
  bool defer_writes;            /* cow_origin_params.defer_writes */
  struct origin_defer defer;
};

/* origin.c */
extern void origin_message (const struct cow_origin *o,
                            enum cow_msg_level level, const char *fs, ...)
  __attribute__ ((format (printf, 3, 4)));
extern int origin_io_error (const struct cow_origin *o, int r,
                            const char *what, uint64_t offset);

/* origin-copy.c.  Before [offset, offset+count) of the origin changes:
 * take every store's chunk locks over the range (held in *hold), copy
 * each chunk that a store has no exception for, and make every record
 * that maps a chunk of the range durable.  On success the caller
 * changes the origin, then calls origin_unhold.  On failure nothing is
 * held.  The range lies in one segment (ORIGIN_SEGMENT below).
 */
#define ORIGIN_SEGMENT (4u << 20)
struct origin_hold {
  struct chunk_lock_set *sets;  /* one per store */
  bool *held;                   /* sets[i] is locked */
  bool *want;                   /* store i must commit (origin_copy) */
};
extern int origin_hold_init (const struct cow_origin *o,
                             struct origin_hold *hold);
extern void origin_hold_free (struct origin_hold *hold);
extern int origin_prepare (struct cow_origin *o, uint64_t offset,
                           uint64_t count, struct origin_hold *hold);
/* The copying half of origin_prepare: on success the locks are held and
 * hold->want[i] says whether store i must commit before the origin may
 * change.
 */
extern int origin_copy (struct cow_origin *o, uint64_t offset,
                        uint64_t count, struct origin_hold *hold);
/* Commit the stores flagged in want[] (origin_commit_stores), then
 * check that none has failed meanwhile: a store that failed must not
 * see the origin change.
 */
extern int origin_commit_for_change (struct cow_origin *o,
                                     const bool *want);
extern void origin_unhold (struct cow_origin *o, struct origin_hold *hold);
/* True if some usable store has no exception for a chunk of the range
 * (lock-free; for the fast-zero check).
 */
extern bool origin_needs_copy (struct cow_origin *o, uint64_t offset,
                               uint64_t count);
/* Whether origin writes use store i: 1 yes; 0 no, it is invalidated
 * (on disk: said once); -EIO when it has failed, or could not be
 * invalidated, so the origin must not change.
 */
extern int origin_store_usable (struct cow_origin *o, size_t i);
/* A store could not take a copy for lack of room: the on-full policy.
 * Returns 0 (the store is invalidated on disk, the write goes on),
 * -ENOSPC (fail the write), or -EIO (the store could not be
 * invalidated).
 */
extern int origin_store_full (struct cow_origin *o, size_t i);

/* origin-commit.c */
extern void committer_init (struct committer *c, struct cow_store *s);
extern void committer_stop (struct committer *c);
/* Commit the stores flagged in want[] side by side and return the
 * first error (after the on-full policy for -ENOSPC).
 */
extern int origin_commit_stores (struct cow_origin *o, const bool *want);
/* False if a record of s might not be durable yet (pending, or in a
 * commit that has not finished): the caller must commit before the
 * origin write.
 */
extern bool store_all_durable (struct cow_store *s);

/* origin-defer.c */
extern void defer_init (struct origin_defer *d);
/* Write every queued entry into the origin (unless it never can be),
 * then stop the applier.
 */
extern void defer_stop (struct cow_origin *o);
/* Called after origin_copy with the locks held.  If need_commit, or if
 * the range overlaps a queued write, queue the write (copying buf) and
 * set *deferred; else leave the write to the caller.  Returns the
 * error that keeps the queue from the origin, or that of a commit that
 * failed while the writer waited for room, or -ENOMEM.
 */
extern int defer_write (struct cow_origin *o, const char *buf,
                        uint32_t count, uint64_t offset, bool need_commit,
                        bool *deferred);
/* Wait until every write queued so far is in the origin, and return
 * (once) the error of a write into the origin that failed meanwhile.
 */
extern int defer_flush (struct cow_origin *o);
/* Wait until the queued writes that overlap the range are in the
 * origin: 0 at once if none does.
 */
extern int defer_drain_overlap (struct cow_origin *o, uint64_t offset,
                                uint64_t count);
/* Read the origin with the queued writes over it. */
extern int defer_pread (struct cow_origin *o, char *buf, uint32_t count,
                        uint64_t offset);

#endif /* SNAPCOW_ORIGIN_INTERNAL_H */
