/* export-snapshot.c: how a snapshot export is served: the snapshot of
 * one store, through lib/snapshot.c.  In snapshot mode it is the only
 * export; in origin mode each store has one, and a write there goes to
 * that store only, as with the kernel's snapshot target.
 *
 * A connection reaches these only after its .open has seen the store
 * open (stores.c), so e->slot->store is set.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "exports.h"
#include "params.h"

static bool
snapshot_can_write (const struct export *e)
{
  return !e->slot->unwritable;
}

static uint32_t
snapshot_preferred_block_size (const struct export *e)
{
  return cow_store_chunk_sectors (e->slot->store) * COW_SECTOR_SIZE;
}

/* Both files, the chunk size, and the usage line as dmsetup status
 * would print it, as of now.  A listing may come before the first
 * writable connection has created the store.
 */
static const char *
snapshot_description (const struct export *e)
{
  struct cow_store *store = slot_store (e->slot);
  char line[COW_USAGE_STATUS_LEN];
  struct cow_usage u;

  if (store == NULL)
    return nbdkit_printf_intern ("snapshot of %s, COW store %s, not created "
                                 "yet (the first writable connection "
                                 "creates it)", params.origin,
                                 e->slot->path);
  cow_store_usage (store, &u);
  cow_usage_status (&u, line, sizeof line);
  return nbdkit_printf_intern ("snapshot of %s, COW store %s, chunk size "
                               "%" PRIu64 ", usage %s", params.origin,
                               e->slot->path,
                               (uint64_t) u.chunk_sectors * COW_SECTOR_SIZE,
                               line);
}

static int
snapshot_pread (const struct export *e, void *buf, uint32_t count,
                uint64_t offset)
{
  return cow_snapshot_pread (e->slot->store, buf, count, offset);
}

static int
snapshot_pwrite (const struct export *e, const void *buf, uint32_t count,
                 uint64_t offset, bool fua)
{
  return cow_snapshot_pwrite (e->slot->store, buf, count, offset, fua);
}

static int
snapshot_zero (const struct export *e, uint32_t count, uint64_t offset,
               bool fua, bool fast)
{
  return cow_snapshot_zero (e->slot->store, count, offset, fua, fast);
}

/* As the kernel's discard: frees the space of copied chunks, never
 * allocates (a trimmed range's contents are unspecified in NBD).  In
 * origin mode (a store opened with live_origin) it also releases
 * chunks not copied yet, so that later origin writes never copy them:
 * a backup tool trims what it has read.
 */
static int
snapshot_trim (const struct export *e, uint32_t count, uint64_t offset,
               bool fua)
{
  return cow_snapshot_trim (e->slot->store, count, offset, fua);
}

static int
snapshot_cache (const struct export *e, uint32_t count, uint64_t offset)
{
  return cow_snapshot_cache (e->slot->store, count, offset);
}

static int
snapshot_flush (const struct export *e)
{
  return cow_store_commit (e->slot->store);
}

static int
snapshot_extents (const struct export *e, uint32_t count, uint64_t offset,
                  cow_extent_fn add, void *opaque)
{
  return cow_snapshot_extents (e->slot->store, count, offset, add, opaque);
}

const struct export_ops snapshot_export_ops = {
  .kind = "snapshot",
  .can_write = snapshot_can_write,
  .preferred_block_size = snapshot_preferred_block_size,
  .description = snapshot_description,
  .pread = snapshot_pread,
  .pwrite = snapshot_pwrite,
  .zero = snapshot_zero,
  .trim = snapshot_trim,
  .cache = snapshot_cache,
  .flush = snapshot_flush,
  .extents = snapshot_extents,
};
