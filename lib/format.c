/* format.c: encode and decode the header and exception records.  The
 * only file that knows the disk is little-endian; everything else sees
 * host-order struct core_*.  Buffers are copied with memcpy, never cast,
 * so unaligned input is fine.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "format.h"

void
cow_decode_header (const void *buf, struct core_header *h)
{
  struct disk_header d;

  memcpy (&d, buf, sizeof d);
  h->magic = le32toh (d.magic);
  h->valid = le32toh (d.valid);
  h->version = le32toh (d.version);
  h->chunk_sectors = le32toh (d.chunk_size);
}

void
cow_encode_header (void *buf, const struct core_header *h)
{
  struct disk_header d = {
    .magic = htole32 (h->magic),
    .valid = htole32 (h->valid),
    .version = htole32 (h->version),
    .chunk_size = htole32 (h->chunk_sectors),
  };

  memcpy (buf, &d, sizeof d);
}

void
cow_decode_exception (const void *area, uint32_t index,
                      struct core_exception *e)
{
  struct disk_exception d;

  memcpy (&d, (const char *) area + (size_t) index * sizeof d, sizeof d);
  e->old_chunk = le64toh (d.old_chunk);
  e->new_chunk = le64toh (d.new_chunk);
}

void
cow_encode_exception (void *area, uint32_t index,
                      const struct core_exception *e)
{
  struct disk_exception d = {
    .old_chunk = htole64 (e->old_chunk),
    .new_chunk = htole64 (e->new_chunk),
  };

  memcpy ((char *) area + (size_t) index * sizeof d, &d, sizeof d);
}

int
cow_check_chunk_sectors (uint64_t chunk_sectors, const char **why)
{
  if (chunk_sectors == 0)
    *why = "is zero";
  else if (chunk_sectors & (chunk_sectors - 1))
    *why = "is not a power of two";
  else if (chunk_sectors > COW_KERNEL_MAX_CHUNK_SECTORS)
    *why = "is above the kernel's limit of 1G";
  else if (chunk_sectors > COW_MAX_CHUNK_SECTORS)
    *why = "is above snapcow's limit of 1M";
  else
    return 0;
  return -EINVAL;
}
