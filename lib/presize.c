/* presize.c: size an empty exception table for a store's records before
 * a walk of its areas loads them (load.c, check.c), so that a big store
 * neither grows the table nor rehashes on the way, and the table fits
 * the records closely.
 *
 * Areas fill in order, so the full ones are found by a binary search on
 * their last records; a few areas, read in full, say how many table
 * entries a record takes (fewer than one where runs share them).  Only
 * a guess: a store that breaks the pattern costs a growing table, never
 * a wrong one.
 */
#include <config.h>

#include <stdlib.h>

#include "format.h"
#include "io.h"
#include "table.h"

struct areas {
  struct cow_io *io;
  uint64_t chunk_bytes;
  uint32_t E;
  chunk_t dev_chunks;
};

/* Whether area a is full (its last record is in use); false past the
 * end of the device or where it cannot be read.
 */
static bool
area_full (const struct areas *g, uint64_t a)
{
  chunk_t loc = cow_area_location (g->E, a);
  uint8_t rec[sizeof (struct disk_exception)];
  struct core_exception e;

  if (loc >= g->dev_chunks ||
      cow_io_pread (g->io, rec, sizeof rec, loc * g->chunk_bytes
                    + (uint64_t) (g->E - 1) * sizeof rec) < 0)
    return false;
  cow_decode_exception (rec, 0, &e);
  return e.new_chunk != 0;
}

/* How many areas are full, by a doubling then a binary search. */
static uint64_t
full_areas (const struct areas *g)
{
  uint64_t lo = 0, hi;

  if (!area_full (g, 0))
    return 0;
  /* Area lo is full and area hi is not. */
  for (hi = 1; area_full (g, hi); hi = hi * 2 + 1)
    lo = hi;
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (area_full (g, mid))
      lo = mid;
    else
      hi = mid;
  }
  return hi;
}

void
table_presize_from_areas (struct cow_table *t, struct cow_io *io,
                          uint64_t chunk_bytes, uint32_t E,
                          chunk_t dev_chunks, uint8_t *buf)
{
  const struct areas g = {
    .io = io, .chunk_bytes = chunk_bytes, .E = E, .dev_chunks = dev_chunks,
  };
  uint64_t full = full_areas (&g), records = 0, entries = 0, current = 0;
  uint64_t expect;
  struct core_exception *v = malloc (E * sizeof *v);

  if (v == NULL)
    return;
  /* Areas 0, full/4, full/2, 3 full/4 and the current one. */
  for (uint64_t k = 0; k <= 4; k++) {
    uint64_t a = full * k / 4;
    chunk_t loc = cow_area_location (E, a);
    uint32_t i;

    if ((k > 0 && a == full * (k - 1) / 4) || loc >= dev_chunks ||
        cow_io_pread (io, buf, chunk_bytes, loc * chunk_bytes) < 0)
      continue;
    for (i = 0; i < E; i++) {
      cow_decode_exception (buf, i, &v[i]);
      if (v[i].new_chunk == 0)
        break;
    }
    records += i;
    entries += table_entries_for (v, i);
    if (a == full)
      current = i;
  }
  free (v);
  if (records == 0)
    return;
  expect = (uint64_t) ((unsigned __int128) (full * E + current) * entries
                       / records);
  /* A sixteenth more than the sample says, for runs that vary. */
  table_presize_unshared (t, expect + expect / 16);
}
