/* seen.c: the list of new_chunks seen in a store's records (seen.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "format.h"
#include "seen.h"

int
seen_bits_init (struct seen_bits *b, chunk_t chunks)
{
  b->nleaves = (chunks >> SEEN_LEAF_SHIFT) + 1;
  b->leaves = calloc (b->nleaves, sizeof *b->leaves);
  return b->leaves ? 0 : -ENOMEM;
}

int
seen_bits_mark (struct seen_bits *b, chunk_t c)
{
  uint64_t **leaf = &b->leaves[c >> SEEN_LEAF_SHIFT];
  uint64_t i = c & (SEEN_LEAF_CHUNKS - 1), bit = UINT64_C (1) << (i % 64);
  bool was;

  if (*leaf == NULL) {
    *leaf = calloc (SEEN_LEAF_CHUNKS / 64, sizeof **leaf);
    if (*leaf == NULL)
      return -ENOMEM;
  }
  was = (*leaf)[i / 64] & bit;
  (*leaf)[i / 64] |= bit;
  return was;
}

bool
seen_bits_test (const struct seen_bits *b, chunk_t c)
{
  const uint64_t *leaf = b->leaves[c >> SEEN_LEAF_SHIFT];
  uint64_t i = c & (SEEN_LEAF_CHUNKS - 1);

  return leaf && leaf[i / 64] >> (i % 64) & 1;
}

void
seen_bits_free (struct seen_bits *b)
{
  for (uint64_t k = 0; b->leaves && k < b->nleaves; k++)
    free (b->leaves[k]);
  free (b->leaves);
  *b = (struct seen_bits) { NULL };
}

static bool
among (chunk_t c, const chunk_t *which, size_t n)
{
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (which[mid] == c)
      return true;
    if (which[mid] < c)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

int
seen_collect (struct cow_io *io, uint64_t chunk_bytes, uint32_t E,
              uint64_t last_area, const chunk_t *which, size_t n,
              struct seen_list *l)
{
  uint8_t *buf = malloc (chunk_bytes);
  int r = 0;

  if (buf == NULL)
    return -ENOMEM;
  for (uint64_t area = 0; area <= last_area && r == 0; area++) {
    r = cow_io_pread (io, buf, chunk_bytes,
                      cow_area_location (E, area) * chunk_bytes);
    for (uint32_t i = 0; i < E && r == 0; i++) {
      struct core_exception e;

      cow_decode_exception (buf, i, &e);
      if (e.new_chunk == 0)
        break;
      if (among (e.new_chunk, which, n))
        r = seen_add (l, e.new_chunk, area * E + i);
    }
  }
  free (buf);
  return r;
}

int
seen_add (struct seen_list *l, chunk_t new_chunk, uint64_t seq)
{
  if (l->n == l->cap) {
    uint64_t cap = l->cap ? 2 * l->cap : 1024;
    struct seen *v = realloc (l->v, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = (struct seen) { .new_chunk = new_chunk, .seq = seq };
  return 0;
}

static int
compare_seen (const void *a, const void *b)
{
  const struct seen *x = a, *y = b;

  if (x->new_chunk != y->new_chunk)
    return x->new_chunk < y->new_chunk ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void
seen_sort (struct seen_list *l)
{
  if (l->n > 1)                 /* and l->v may be NULL */
    qsort (l->v, l->n, sizeof *l->v, compare_seen);
}

uint64_t
seen_next_repeat (const struct seen_list *l, uint64_t from)
{
  for (uint64_t k = from; k < l->n; k++)
    if (l->v[k].new_chunk == l->v[k - 1].new_chunk)
      return k;
  return l->n;
}

void
seen_free (struct seen_list *l)
{
  free (l->v);
  *l = (struct seen_list) { NULL };
}
