/* seen.c: the list of new_chunks seen in a store's records (seen.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "seen.h"

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
