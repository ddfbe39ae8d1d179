/* params.h: the plugin's parameters, as parsed by params.c. */
#ifndef SNAPCOW_PARAMS_H
#define SNAPCOW_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the server serves.  A new mode gets its own value here, its own
 * name in params.c's mode table, and its own export ops (exports.h);
 * the rest of the plugin only chooses.
 */
enum snapcow_mode {
  MODE_SNAPSHOT,        /* one store; the export is its snapshot */
  MODE_ORIGIN,          /* the origin, writable, and one snapshot
                         * export per store */
  MODE_MERGE,           /* one store, merged into the origin in the
                         * background; the export is its snapshot */
};

/* One cow= parameter. */
struct cow_param {
  char *name;           /* exactly as written: the export's name */
  char *path;           /* absolute, for opening and messages */
};

struct snapcow_params {
  enum snapcow_mode mode;
  char *origin;                 /* absolute path, or an NBD URI */
  struct cow_param *cows;       /* in the order given */
  size_t nr_cows;
  uint32_t chunk_sectors;       /* for new stores; 0: the default, 32 */
  uint64_t cow_size;            /* cap on a growing file, or 0 */
  bool commit_each_copy;        /* commit=copy */
  bool reflink;                 /* reflink=on */
  bool invalidate_on_overflow;  /* overflow=invalidate */
  bool fail_write_when_full;    /* on-full=fail-write */
  const char *on_full;          /* as given, or NULL (origin mode only) */
  bool origin_writes_sync;      /* origin-writes=synchronous */
  const char *origin_writes;    /* as given, or NULL (origin mode only) */
  uint64_t merge_step;          /* merge-step=, or 0: lib/'s default */
};

extern struct snapcow_params params;

/* The mode's name, as mode= takes it. */
extern const char *mode_name (enum snapcow_mode mode);

/* The .config, .config_complete and .unload callbacks' work. */
extern int params_config (const char *key, const char *value);
extern int params_config_complete (void);
extern void params_free (void);

#define snapcow_config_help \
  "[origin=]FILE|URI    (required) The origin image: a file, a block\n" \
  "                     device or an NBD URI (opened read-only in snapshot\n" \
  "                     mode; a file or block device, written, in origin\n" \
  "                     mode).\n" \
  "cow=FILE             (required) The COW store (dm-snapshot format),\n" \
  "                     created if missing.  Repeated in origin mode: one\n" \
  "                     snapshot (and one export, named as written) each.\n" \
  "mode=snapshot|origin|merge\n" \
  "                     Serve the snapshot (default), or the origin itself,\n" \
  "                     writable, with its snapshots as further exports, or\n" \
  "                     the snapshot while it is merged into the origin.\n" \
  "chunk-size=SIZE      Chunk size of a new store (default 16K).\n" \
  "cow-size=SIZE        Largest size a COW file may grow to.\n" \
  "overflow=enospc|invalidate\n" \
  "                     When a store is full: fail the snapshot writes that\n" \
  "                     need a new chunk (default), or invalidate the store.\n" \
  "on-full=invalidate|fail-write\n" \
  "                     Origin mode, when a store has no room for the copy\n" \
  "                     an origin write needs: invalidate that snapshot and\n" \
  "                     write (default, as the kernel), or fail the write.\n" \
  "origin-writes=deferred|synchronous\n" \
  "                     Origin mode: a write that copied chunks returns\n" \
  "                     once the copies are made and reaches the origin\n" \
  "                     after their commit (default), or waits for the\n" \
  "                     commit, as the kernel's origin writes do.\n" \
  "merge-step=SIZE      Merge mode: data merged per step, the longest a\n" \
  "                     write to a chunk being merged waits (default 4M).\n" \
  "commit=flush|copy    When new records are committed: at flush and FUA\n" \
  "                     (default), or before each copying write returns.\n" \
  "reflink=BOOL         First writes clone the origin's chunk where the\n" \
  "                     store's filesystem can share its blocks (XFS,\n" \
  "                     btrfs) instead of copying it (default false)."

#endif /* SNAPCOW_PARAMS_H */
