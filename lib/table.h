/* table.h: the exception table, old_chunk -> new_chunk.
 *
 * Open addressing with linear probing.  Lookups take no lock: a slot is
 * published with one release store and never changes afterwards, and a
 * grown array replaces the old one with one release store.  Inserts are
 * serialised by the caller (the store's s->lock).
 *
 * Removal (a merge folding records back into the origin) leaves a
 * tombstone: the key stays and its value becomes 0, which no entry
 * has, since values are stored as new_chunk + 1.  A lookup walks past
 * it as past any other key, so lock-free readers never miss an entry
 * behind it; moving entries back instead would open that window.
 * Tombstones are dropped when the array is next rebuilt.
 */
#ifndef SNAPCOW_TABLE_H
#define SNAPCOW_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapcow.h"

struct table_array;

struct cow_table {
  struct table_array *_Atomic cur;
  struct table_array *retired;  /* replaced arrays; a lookup may still be
                                 * reading one, so they live until
                                 * table_free */
  uint64_t count;               /* entries */
  uint64_t removed;             /* tombstones in cur */
  /* Packed mode (new_bits > 0): a slot is one 64-bit word, old_chunk + 1
   * above new_bits and new_chunk + 1 below, 8 bytes per slot.  Wide mode
   * (new_bits == 0), for geometries too big to pack: two words per slot.
   */
  unsigned new_bits;
  chunk_t max_new_chunk;        /* largest storable new_chunk */
  chunk_t max_old_chunk;        /* largest storable old_chunk: the key
                                 * old_chunk + 1 must fit its bits, and
                                 * never wrap to 0, the empty slot */
};

/* Size the table for chunk numbers up to origin_chunks (old) and
 * cow_chunks (new), with room for at least `expect` entries.
 */
extern int table_init (struct cow_table *t, chunk_t origin_chunks,
                       chunk_t cow_chunks, uint64_t expect);
extern void table_free (struct cow_table *t);

extern bool table_lookup (const struct cow_table *t, chunk_t old_chunk,
                          chunk_t *new_chunk);

/* Add a mapping for an old_chunk not yet in the table.  -ENOMEM, or
 * -EOVERFLOW if new_chunk is above max_new_chunk or old_chunk above
 * max_old_chunk.  Caller serialises.
 */
extern int table_insert_locked (struct cow_table *t, chunk_t old_chunk,
                                chunk_t new_chunk);

/* Remove old_chunk's mapping; false if it had none.  Lookups racing
 * the removal see either the mapping or nothing.  Caller serialises
 * with inserts.
 */
extern bool table_remove_locked (struct cow_table *t, chunk_t old_chunk);

/* Free the retired arrays.  Only while no lookup can run (loading). */
extern void table_release_retired_unshared (struct cow_table *t);

/* For tests: the most slots a lookup of a present key looks at (1 for a
 * key in its home slot).  Walks the whole array; caller serialises.
 */
extern uint64_t table_max_probe (const struct cow_table *t);

/* Bytes of memory held, retired arrays included. */
extern uint64_t table_memory (const struct cow_table *t);

#endif /* SNAPCOW_TABLE_H */
