/* stores.c: the origin and the COW stores: opening, checking, locking
 * and creating them (with files.c's helpers), and each store's life.
 *
 * The store's life.  nbdkit tells a plugin whether it runs read-only
 * (-r) only when a client connects, in .open, but mistakes must show at
 * start-up, before nbdkit forks.  So .get_ready opens the origin and
 * checks what it can, and each store (one in snapshot mode, one per
 * cow= in origin mode) is in one of these states:
 *
 *   absent      cow= did not exist at start-up: its slot has no store.
 *               .get_ready has checked that the store's directory
 *               exists and is writable.  A read-only .open fails (-r
 *               creates nothing, so there is no snapshot to serve).
 *               The first writable .open creates the file with no more
 *               permission than the origin has, or opens it if someone
 *               created it since start-up (a second server: the lock
 *               then decides), refuses it if it is the origin or
 *               another store, and opens the store writable:
 *               -> writable.
 *   read-only   cow= existed: .get_ready opened it, refused it if it is
 *               the origin or another store, locked it, and loaded and
 *               validated the store, writing nothing.  The first
 *               writable .open makes it writable (cow_store_set_writable;
 *               a new store is initialised then): -> writable.
 *   unwritable  cow= existed but this user cannot write it.  In
 *               snapshot mode it is opened as read-only, and stays so:
 *               .can_write says 0 and every client gets a read-only
 *               export, as with nbdkit's file plugin; said once at
 *               start-up.  In origin mode it is refused at start-up:
 *               the origin's writes could not be copied into it.
 *   writable    takes writes until nbdkit exits.
 *
 * In origin mode an origin write copies into every store, so the first
 * writable .open, whichever export it asks for, makes every store
 * writable, and only then is the cow_origin opened over all of them:
 * no origin write can be taken while some store cannot take its copy.
 * With -r every .open is read-only, the stores stay so, and the
 * cow_origin refuses writes (lib/ says -EROFS).
 *
 * In merge mode the one store must exist, be writable by this user and
 * valid (refused at start-up otherwise: there would be nothing to
 * merge); .get_ready opens it read-only and the cow_merging over it,
 * which serves the snapshot's view and writes nothing.  The first
 * writable .open makes the store writable and only then starts the
 * merge thread, so nothing is written while the server may be
 * read-only.  With -r the view is served and nothing is merged.
 *
 * Changes of state happen in .open under open_lock.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "files.h"
#include "origin-nbd.h"
#include "params.h"
#include "snapcow.h"
#include "stores.h"

struct store_slot *slots;
size_t nr_slots;
uint64_t origin_size;
struct cow_origin *origin;
struct cow_merging *merging;

static struct cow_io *origin_io;
static struct stat origin_st;           /* a file or block device origin */
static bool have_origin_st;             /* false for an NBD URI */
/* The stores handed to cow_origin_open, kept while it lives. */
static struct cow_store **origin_stores;

/* Guards the changes of state in .open, the slots' writable, and
 * origin.
 */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

/* lib/'s messages, already prefixed with the file each is about (the
 * names in store_params), through nbdkit's own log so that
 * --log=syslog gets them too.
 */
static void
message (void *opaque, enum cow_msg_level level, const char *msg)
{
  switch (level) {
  case COW_MSG_ERROR:
    nbdkit_error ("%s", msg);
    break;
  case COW_MSG_WARNING:
    /* nbdkit 1.32 has no warning call: an error line that says it is
     * a warning is what nbdkit's own plugins do.
     */
    nbdkit_error ("warning: %s", msg);
    break;
  case COW_MSG_DEBUG:
    if (snapcow_debug_verbose)
      nbdkit_debug ("%s", msg);
    break;
  }
}

/* Writing the store over the origin would destroy both: the first
 * writable connection writes the header over the origin's first chunk
 * whenever that chunk starts with zeroes (an ext4 image, an LVM PV).
 * Two stores in one file would write each other's chunks.  Compared as
 * opened files, so that every spelling of one file (hard and symbolic
 * links, relative names, bind mounts, two nodes of one block device)
 * is caught.
 */
static int
check_not_shared (const struct store_slot *slot, const struct stat *st)
{
  if (have_origin_st && cow_same_file (st, &origin_st)) {
    nbdkit_error ("cow=%s and the origin %s are the same file: the store "
                  "would be written over the origin", slot->path,
                  params.origin);
    return -1;
  }
  for (size_t i = 0; i < nr_slots; i++)
    if (&slots[i] != slot && slots[i].io && cow_same_file (st, &slots[i].st)) {
      const struct store_slot *first = &slots[i] < slot ? &slots[i] : slot;
      const struct store_slot *second = &slots[i] < slot ? slot : &slots[i];
      nbdkit_error ("cow=%s and cow=%s are the same file: each snapshot "
                    "needs a store of its own", first->name, second->name);
      return -1;
    }
  return 0;
}

/* Take the store's lock: a second server on the same store is refused. */
static int
lock_cow (const struct store_slot *slot, int fd, bool exclusive)
{
  int r = cow_lock_fd (fd, exclusive);

  if (r == -EBUSY) {
    nbdkit_error ("the COW store %s is in use by another process "
                  "(another nbdkit snapcow?): only one server may open it",
                  slot->path);
    return -1;
  }
  if (r < 0) {
    nbdkit_error ("cannot lock the COW store %s: %s", slot->path,
                  cow_strerror (-r));
    return -1;
  }
  return 0;
}

static struct cow_store_params
store_params (const struct store_slot *slot, bool readonly)
{
  return (struct cow_store_params) {
    .chunk_sectors = params.chunk_sectors,
    .max_size = params.cow_size,
    .readonly = readonly,
    .commit_each_copy = params.commit_each_copy,
    .reflink = params.reflink,
    .invalidate_on_overflow = params.invalidate_on_overflow,
    .live_origin = params.mode == MODE_ORIGIN,
    .message = message,
    .cow_name = slot ? slot->path : NULL,
    .origin_name = params.origin,
  };
}

static int
open_store (struct store_slot *slot, struct cow_io *io, bool readonly)
{
  struct cow_store_params p = store_params (slot, readonly);

  /* lib/ has said why, in one line. */
  return cow_store_open (io, origin_io, &p, &slot->store) < 0 ? -1 : 0;
}

/* In origin mode the origin is written, so this user must be able to,
 * and one server at a time may: a second one would copy origin writes
 * into its own stores only, and the first one's snapshots would show
 * them.
 */
static int
open_origin_file (void)
{
  bool write = params.mode != MODE_SNAPSHOT;
  const char *m = mode_name (params.mode);
  int fd;

  if (write && access (params.origin, W_OK) == -1) {
    nbdkit_error ("mode=%s: the origin %s cannot be written (%s): "
                  "%s", m, params.origin, cow_strerror (errno),
                  params.mode == MODE_ORIGIN
                  ? "origin mode serves it writable"
                  : "merge mode writes the store into it");
    return -1;
  }
  fd = open_file ("origin", params.origin, write ? O_RDWR : O_RDONLY,
                  &origin_st);
  if (fd == -1)
    return -1;
  if (write) {
    int r = cow_lock_fd (fd, true);
    if (r < 0) {
      nbdkit_error ("mode=%s: cannot lock the origin %s: %s", m,
                    params.origin, r == -EBUSY
                    ? "in use by another server in mode=origin or "
                    "mode=merge" : cow_strerror (-r));
      close (fd);
      return -1;
    }
  }
  have_origin_st = true;
  origin_io = fd_backend ("origin", params.origin, fd);
  return origin_io ? 0 : -1;
}

static int
open_origin (void)
{
  struct cow_store_params p = store_params (NULL, true);
  int r;

  if (origin_is_nbd_uri (params.origin))
    origin_io = origin_nbd_open (params.origin);
  else if (open_origin_file () == -1)
    return -1;
  if (origin_io == NULL)
    return -1;
  /* cow_store_open checks the origin too, but with no store yet
   * nothing calls it before the first writable connection.
   */
  if (cow_origin_check (origin_io, &p) < 0)
    return -1;
  r = cow_io_get_size (origin_io, &origin_size);
  if (r < 0) {
    nbdkit_error ("cannot get the size of the origin %s: %s", params.origin,
                  cow_strerror (-r));
    return -1;
  }
  return 0;
}

/* The store exists: open, lock, load and validate it read-only. */
static int
open_existing_store (struct store_slot *slot)
{
  struct stat st;
  int fd;

  /* As nbdkit's file plugin does, a store this user cannot write is
   * served read-only rather than refused: -r is not known yet.  Not in
   * origin mode, where every store takes the origin's old data.
   */
  if (access (slot->path, W_OK) == -1) {
    if (params.mode == MODE_ORIGIN) {
      nbdkit_error ("%s: the COW store cannot be written (%s): in "
                    "mode=origin every store must take the copies that "
                    "origin writes make", slot->path, cow_strerror (errno));
      return -1;
    }
    if (params.mode == MODE_MERGE) {
      nbdkit_error ("%s: the COW store cannot be written (%s): "
                    "mode=merge empties it", slot->path,
                    cow_strerror (errno));
      return -1;
    }
    slot->unwritable = true;
    /* A warning in the form message() gives lib/'s. */
    nbdkit_error ("warning: %s: the COW store cannot be written (%s): "
                  "serving it read-only", slot->path, cow_strerror (errno));
  }
  fd = open_file ("COW store", slot->path,
                  slot->unwritable ? O_RDONLY : O_RDWR, &st);
  if (fd == -1)
    return -1;
  if (check_not_shared (slot, &st) == -1 ||
      lock_cow (slot, fd, !slot->unwritable) == -1) {
    close (fd);
    return -1;
  }
  slot->io = fd_backend ("COW store", slot->path, fd);
  if (slot->io == NULL)
    return -1;
  slot->st = st;
  return open_store (slot, slot->io, true);
}

/* Two absent stores that are one file by other spellings (a/b and
 * a/./b, a link to the directory) would otherwise only be caught when
 * the first writable connection creates them.
 */
static int
check_absent_distinct (void)
{
  char **future = calloc (nr_slots, sizeof *future);
  int r = 0;

  if (future == NULL) {
    nbdkit_error ("calloc: %s", cow_strerror (errno));
    return -1;
  }
  for (size_t i = 0; i < nr_slots && r == 0; i++) {
    if (slots[i].io)
      continue;
    future[i] = future_path (slots[i].path);
    for (size_t j = 0; j < i && future[i]; j++)
      if (future[j] && strcmp (future[i], future[j]) == 0) {
        nbdkit_error ("cow=%s and cow=%s are the same file: each snapshot "
                      "needs a store of its own", slots[j].name,
                      slots[i].name);
        r = -1;
        break;
      }
  }
  for (size_t i = 0; i < nr_slots; i++)
    free (future[i]);
  free (future);
  return r;
}

/* Merge mode: the view over the one store, read-only until a writable
 * connection starts the merge (the top of the file).
 */
static int
open_merging (void)
{
  struct cow_merging_params mp = { .step_bytes = params.merge_step };
  struct cow_merging_status st;

  /* lib/ has said why (an invalidated store, say), in one line. */
  if (cow_merging_open (slots[0].store, &mp, &merging) < 0)
    return -1;
  cow_merging_get_status (merging, &st);
  nbdkit_debug ("mode=merge: %s holds %" PRIu64 " records to merge into "
                "%s", slots[0].path, st.records_left, params.origin);
  return 0;
}

int
stores_get_ready (void)
{
  struct stat st;

  if (open_origin () == -1)
    return -1;
  slots = calloc (params.nr_cows, sizeof *slots);
  if (slots == NULL) {
    nbdkit_error ("calloc: %s", cow_strerror (errno));
    return -1;
  }
  nr_slots = params.nr_cows;
  for (size_t i = 0; i < nr_slots; i++) {
    struct store_slot *slot = &slots[i];

    slot->name = params.cows[i].name;
    slot->path = params.cows[i].path;
    if (stat (slot->path, &st) == 0) {
      if (open_existing_store (slot) == -1)
        return -1;
    }
    else if (params.mode == MODE_MERGE) {
      nbdkit_error ("mode=merge: the COW store %s does not exist (%s): "
                    "there is no snapshot to merge", slot->path,
                    cow_strerror (errno));
      return -1;
    }
    else if (errno != ENOENT && errno != ENOTDIR) {
      nbdkit_error ("cannot stat the COW store %s: %s", slot->path,
                    cow_strerror (errno));
      return -1;
    }
    else if (check_cow_dir (slot->path) == -1)
      return -1;
  }
  if (params.mode == MODE_MERGE)
    return open_merging ();
  return check_absent_distinct ();
}

/* The first writable connection, with no store at start-up: create it,
 * or open it if it appeared since (a second server, started before the
 * first created it, gets the store, and the lock refuses it while the
 * first runs).  On failure nothing is kept and the next connection
 * tries again.  open_lock held.
 */
static int
create_store (struct store_slot *slot)
{
  mode_t mode = cow_new_store_mode (have_origin_st ? &origin_st : NULL);
  struct cow_io *io;
  struct stat st;
  int fd;

  fd = open (slot->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd == -1 && errno == EEXIST)
    fd = open (slot->path, O_RDWR | O_CLOEXEC);
  if (fd == -1) {
    nbdkit_error ("cannot create the COW store %s: %s", slot->path,
                  cow_strerror (errno));
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    nbdkit_error ("cannot stat the COW store %s: %s", slot->path,
                  cow_strerror (errno));
    close (fd);
    return -1;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    nbdkit_error ("the COW store %s is not a regular file or a block device",
                  slot->path);
    close (fd);
    return -1;
  }
  /* A link to the origin or another store made since start-up. */
  if (check_not_shared (slot, &st) == -1 || lock_cow (slot, fd, true) == -1) {
    close (fd);
    return -1;
  }
  io = fd_backend ("COW store", slot->path, fd);
  if (io == NULL)
    return -1;
  if (open_store (slot, io, false) == -1) {
    cow_io_close (io);
    return -1;
  }
  slot->st = st;
  slot->io = io;
  return 0;
}

/* Origin mode: the cow_origin over every store, once the first
 * connection has brought them to their state.  open_lock held.
 */
static int
open_cow_origin (void)
{
  struct cow_origin_params p = {
    .fail_write_when_full = params.fail_write_when_full,
    .defer_writes = !params.origin_writes_sync,
    .message = message,
    .origin_name = params.origin,
  };

  if (origin_stores == NULL) {
    origin_stores = calloc (nr_slots, sizeof *origin_stores);
    if (origin_stores == NULL) {
      nbdkit_error ("calloc: %s", cow_strerror (errno));
      return -1;
    }
  }
  for (size_t i = 0; i < nr_slots; i++)
    origin_stores[i] = slots[i].store;
  /* lib/ has said why, in one line. */
  return cow_origin_open (origin_io, origin_stores, nr_slots, &p,
                          &origin) < 0 ? -1 : 0;
}

/* The changes of state a connection brings.  open_lock held. */
static int
open_locked (bool readonly)
{
  for (size_t i = 0; i < nr_slots; i++) {
    struct store_slot *slot = &slots[i];

    if (slot->store == NULL && readonly) {
      nbdkit_error ("the COW store %s does not exist, and read-only (-r) "
                    "creates nothing: there is no snapshot to serve",
                    slot->path);
      return -1;
    }
  }
  if (!readonly) {
    for (size_t i = 0; i < nr_slots; i++) {
      struct store_slot *slot = &slots[i];
      int r;

      if (slot->writable || slot->unwritable)
        continue;
      if (slot->store == NULL)
        r = create_store (slot);
      else
        r = cow_store_set_writable (slot->store) < 0 ? -1 : 0;
      if (r == -1)
        return -1;
      slot->writable = true;
    }
  }
  if (params.mode == MODE_ORIGIN && origin == NULL)
    return open_cow_origin ();
  /* The store is writable now: merge (again, a no-op, later). */
  if (params.mode == MODE_MERGE && !readonly)
    return cow_merging_start (merging) < 0 ? -1 : 0;
  return 0;
}

int
stores_open (bool readonly)
{
  int r;

  pthread_mutex_lock (&open_lock);
  r = open_locked (readonly);
  pthread_mutex_unlock (&open_lock);
  return r;
}

void
stores_cleanup (void)
{
  /* A clean stop (SIGTERM, SIGINT, last client gone with -s or
   * --exit-with-parent): commit everything pending.  The cow_origin
   * goes first: it uses the stores.
   */
  if (origin)
    cow_origin_close (origin);
  origin = NULL;
  /* Likewise the merge, which stops after its current step. */
  cow_merging_close (merging);
  merging = NULL;
  free (origin_stores);
  origin_stores = NULL;
  for (size_t i = 0; i < nr_slots; i++) {
    struct store_slot *slot = &slots[i];

    if (slot->store && cow_store_close (slot->store) < 0)
      nbdkit_error ("%s: the final commit failed: records written since "
                    "the last flush may be lost", slot->path);
    slot->store = NULL;
    cow_io_close (slot->io);
    slot->io = NULL;
  }
  free (slots);
  slots = NULL;
  nr_slots = 0;
  cow_io_close (origin_io);
  origin_io = NULL;
}

struct cow_store *
slot_store (struct store_slot *slot)
{
  struct cow_store *s;

  pthread_mutex_lock (&open_lock);
  s = slot->store;
  pthread_mutex_unlock (&open_lock);
  return s;
}
