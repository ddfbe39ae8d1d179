/* chunk-lock.c: the striped per-chunk locks and sets of them
 * (chunk-lock.h).
 */
#include <config.h>

#include <string.h>

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

void
chunk_lock_set_range (struct chunk_lock_set *set, uint64_t first,
                      uint64_t last)
{
  if (last - first >= NR_CHUNK_LOCKS - 1) {
    memset (set->bits, 0xff, sizeof set->bits);
    return;
  }
  memset (set->bits, 0, sizeof set->bits);
  for (uint64_t c = first; c <= last; c++) {
    unsigned i = c % NR_CHUNK_LOCKS;

    set->bits[i / 64] |= UINT64_C (1) << (i % 64);
  }
}

void
chunk_lock_set_lock (struct chunk_locks *l, const struct chunk_lock_set *set)
{
  for (unsigned w = 0; w < NR_CHUNK_LOCKS / 64; w++)
    for (uint64_t b = set->bits[w]; b; b &= b - 1)
      pthread_mutex_lock (&l->m[w * 64 + __builtin_ctzll (b)]);
}

void
chunk_lock_set_unlock (struct chunk_locks *l,
                       const struct chunk_lock_set *set)
{
  for (unsigned w = 0; w < NR_CHUNK_LOCKS / 64; w++)
    for (uint64_t b = set->bits[w]; b; b &= b - 1)
      pthread_mutex_unlock (&l->m[w * 64 + __builtin_ctzll (b)]);
}
