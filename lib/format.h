/* format.h: the on-disk layout of a dm-snapshot persistent store
 * (cow-format.md), as disk types, host-order core types, and the small
 * geometry helpers named after the kernel's.  Only format.c byte-swaps.
 */
#ifndef SNAPCOW_FORMAT_H
#define SNAPCOW_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "snapcow.h"

/* Chunk 0, followed by zeroes to the end of the chunk. */
struct disk_header {
  uint32_t magic;          /* le32, COW_SNAP_MAGIC */
  uint32_t valid;          /* le32, 1 usable, 0 invalidated */
  uint32_t version;        /* le32, 1 */
  uint32_t chunk_size;     /* le32, in sectors */
} __attribute__ ((__packed__));

/* One record of a metadata area. */
struct disk_exception {
  uint64_t old_chunk;      /* le64, chunk of the origin */
  uint64_t new_chunk;      /* le64, chunk of the COW device; 0 ends */
} __attribute__ ((__packed__));

_Static_assert (sizeof (struct disk_header) == 16, "format");
_Static_assert (sizeof (struct disk_exception) == 16, "format");

struct core_header {
  uint32_t magic;
  uint32_t valid;
  uint32_t version;
  uint32_t chunk_sectors;  /* in sectors */
};

struct core_exception {
  chunk_t old_chunk;
  chunk_t new_chunk;
};

extern void cow_decode_header (const void *buf, struct core_header *h);
extern void cow_encode_header (void *buf, const struct core_header *h);
extern void cow_decode_exception (const void *area, uint32_t index,
                                  struct core_exception *e);
extern void cow_encode_exception (void *area, uint32_t index,
                                  const struct core_exception *e);

/* E: one area is one chunk of 16-byte records. */
static inline uint32_t
cow_exceptions_per_area (uint32_t chunk_sectors)
{
  return chunk_sectors * (COW_SECTOR_SIZE / sizeof (struct disk_exception));
}

/* Chunk number of metadata area `area`. */
static inline chunk_t
cow_area_location (uint32_t exceptions_per_area, uint64_t area)
{
  return 1 + area * ((uint64_t) exceptions_per_area + 1);
}

/* The header (chunk 0) and every area are metadata; the rest is data. */
static inline bool
cow_is_metadata_chunk (uint32_t exceptions_per_area, chunk_t chunk)
{
  return chunk == 0 || chunk % ((uint64_t) exceptions_per_area + 1) == 1;
}

/* The next free chunk never rests on an area: step over it. */
static inline chunk_t
cow_skip_metadata (uint32_t exceptions_per_area, chunk_t chunk)
{
  return chunk % ((uint64_t) exceptions_per_area + 1) == 1 ? chunk + 1 : chunk;
}

#endif /* SNAPCOW_FORMAT_H */
