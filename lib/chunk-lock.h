/* chunk-lock.h: per-chunk locks for copy-on-write.  A fixed array of
 * mutexes indexed by a hash of old_chunk: two chunks may share a lock,
 * which costs a little waiting, never correctness.
 *
 * Order, so that nobody deadlocks:
 *   - a thread takes one chunk lock, or the locks of a range of chunks
 *     as a chunk_lock_set: each index once (two chunks of the range may
 *     share one), in ascending index order (snapshot writes, tracked
 *     snapshot reads and trims in snapshot.c; origin writes in
 *     origin-copy.c);
 *   - only an origin writer holds the locks of several stores at once:
 *     it takes their sets store by store, in the cow_origin's store
 *     order;
 *   - nobody waits for a chunk lock while holding a lock that
 *     store-internal.h lists after the chunk locks.
 * So every thread that waits for a chunk lock while holding others
 * takes them in one global order, (store, index).
 */
#ifndef SNAPCOW_CHUNK_LOCK_H
#define SNAPCOW_CHUNK_LOCK_H

#include <pthread.h>
#include <stdint.h>

#define NR_CHUNK_LOCKS 1024

struct chunk_locks {
  pthread_mutex_t m[NR_CHUNK_LOCKS];
};

extern void chunk_locks_init (struct chunk_locks *l);
extern void chunk_locks_destroy (struct chunk_locks *l);
extern pthread_mutex_t *chunk_lock_for (struct chunk_locks *l,
                                        uint64_t old_chunk);

/* The lock indices of a set of chunks, each once. */
struct chunk_lock_set {
  uint64_t bits[NR_CHUNK_LOCKS / 64];
};

/* Empty the set, then add the locks of chunks first..last (inclusive). */
extern void chunk_lock_set_range (struct chunk_lock_set *set,
                                  uint64_t first, uint64_t last);
/* Take (release) every lock of the set, in ascending index order. */
extern void chunk_lock_set_lock (struct chunk_locks *l,
                                 const struct chunk_lock_set *set);
extern void chunk_lock_set_unlock (struct chunk_locks *l,
                                   const struct chunk_lock_set *set);

#endif /* SNAPCOW_CHUNK_LOCK_H */
