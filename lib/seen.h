/* seen.h: which new_chunks the records of a store use, so that two
 * records sharing a data chunk can be found (load.c stops at the first
 * pair, check.c reports them all) and so can the chunks that no record
 * uses (check.c).
 *
 * A walk of the areas marks each record's new_chunk in a bitmap, one
 * bit a chunk of the device (16 bytes a record before, and a sort).
 * Only when a chunk is marked twice does a second walk (seen_collect)
 * list the records that use the chunks concerned, with where they are,
 * for the messages.
 */
#ifndef SNAPCOW_SEEN_H
#define SNAPCOW_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "snapcow.h"

/* Two levels, so that a big device that few records use (a sparse
 * file of petabytes) costs little: leaves of SEEN_LEAF_CHUNKS bits,
 * made when a record first points into one.
 */
#define SEEN_LEAF_SHIFT 23
#define SEEN_LEAF_CHUNKS (UINT64_C (1) << SEEN_LEAF_SHIFT)

struct seen_bits {
  uint64_t **leaves;
  uint64_t nleaves;
};

/* A bitmap for chunks 0..chunks-1, all clear.  0, or -ENOMEM. */
extern int seen_bits_init (struct seen_bits *b, chunk_t chunks);
/* Mark chunk c (below chunks): 1 if it was marked already, 0 if not,
 * -ENOMEM.
 */
extern int seen_bits_mark (struct seen_bits *b, chunk_t c);
extern bool seen_bits_test (const struct seen_bits *b, chunk_t c);
extern void seen_bits_free (struct seen_bits *b);

struct seen {
  chunk_t new_chunk;
  uint64_t seq;                 /* record number over all areas */
};

struct seen_list {
  struct seen *v;
  uint64_t n, cap;
};

/* 0, or -ENOMEM. */
extern int seen_add (struct seen_list *l, chunk_t new_chunk, uint64_t seq);
/* Sort by new_chunk, then by seq. */
extern void seen_sort (struct seen_list *l);
/* After seen_sort: the first index k >= from whose new_chunk repeats
 * entry k-1's, or l->n if there is none.  from >= 1.
 */
extern uint64_t seen_next_repeat (const struct seen_list *l, uint64_t from);
extern void seen_free (struct seen_list *l);

/* Walk the records of areas 0..last_area (each to its terminator) of a
 * store with E records per area of chunk_bytes, and add to l those
 * whose new_chunk is one of which[0..n) (sorted).  0, or a negative
 * errno (from reading, or -ENOMEM).
 */
extern int seen_collect (struct cow_io *io, uint64_t chunk_bytes, uint32_t E,
                         uint64_t last_area, const chunk_t *which, size_t n,
                         struct seen_list *l);

#endif /* SNAPCOW_SEEN_H */
