/* export-origin.c: how the origin export of mode=origin is served: the
 * origin itself, written in place through lib/'s cow_origin, which
 * copies a chunk's old data into every store that lacks it before the
 * first write over it (the kernel's snapshot-origin target).
 *
 * A connection reaches these only after its .open has seen the
 * cow_origin open (stores.c), so origin is set.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "exports.h"
#include "params.h"

static bool
origin_can_write (const struct export *e)
{
  return true;
}

/* The largest chunk of any store: a write of that size and alignment
 * never makes a store copy a chunk it only partly overwrites.
 */
static uint32_t
origin_preferred_block_size (const struct export *e)
{
  uint32_t largest = 0;

  for (size_t i = 0; i < nr_slots; i++) {
    uint32_t bytes = cow_store_chunk_sectors (slots[i].store) *
      COW_SECTOR_SIZE;
    if (bytes > largest)
      largest = bytes;
  }
  return largest;
}

/* The origin, the names of its snapshot exports, and what a full store
 * does.
 */
static const char *
origin_description (const struct export *e)
{
  char *names = NULL;
  size_t len = 0;
  const char *r;
  FILE *fp;

  fp = open_memstream (&names, &len);
  if (fp == NULL)
    return NULL;
  for (size_t i = 0; i < nr_slots; i++)
    fprintf (fp, "%s'%s'", i ? ", " : "", slots[i].name);
  fclose (fp);
  r = nbdkit_printf_intern ("origin %s, written in place (mode=origin), "
                            "with %zu snapshot%s: %s; a store too full to "
                            "copy into %s", params.origin, nr_slots,
                            nr_slots == 1 ? "" : "s", names ? names : "",
                            params.fail_write_when_full
                            ? "fails the origin write (on-full=fail-write)"
                            : "is invalidated (on-full=invalidate)");
  free (names);
  return r;
}

static int
origin_pread (const struct export *e, void *buf, uint32_t count,
              uint64_t offset)
{
  return cow_origin_pread (origin, buf, count, offset);
}

static int
origin_pwrite (const struct export *e, const void *buf, uint32_t count,
               uint64_t offset, bool fua)
{
  return cow_origin_pwrite (origin, buf, count, offset, fua);
}

static int
origin_zero (const struct export *e, uint32_t count, uint64_t offset,
             bool fua, bool fast)
{
  return cow_origin_zero (origin, count, offset, fua, fast);
}

static int
origin_trim (const struct export *e, uint32_t count, uint64_t offset,
             bool fua)
{
  return cow_origin_trim (origin, count, offset, fua);
}

static int
origin_cache (const struct export *e, uint32_t count, uint64_t offset)
{
  return cow_origin_cache (origin, count, offset);
}

/* Sync the origin and commit every store. */
static int
origin_flush (const struct export *e)
{
  return cow_origin_flush (origin);
}

static int
origin_extents (const struct export *e, uint32_t count, uint64_t offset,
                cow_extent_fn add, void *opaque)
{
  return cow_origin_extents (origin, count, offset, add, opaque);
}

const struct export_ops origin_export_ops = {
  .kind = "origin",
  .can_write = origin_can_write,
  .preferred_block_size = origin_preferred_block_size,
  .description = origin_description,
  .pread = origin_pread,
  .pwrite = origin_pwrite,
  .zero = origin_zero,
  .trim = origin_trim,
  .cache = origin_cache,
  .flush = origin_flush,
  .extents = origin_extents,
};
