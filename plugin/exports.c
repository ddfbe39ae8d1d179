/* exports.c: the export table: which exports the server has, by name.
 *
 *   mode=snapshot   one export, the snapshot of the one store.  It has
 *                   no name of its own: every name a client gives gets
 *                   it, as before there were several exports.
 *   mode=origin     "" (the default export) is the origin, written in
 *                   place; then one export per store, named exactly as
 *                   its cow= was written on the command line, serving
 *                   that store's snapshot.
 *   mode=merge      one export, as in snapshot mode: the snapshot of
 *                   the one store while it is merged into the origin
 *                   (export-merge.c); the origin once it is done.
 *
 * The table is built in .get_ready and never changes until .cleanup.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "exports.h"
#include "params.h"
#include "stores.h"

static struct export *exports;
static size_t nr_exports;

int
exports_init (void)
{
  size_t n = params.mode == MODE_ORIGIN ? nr_slots + 1 : 1;

  exports = calloc (n, sizeof *exports);
  if (exports == NULL) {
    nbdkit_error ("calloc: %s", cow_strerror (errno));
    return -1;
  }
  nr_exports = n;
  switch (params.mode) {
  case MODE_SNAPSHOT:
    exports[0] = (struct export) { "", &snapshot_export_ops, &slots[0] };
    break;
  case MODE_MERGE:
    exports[0] = (struct export) { "", &merge_export_ops, &slots[0] };
    break;
  case MODE_ORIGIN:
    exports[0] = (struct export) { "", &origin_export_ops, NULL };
    for (size_t i = 0; i < nr_slots; i++)
      exports[i + 1] = (struct export) {
        slots[i].name, &snapshot_export_ops, &slots[i]
      };
    break;
  }
  return 0;
}

void
exports_free (void)
{
  free (exports);
  exports = NULL;
  nr_exports = 0;
}

struct export *
exports_find (const char *name)
{
  char *known = NULL;
  size_t len = 0;
  FILE *fp;

  if (params.mode != MODE_ORIGIN)
    return &exports[0];
  for (size_t i = 0; i < nr_exports; i++)
    if (strcmp (exports[i].name, name) == 0)
      return &exports[i];

  /* One line that lists what there is. */
  fp = open_memstream (&known, &len);
  if (fp == NULL) {
    nbdkit_error ("no export named '%s'", name);
    return NULL;
  }
  for (size_t i = 0; i < nr_exports; i++)
    fprintf (fp, "%s'%s' (%s)", i ? ", " : "", exports[i].name,
             exports[i].ops->kind);
  fclose (fp);
  nbdkit_error ("no export named '%s': this server has %s", name,
                known ? known : "");
  free (known);
  return NULL;
}

int
exports_list (struct nbdkit_exports *list)
{
  if (params.mode != MODE_ORIGIN)
    return nbdkit_use_default_export (list);
  for (size_t i = 0; i < nr_exports; i++)
    if (nbdkit_add_export (list, exports[i].name,
                           exports[i].ops->description (&exports[i])) == -1)
      return -1;
  return 0;
}
