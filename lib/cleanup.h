/* cleanup.h: scope-bound cleanups with the GNU cleanup attribute:
 * CLEANUP_FREE frees a pointer, ACQUIRE_LOCK_FOR_CURRENT_SCOPE holds a
 * mutex until the end of the block.
 */
#ifndef SNAPCOW_CLEANUP_H
#define SNAPCOW_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>

static inline void
cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}
#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free)))

static inline void
cleanup_unlock (pthread_mutex_t **ptr)
{
  pthread_mutex_unlock (*ptr);
}
#define CLEANUP_CONCAT_(a, b) a##b
#define CLEANUP_CONCAT(a, b) CLEANUP_CONCAT_ (a, b)
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(mutex)                           \
  __attribute__ ((cleanup (cleanup_unlock)))                            \
  pthread_mutex_t *CLEANUP_CONCAT (scoped_lock_, __LINE__) = (mutex);   \
  pthread_mutex_lock (CLEANUP_CONCAT (scoped_lock_, __LINE__))

#endif /* SNAPCOW_CLEANUP_H */
