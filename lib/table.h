/* table.h: the exception table, old_chunk -> new_chunk.
 *
 * An entry maps a run: RUN_MAX or fewer old chunks from old_start, all
 * in one group (the old chunks that agree above their low RUN_BITS
 * bits), to as many consecutive new chunks from new_start.  A
 * sequential writer's records, consecutive in old and new chunk alike,
 * so take one entry per RUN_MAX records (the kernel compresses them
 * too); random ones take one each.
 *
 * Open addressing with linear probing, over an array of any size (not
 * a power of two, so that a table sized from the store fits it
 * closely).  An entry's home slot is its group's base slot plus the
 * offset of old_start in the group: a lookup of chunk c walks from the
 * base of c's group, past c's own home slot, to the first empty slot.
 *
 * Lookups take no lock.  A slot is published with one release store; an
 * entry's key (old_start) never changes while it is in an array, and
 * its length and new_start change together in one atomic store (one
 * word).  Growing or shrinking a run at its end is one such store.
 * Removing a chunk from the start or middle of a run first adds an
 * entry for the chunks after it, then shrinks or kills the old entry,
 * so no lookup misses a chunk still mapped.  A removed entry is a
 * tombstone: the key stays and its value becomes 0, which no entry
 * has (values are stored as new_start + 1); lookups walk past it.
 *
 * Growing: when live entries and tombstones pass 4/5 of the slots, a
 * new array (2/5 full of the live entries) becomes the current one and
 * the old one is migrated into it a few slots per insert or removal,
 * so no writer waits for a whole rehash.  Meanwhile a lookup walks both:
 * the current array first; an entry of the old array counts unless the
 * current one holds an entry (live or a tombstone) with its key, which
 * is then its newer self.  Inserts and removals are serialised by the
 * caller (the store's s->lock).
 */
#ifndef SNAPCOW_TABLE_H
#define SNAPCOW_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "snapcow.h"

/* A run entry covers at most RUN_MAX old chunks of one group. */
#define TABLE_RUN_BITS 3
#define TABLE_RUN_MAX (1u << TABLE_RUN_BITS)

struct table_array;

struct cow_table {
  struct table_array *_Atomic cur;
  /* Being migrated into cur, or NULL.  Set before cur when a migration
   * starts, cleared when it ends: a lookup reads cur, then old.
   */
  struct table_array *_Atomic old;
  uint64_t migrated;            /* slots of old already migrated */
  uint64_t step;                /* old slots migrated per insert or
                                 * removal */
  struct table_array *retired;  /* replaced arrays; a lookup may still be
                                 * reading one, so they live until
                                 * table_free or
                                 * table_release_retired_unshared */
  uint64_t count;               /* old chunks mapped */
  uint64_t entries;             /* live entries (runs), over both arrays */
  uint64_t used;                /* slots of cur holding an entry or a
                                 * tombstone */
  uint64_t removed;             /* tombstones in cur */
  /* Packed mode (new_bits > 0): a slot is one 64-bit word, old_start + 1
   * in the high bits, then the run length - 1 in TABLE_RUN_BITS bits,
   * then new_start + 1 in new_bits: 8 bytes per slot.  Wide mode
   * (new_bits == 0), for geometries too big to pack: a key word
   * (old_start + 1) and a value word (length - 1 in the top
   * TABLE_RUN_BITS bits, new_start + 1 below).  Each array keeps the
   * layout it was made with; this is the one of new arrays.  Where the
   * bounds given to table_init cannot be packed, the table packs for
   * the COW device as it is and turns wide at the first entry that
   * does not fit (with a migration, as for growing).
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

/* Make an empty table's array hold `expect` entries without growing
 * (a loader that knows how many records are coming).  Only while no
 * lookup can run.  0 or -ENOMEM (the table is then as it was).
 */
extern int table_presize_unshared (struct cow_table *t, uint64_t expect);

/* presize.c: table_presize_unshared for the records of the store on
 * io (chunk_bytes, E records an area, dev_chunks chunks), estimated from
 * a few of its areas; buf holds one chunk (its contents are lost).
 * Failures only leave the table as it was.
 */
struct cow_io;
extern void table_presize_from_areas (struct cow_table *t, struct cow_io *io,
                                      uint64_t chunk_bytes, uint32_t E,
                                      chunk_t dev_chunks, uint8_t *buf);

/* The entries records v[0..n) take when inserted in that order into
 * an empty table: a loader's sizing estimate from a sample.
 */
extern uint64_t table_entries_for (const struct core_exception *v,
                                   size_t n);

extern bool table_lookup (const struct cow_table *t, chunk_t old_chunk,
                          chunk_t *new_chunk);

/* Start fetching the slots a lookup or insert of old_chunk walks first,
 * for a loader that knows its next keys: a big table's walks are cache
 * misses, and these then overlap.
 */
extern void table_prefetch (const struct cow_table *t, chunk_t old_chunk);

/* Add a mapping for an old_chunk not yet in the table.  -ENOMEM, or
 * -EOVERFLOW if new_chunk is above max_new_chunk or old_chunk above
 * max_old_chunk.  Caller serialises.
 */
extern int table_insert_locked (struct cow_table *t, chunk_t old_chunk,
                                chunk_t new_chunk);

/* Remove old_chunk's mapping; false if it had none.  Lookups racing
 * the removal see either the mapping or nothing, and never miss
 * another chunk.  Caller serialises with inserts.  Removing a chunk
 * from the middle of a run adds an entry: if memory for it runs out,
 * the removal still happens (the table is then allowed past its usual
 * load).
 */
extern bool table_remove_locked (struct cow_table *t, chunk_t old_chunk);

/* Finish any migration and free the retired arrays.  Only while no
 * lookup can run (loading).
 */
extern void table_release_retired_unshared (struct cow_table *t);

/* Bulk loading, for a loader that has all the records of a store at
 * once and an empty table (presized, packed): much faster than one
 * insert per record, since it never walks the table.  Records are
 * appended (table_bulk_add) into the last free slots of the array, each
 * lengthening the previous one's entry where it continues its run, as
 * an insert would; table_bulk_end then orders the entries by their home
 * slot, a bucket of homes at a time, and lays them down in that order,
 * each in the first free slot from its home: the very slots that
 * inserts in that order would have found.  No lookup may run meanwhile.
 */
#define TABLE_BULK_BITS 8
#define TABLE_BULK_BUCKETS (1u << TABLE_BULK_BITS)

struct table_bulk {
  struct cow_table *t;
  struct table_array *a;
  uint64_t base;                /* slot of the last appended entry: they
                                 * fill the array's last slots, from
                                 * its end down */
  uint64_t cap;                 /* most entries (the array's load) */
  uint64_t n;                   /* entries appended */
  uint64_t count;               /* records appended */
  uint64_t buckets[TABLE_BULK_BUCKETS];      /* entries per bucket */
};

/* Start a bulk load of the empty table t.  0, or -ENOTSUP if t is not
 * empty or not packed (then load one insert at a time).
 */
extern int table_bulk_begin (struct cow_table *t, struct table_bulk *b);
/* Append a record.  0; -ENOSPC if the array is at its load (end the
 * bulk load and insert the rest one by one); -EOVERFLOW if the record
 * does not fit the packed layout.  Duplicates are found by
 * table_bulk_end.
 */
extern int table_bulk_add (struct table_bulk *b, chunk_t old_chunk,
                           chunk_t new_chunk);
/* Lay the entries down: the table then maps the records as inserts
 * would.  0; -EEXIST if two records map one old chunk; -ENOMEM.  After
 * an error the table is empty again.
 */
extern int table_bulk_end (struct table_bulk *b);
/* Give up a bulk load before its end: the table is empty again. */
extern void table_bulk_abort (struct table_bulk *b);

/* For tests: the longest displacement of an entry, in slots from its
 * home slot to its own, plus one (1 for an entry in its home slot).
 * Walks the whole current array; caller serialises.
 */
extern uint64_t table_max_probe (const struct cow_table *t);

/* Bytes of memory held, old and retired arrays included. */
extern uint64_t table_memory (const struct cow_table *t);

#endif /* SNAPCOW_TABLE_H */
