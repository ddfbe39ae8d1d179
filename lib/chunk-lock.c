/* chunk-lock.c: the striped per-chunk locks (chunk-lock.h). */
#include <config.h>

#include "chunk-lock.h"

void
chunk_locks_init (struct chunk_locks *l)
{
  for (unsigned i = 0; i < NR_CHUNK_LOCKS; i++)
    pthread_mutex_init (&l->m[i], NULL);
}

void
chunk_locks_destroy (struct chunk_locks *l)
{
  for (unsigned i = 0; i < NR_CHUNK_LOCKS; i++)
    pthread_mutex_destroy (&l->m[i]);
}

pthread_mutex_t *
chunk_lock_for (struct chunk_locks *l, uint64_t old_chunk)
{
  /* Neighbouring chunks get neighbouring locks: a large sequential
   * write takes each in turn without waiting on itself.
   */
  return &l->m[old_chunk % NR_CHUNK_LOCKS];
}
