/* chunk-lock.h: per-chunk locks for copy-on-write.  A fixed array of
 * mutexes indexed by a hash of old_chunk: two chunks may share a lock,
 * which costs a little waiting, never correctness.  Hold one at a time.
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

#endif /* SNAPCOW_CHUNK_LOCK_H */
