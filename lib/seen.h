/* seen.h: the new_chunk of every record with where it was seen, so that
 * two records sharing a data chunk can be found (load.c stops at the
 * first pair, check.c reports them all) and so can the chunks that no
 * record uses (check.c).
 */
#ifndef SNAPCOW_SEEN_H
#define SNAPCOW_SEEN_H

#include <stdint.h>

#include "snapcow.h"

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

#endif /* SNAPCOW_SEEN_H */
