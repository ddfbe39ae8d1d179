/* area-readahead.h: asking the kernel for a store's metadata areas
 * ahead of a walk over them (load.c, check.c).
 */
#ifndef SNAPCOW_AREA_READAHEAD_H
#define SNAPCOW_AREA_READAHEAD_H

#include <stdint.h>

#include "io.h"

/* Before area `area` of a store of dev_chunks chunks of chunk_bytes (E
 * records per area) is read: ask for the one some areas further on,
 * and at area 0 for all of them up to there.  Advice only.
 */
extern void areas_read_ahead (struct cow_io *cow, uint32_t E,
                              uint64_t chunk_bytes, uint64_t dev_chunks,
                              uint64_t area);

#endif /* SNAPCOW_AREA_READAHEAD_H */
