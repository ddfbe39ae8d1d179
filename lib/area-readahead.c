/* area-readahead.c: asking for a store's metadata areas ahead of a walk.
 *
 * The areas lie an area's data chunks apart, so the kernel's readahead,
 * which follows sequential reads, never fetches the next one: from a
 * cold page cache each read of a walk would wait for the disk in turn
 * (39,063 of them for 10^7 records at 4K chunks: 3.9 s for the loader
 * and 7.6 s for check before they asked ahead).  So 4 MiB of areas are
 * asked for ahead (posix_fadvise WILLNEED): 256 areas of 4K chunks, at
 * least 16 of larger ones.
 */
#include <config.h>

#include "area-readahead.h"
#include "format.h"

#define AHEAD_BYTES (UINT64_C (4) << 20)
#define AHEAD_MIN_AREAS 16
#define AHEAD_MAX_AREAS 256

void
areas_read_ahead (struct cow_io *cow, uint32_t E, uint64_t chunk_bytes,
                  uint64_t dev_chunks, uint64_t area)
{
  uint64_t n = AHEAD_BYTES / chunk_bytes;

  if (cow->ops->cache == NULL)
    return;
  if (n < AHEAD_MIN_AREAS)
    n = AHEAD_MIN_AREAS;
  else if (n > AHEAD_MAX_AREAS)
    n = AHEAD_MAX_AREAS;
  for (uint64_t a = area > 0 ? area + n : 0;
       a <= area + n && cow_area_location (E, a) < dev_chunks; a++)
    cow->ops->cache (cow, cow_area_location (E, a) * chunk_bytes,
                     chunk_bytes);
}
