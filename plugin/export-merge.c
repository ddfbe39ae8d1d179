/* export-merge.c: how the export of mode=merge is served: the snapshot
 * of the one store while lib/merge-online.c merges it into the origin
 * in the background (the kernel's snapshot-merge target), through the
 * cow_merging over it (stores.c).  Once the merge is done it is the
 * plain origin.
 *
 * Progress shows in the description (nbdinfo prints it): the records
 * left of those at start-up, the bytes merged, and the usage line the
 * kernel's `dmsetup status` prints for a snapshot-merge target.  A
 * store on disk does not know that it is being merged, so this is the
 * only live view of the merge; `snapcow info` shows the records left.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "exports.h"
#include "params.h"

static bool
merge_can_write (const struct export *e)
{
  return true;
}

static uint32_t
merge_preferred_block_size (const struct export *e)
{
  return cow_store_chunk_sectors (e->slot->store) * COW_SECTOR_SIZE;
}

static const char *
merge_description (const struct export *e)
{
  struct cow_merging_status st;
  const char *what;

  cow_merging_get_status (merging, &st);
  switch (st.state) {
  case COW_MERGING_WAITING:
    what = "merge not started (no writable connection yet, or -r)";
    break;
  case COW_MERGING_RUNNING:
    what = "merging";
    break;
  case COW_MERGING_DONE:
    what = "merged: the export is the origin";
    break;
  case COW_MERGING_FAILED:
  default:
    return nbdkit_printf_intern ("snapshot of %s, COW store %s (mode=merge): "
                                 "Merge failed (%s): %" PRIu64 " of %"
                                 PRIu64 " records left, %" PRIu64
                                 " bytes merged, status %s; restart to "
                                 "resume", params.origin, e->slot->path,
                                 cow_strerror (-st.error), st.records_left,
                                 st.records_at_start, st.bytes, st.usage);
  }
  return nbdkit_printf_intern ("snapshot of %s, COW store %s (mode=merge): "
                               "%s: %" PRIu64 " of %" PRIu64 " records "
                               "left, %" PRIu64 " bytes merged, status %s",
                               params.origin, e->slot->path, what,
                               st.records_left, st.records_at_start,
                               st.bytes, st.usage);
}

static int
merge_pread (const struct export *e, void *buf, uint32_t count,
             uint64_t offset)
{
  return cow_merging_pread (merging, buf, count, offset);
}

static int
merge_pwrite (const struct export *e, const void *buf, uint32_t count,
              uint64_t offset, bool fua)
{
  return cow_merging_pwrite (merging, buf, count, offset, fua);
}

static int
merge_zero (const struct export *e, uint32_t count, uint64_t offset,
            bool fua, bool fast)
{
  return cow_merging_zero (merging, count, offset, fua, fast);
}

static int
merge_trim (const struct export *e, uint32_t count, uint64_t offset,
            bool fua)
{
  return cow_merging_trim (merging, count, offset, fua);
}

static int
merge_cache (const struct export *e, uint32_t count, uint64_t offset)
{
  return cow_merging_cache (merging, count, offset);
}

static int
merge_flush (const struct export *e)
{
  return cow_merging_flush (merging);
}

static int
merge_extents (const struct export *e, uint32_t count, uint64_t offset,
               cow_extent_fn add, void *opaque)
{
  return cow_merging_extents (merging, count, offset, add, opaque);
}

const struct export_ops merge_export_ops = {
  .kind = "merge",
  .can_write = merge_can_write,
  .preferred_block_size = merge_preferred_block_size,
  .description = merge_description,
  .pread = merge_pread,
  .pwrite = merge_pwrite,
  .zero = merge_zero,
  .trim = merge_trim,
  .cache = merge_cache,
  .flush = merge_flush,
  .extents = merge_extents,
};
