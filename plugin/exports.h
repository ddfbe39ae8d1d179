/* exports.h: the export table (exports.c) and the kinds of export
 * (export-snapshot.c, export-origin.c, export-merge.c).
 *
 * A connection's handle is the struct export it asked for; the data
 * callbacks in snapcow.c call its ops.  A new kind of export (another
 * mode) is another set of ops.
 */
#ifndef SNAPCOW_EXPORTS_H
#define SNAPCOW_EXPORTS_H

#include <stdbool.h>
#include <stdint.h>

#include "snapcow.h"
#include "stores.h"

struct export;

/* Each op returns what lib/ returns: 0 or a negative errno. */
struct export_ops {
  const char *kind;             /* "snapshot", "origin", "merge" */
  bool (*can_write) (const struct export *e);
  uint32_t (*preferred_block_size) (const struct export *e);
  /* The description nbdinfo shows, from nbdkit_printf_intern. */
  const char *(*description) (const struct export *e);
  int (*pread) (const struct export *e, void *buf, uint32_t count,
                uint64_t offset);
  int (*pwrite) (const struct export *e, const void *buf, uint32_t count,
                 uint64_t offset, bool fua);
  int (*zero) (const struct export *e, uint32_t count, uint64_t offset,
               bool fua, bool fast);
  int (*trim) (const struct export *e, uint32_t count, uint64_t offset,
               bool fua);
  int (*cache) (const struct export *e, uint32_t count, uint64_t offset);
  int (*flush) (const struct export *e);
  int (*extents) (const struct export *e, uint32_t count, uint64_t offset,
                  cow_extent_fn add, void *opaque);
};

struct export {
  const char *name;             /* what a client asks for */
  const struct export_ops *ops;
  struct store_slot *slot;      /* the store it serves, or NULL */
};

extern const struct export_ops snapshot_export_ops;
extern const struct export_ops origin_export_ops;
extern const struct export_ops merge_export_ops;

/* .get_ready, after stores_get_ready: build the table for the mode. */
extern int exports_init (void);
extern void exports_free (void);

/* The export a client asked for by name, or NULL with an error that
 * names the known ones.  In snapshot and merge mode there is one
 * export, and every name gets it, as before there were several.
 */
extern struct export *exports_find (const char *name);

/* .list_exports: every export, with its description. */
struct nbdkit_exports;
extern int exports_list (struct nbdkit_exports *list);

#endif /* SNAPCOW_EXPORTS_H */
