/* record-rules.h: the rules each record of a store must keep, and the
 * one message for each rule it breaks.  Two walkers of the metadata
 * areas share them: load.c refuses the store at the first broken rule,
 * check.c reports every one.
 */
#ifndef SNAPCOW_RECORD_RULES_H
#define SNAPCOW_RECORD_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "seen.h"
#include "table.h"

/* What a record is checked against. */
struct record_geometry {
  uint32_t E;                   /* records per area */
  uint64_t chunk_bytes;         /* a power of two */
  chunk_t dev_chunks;           /* whole chunks in the COW device */
  chunk_t origin_chunks;        /* the origin's, the last one may be
                                 * partial; 0 if no origin was given */
};

/* The broken rules of one record, as a set of bits, in the order
 * they are reported.
 */
enum record_fault {
  RECORD_NEW_IN_METADATA = 1 << 0, /* new_chunk is the header or an area */
  RECORD_NEW_PAST_END    = 1 << 1, /* new_chunk is past the COW device */
  RECORD_OLD_PAST_ORIGIN = 1 << 2, /* old_chunk is past the origin */
  RECORD_OLD_PAST_LIMIT  = 1 << 3, /* no origin given, and old_chunk's
                                    * chunk does not lie below 2^64 bytes */
  RECORD_OLD_DUPLICATE   = 1 << 4, /* an earlier record has old_chunk */
};

/* A record with one of these has no data chunk of its own. */
#define RECORD_NEW_FAULTS (RECORD_NEW_IN_METADATA | RECORD_NEW_PAST_END)

/* The most chunks an origin can have.  A chunk must lie wholly below
 * 2^64 bytes, the largest size a device (and an NBD export) can have:
 * old_chunk < 2^64 / chunk_bytes, so that (old_chunk + 1) * chunk_bytes
 * never wraps, nor does the table's key old_chunk + 1.  For a
 * power-of-two chunk_bytes, 2^64 / chunk_bytes is UINT64_MAX /
 * chunk_bytes + 1.
 */
static inline chunk_t
record_chunk_limit (uint64_t chunk_bytes)
{
  return UINT64_MAX / chunk_bytes + 1;
}

/* The bound old_chunk is checked against: the origin's chunks, or
 * without an origin, record_chunk_limit.  Size the table for this.
 */
extern chunk_t record_old_chunk_bound (const struct record_geometry *g);

/* The rules record e breaks that need no other record: all but
 * RECORD_OLD_DUPLICATE (0 if none).  A bulk load (table_bulk_add) takes
 * the records that break none, and leaves the duplicates to
 * table_bulk_end.
 */
extern unsigned record_geometry_faults (const struct record_geometry *g,
                                        const struct core_exception *e);

/* The rules record e breaks (0 if none): record_geometry_faults, and
 * RECORD_OLD_DUPLICATE.  t holds the records before it; if another has
 * the same old_chunk, *other is set to its new_chunk.  A record with an
 * old_chunk past the bound is not looked up, and must not be inserted
 * into t.
 */
extern unsigned record_faults (const struct record_geometry *g,
                               const struct cow_table *t,
                               const struct core_exception *e,
                               chunk_t *other);

/* The message for one fault (a single bit of what record_faults
 * returned) of record i of area, into buf.
 */
extern void record_fault_message (char *buf, size_t len,
                                  const struct record_geometry *g,
                                  uint64_t area, uint32_t i,
                                  const struct core_exception *e,
                                  enum record_fault fault, chunk_t other);

/* No two records may share a new_chunk.  With seen sorted (seen_sort),
 * the message for entry k, which repeats entry k - 1's new_chunk (see
 * seen_next_repeat).
 */
extern void record_shared_new_message (char *buf, size_t len, uint32_t E,
                                       const struct seen_list *seen,
                                       uint64_t k);

#endif /* SNAPCOW_RECORD_RULES_H */
