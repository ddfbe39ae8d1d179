/* stores.h: the origin and the COW stores, opened and kept by stores.c
 * through their life (absent, read-only, unwritable, writable).
 */
#ifndef SNAPCOW_STORES_H
#define SNAPCOW_STORES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "snapcow.h"

/* One cow= store. */
struct store_slot {
  const char *name;             /* cow= as written (params.c owns it) */
  const char *path;             /* absolute (likewise) */
  struct cow_io *io;            /* NULL while the store is absent */
  struct cow_store *store;      /* likewise */
  struct stat st;               /* the file, once opened */
  bool unwritable;              /* this user cannot write it */
  bool writable;                /* takes writes until nbdkit exits */
};

/* params.nr_cows slots, in the order of the cow= parameters.  Set up in
 * .get_ready; a slot's io and store, once set, never change until
 * .cleanup, and a connection reaches the data callbacks only after its
 * .open has seen them set.
 */
extern struct store_slot *slots;
extern size_t nr_slots;

/* The origin's size in bytes, and in origin mode the cow_origin over
 * it and every store (set by the first .open, see stores.c).
 */
extern uint64_t origin_size;
extern struct cow_origin *origin;
/* In merge mode the store's view and its merge (set by .get_ready). */
extern struct cow_merging *merging;

/* -D snapcow.verbose=1 (snapcow.c). */
extern int snapcow_debug_verbose;

/* .get_ready: open and check the origin and the stores that exist. */
extern int stores_get_ready (void);

/* .open: the changes of state a connection brings (a writable one
 * makes the stores writable, creating absent ones); 0, or -1 with the
 * error said.
 */
extern int stores_open (bool readonly);

/* The store a slot serves, read under the lock that guards its
 * creation: for callers with no connection of their own (a listing of
 * exports).  NULL while the store is absent.
 */
extern struct cow_store *slot_store (struct store_slot *slot);

/* .cleanup: commit and close everything. */
extern void stores_cleanup (void);

#endif /* SNAPCOW_STORES_H */
