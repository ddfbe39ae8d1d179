/* snapcow.c: nbdkit-snapcow-plugin, dm-snapshot compatible snapshot
 * volumes: the nbdkit callbacks and the plugin table.
 *
 * A thin adapter over lib/:
 *   params.c          the parameters;
 *   stores.c          the origin and COW stores, and each store's life
 *                     (absent, read-only, unwritable, writable), over
 *   files.c           opening and checking files;
 *   exports.c         the export table (one snapshot in snapshot mode;
 *                     the origin and one snapshot per store in origin
 *                     mode);
 *   export-*.c        how each kind of export is served.
 * Thread model PARALLEL, multi-conn safe: lib/ does the locking.  A
 * connection's handle is its struct export.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "exports.h"
#include "params.h"
#include "snapcow.h"
#include "stores.h"

/* -D snapcow.verbose=1 passes lib/'s debug messages to nbdkit_debug. */
NBDKIT_DLL_PUBLIC int snapcow_debug_verbose = 0;

static void
snapcow_unload (void)
{
  params_free ();
}

static int
snapcow_config (const char *key, const char *value)
{
  return params_config (key, value);
}

static int
snapcow_config_complete (void)
{
  return params_config_complete ();
}

static void
snapcow_dump_plugin (void)
{
  printf ("snapcow_default_chunk_size=%d\n",
          COW_DEFAULT_CHUNK_SECTORS * COW_SECTOR_SIZE);
  printf ("snapcow_max_chunk_size=%d\n",
          COW_MAX_CHUNK_SECTORS * COW_SECTOR_SIZE);
}

static int
snapcow_get_ready (void)
{
  if (stores_get_ready () == -1)
    return -1;
  return exports_init ();
}

static void
snapcow_cleanup (void)
{
  stores_cleanup ();
  exports_free ();
}

static int
snapcow_list_exports (int readonly, int is_tls, struct nbdkit_exports *list)
{
  return exports_list (list);
}

/* In origin mode "" is the origin; in snapshot mode the one export. */
static const char *
snapcow_default_export (int readonly, int is_tls)
{
  return "";
}

static void *
snapcow_open (int readonly)
{
  struct export *e = exports_find (nbdkit_export_name ());

  if (e == NULL || stores_open (readonly) == -1)
    return NULL;
  return e;
}

static int
snapcow_can_write (void *handle)
{
  struct export *e = handle;

  return e->ops->can_write (e);
}

static int64_t
snapcow_get_size (void *handle)
{
  return origin_size;
}

static int
snapcow_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                    uint32_t *maximum)
{
  struct export *e = handle;

  *minimum = 1;
  *preferred = e->ops->preferred_block_size (e);
  *maximum = 0xffffffff;
  return 0;
}

static int
snapcow_can_multi_conn (void *handle)
{
  return 1;
}

static int
snapcow_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
snapcow_can_flush (void *handle)
{
  return 1;
}

static int
snapcow_can_trim (void *handle)
{
  return 1;
}

static int
snapcow_can_zero (void *handle)
{
  return 1;
}

/* A fast zero fails with ENOTSUP where it would copy a chunk (lib/
 * decides before doing anything).
 */
static int
snapcow_can_fast_zero (void *handle)
{
  return 1;
}

static int
snapcow_can_extents (void *handle)
{
  return 1;
}

/* Prefetch from where each chunk lives, so that nbdkit's readahead
 * filter and clients' NBD_CMD_CACHE reach the files.
 */
static int
snapcow_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* What nbdinfo shows (export-*.c), as of the connection. */
static const char *
snapcow_export_description (void *handle)
{
  struct export *e = handle;

  return e->ops->description (e);
}

/* lib/ returns a negative errno; nbdkit wants -1 and the errno. */
static int
result (int r)
{
  if (r < 0) {
    nbdkit_set_error (-r);
    return -1;
  }
  return 0;
}

static int
snapcow_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
               uint32_t flags)
{
  struct export *e = handle;

  return result (e->ops->pread (e, buf, count, offset));
}

static int
snapcow_pwrite (void *handle, const void *buf, uint32_t count,
                uint64_t offset, uint32_t flags)
{
  struct export *e = handle;

  return result (e->ops->pwrite (e, buf, count, offset,
                                 flags & NBDKIT_FLAG_FUA));
}

static int
snapcow_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct export *e = handle;

  /* NBDKIT_FLAG_MAY_TRIM changes nothing: whole chunks are punched
   * anyway.
   */
  return result (e->ops->zero (e, count, offset, flags & NBDKIT_FLAG_FUA,
                               flags & NBDKIT_FLAG_FAST_ZERO));
}

static int
snapcow_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct export *e = handle;

  return result (e->ops->trim (e, count, offset, flags & NBDKIT_FLAG_FUA));
}

static int
snapcow_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct export *e = handle;

  return result (e->ops->cache (e, count, offset));
}

static int
snapcow_flush (void *handle, uint32_t flags)
{
  struct export *e = handle;

  return result (e->ops->flush (e));
}

static int
add_extent (void *opaque, uint64_t offset, uint64_t length, bool is_zero)
{
  uint32_t type = is_zero ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0;

  if (nbdkit_add_extent (opaque, offset, length, type) == -1)
    return -errno;
  return 0;
}

static int
snapcow_extents (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags, struct nbdkit_extents *extents)
{
  struct export *e = handle;

  /* With REQ_ONE the first extent is enough; nbdkit drops the rest. */
  return result (e->ops->extents (e, count, offset, add_extent, extents));
}

static struct nbdkit_plugin plugin = {
  .name              = "snapcow",
  .longname          = "snapcow: dm-snapshot compatible snapshot volumes",
  .version           = PACKAGE_VERSION,
  .unload            = snapcow_unload,
  .config            = snapcow_config,
  .config_complete   = snapcow_config_complete,
  .config_help       = snapcow_config_help,
  .magic_config_key  = "origin",
  .dump_plugin       = snapcow_dump_plugin,
  .get_ready         = snapcow_get_ready,
  .cleanup           = snapcow_cleanup,
  .list_exports      = snapcow_list_exports,
  .default_export    = snapcow_default_export,
  .open              = snapcow_open,
  .can_write         = snapcow_can_write,
  .get_size          = snapcow_get_size,
  .block_size        = snapcow_block_size,
  .can_multi_conn    = snapcow_can_multi_conn,
  .can_fua           = snapcow_can_fua,
  .can_flush         = snapcow_can_flush,
  .can_trim          = snapcow_can_trim,
  .can_zero          = snapcow_can_zero,
  .can_fast_zero     = snapcow_can_fast_zero,
  .can_extents       = snapcow_can_extents,
  .can_cache         = snapcow_can_cache,
  .export_description = snapcow_export_description,
  .pread             = snapcow_pread,
  .pwrite            = snapcow_pwrite,
  .zero              = snapcow_zero,
  .trim              = snapcow_trim,
  .cache             = snapcow_cache,
  .flush             = snapcow_flush,
  .extents           = snapcow_extents,
  .errno_is_preserved = 0,
};

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
NBDKIT_REGISTER_PLUGIN (plugin)
