/* snapcow.c: nbdkit-snapcow-plugin, a writable snapshot of an origin
 * image whose copy-on-write data lives in a dm-snapshot persistent store.
 *
 * A thin adapter: parameters and nbdkit callbacks here, everything else
 * in lib/.  One store serves every connection (thread model PARALLEL,
 * multi-conn safe: lib/ does the locking).
 *
 * The store's life.  nbdkit tells a plugin whether it runs read-only
 * (-r) only when a client connects, in .open, but mistakes must show at
 * start-up, before nbdkit forks.  So .get_ready opens the origin and
 * checks what it can, and the store is in one of these states:
 *
 *   absent      cow= did not exist at start-up: nothing but the origin
 *               is open and store is NULL.  .get_ready has checked that
 *               the store's directory exists and is writable.  A
 *               read-only .open fails (-r creates nothing, so there is
 *               no snapshot to serve).  The first writable .open creates
 *               the file with no more permission than the origin has,
 *               or opens it if someone created it since start-up (a
 *               second server: the lock then decides), refuses it if it
 *               is the origin, and opens the store writable: -> writable.
 *   read-only   cow= existed: .get_ready opened it, refused it if it is
 *               the origin, locked it, and loaded and validated the
 *               store, writing nothing.  The first writable .open makes
 *               it writable (cow_store_set_writable; a new store is
 *               initialised then): -> writable.
 *   unwritable  cow= existed but this user cannot write it: opened as
 *               read-only, and it stays so: .can_write says 0 and every
 *               client gets a read-only export, as with nbdkit's file
 *               plugin.  Said once at start-up.
 *   writable    takes writes until nbdkit exits.
 *
 * Changes of state happen in .open under open_lock.  store, once set,
 * never changes until .cleanup, and a connection reaches the data
 * callbacks only after its .open has seen store set.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "origin-nbd.h"
#include "snapcow.h"

/* -D snapcow.verbose=1 passes lib/'s debug messages to nbdkit_debug. */
NBDKIT_DLL_PUBLIC int snapcow_debug_verbose = 0;

/* Parameters. */
static char *origin_path;
static char *cow_path;
static uint32_t chunk_sectors;          /* 0: the default, 32 */
static uint64_t cow_size;               /* cap on a growing file, or 0 */
static bool commit_each_copy;           /* commit=copy */
static bool invalidate_on_overflow;     /* overflow=invalidate */

/* Opened in .get_ready; see "The store's life" above. */
static struct cow_io *origin_io;
static struct stat origin_st;           /* a file or block device origin */
static bool have_origin_st;             /* false for an NBD URI */
static struct cow_io *cow_io;           /* NULL while the store is absent */
static struct cow_store *store;         /* likewise */
static bool cow_unwritable;             /* the user cannot write cow= */

/* Guards the changes of state in .open, and writable. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static bool writable;

/* lib/'s messages, already prefixed with the file each is about (the
 * names in open_store's params), through nbdkit's own log so that
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

static void
snapcow_unload (void)
{
  free (origin_path);
  free (cow_path);
}

static int
parse_chunk_size (const char *value)
{
  int64_t bytes = nbdkit_parse_size (value);

  if (bytes == -1)
    return -1;
  if (bytes < COW_SECTOR_SIZE || (bytes & (bytes - 1)) != 0 ||
      bytes > (int64_t) COW_MAX_CHUNK_SECTORS * COW_SECTOR_SIZE) {
    nbdkit_error ("chunk-size=%s: must be a power of two from 512 to %u "
                  "bytes (the kernel allows up to 1G; snapcow caps it so "
                  "that an area fits in memory)", value,
                  COW_MAX_CHUNK_SECTORS * COW_SECTOR_SIZE);
    return -1;
  }
  chunk_sectors = bytes / COW_SECTOR_SIZE;
  return 0;
}

static int
snapcow_config (const char *key, const char *value)
{
  if (strcmp (key, "origin") == 0) {
    free (origin_path);
    /* An NBD URI stays as it is; a file name becomes absolute before
     * nbdkit changes directory.
     */
    if (origin_is_nbd_uri (value)) {
      origin_path = strdup (value);
      if (origin_path == NULL)
        nbdkit_error ("strdup: %s", cow_strerror (errno));
    }
    else {
      origin_path = realpath (value, NULL);
      if (origin_path == NULL)
        nbdkit_error ("origin=%s: %s", value, cow_strerror (errno));
    }
    return origin_path ? 0 : -1;
  }
  if (strcmp (key, "cow") == 0) {
    free (cow_path);
    cow_path = nbdkit_absolute_path (value);
    return cow_path ? 0 : -1;
  }
  if (strcmp (key, "chunk-size") == 0)
    return parse_chunk_size (value);
  if (strcmp (key, "commit") == 0) {
    if (strcmp (value, "flush") == 0)
      commit_each_copy = false;
    else if (strcmp (value, "copy") == 0)
      commit_each_copy = true;
    else {
      nbdkit_error ("commit=%s: must be 'flush' or 'copy'", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "overflow") == 0) {
    if (strcmp (value, "enospc") == 0)
      invalidate_on_overflow = false;
    else if (strcmp (value, "invalidate") == 0)
      invalidate_on_overflow = true;
    else {
      nbdkit_error ("overflow=%s: must be 'enospc' or 'invalidate'", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "cow-size") == 0) {
    int64_t r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (r == 0) {
      nbdkit_error ("cow-size=%s: must be more than zero", value);
      return -1;
    }
    cow_size = r;
    return 0;
  }
  nbdkit_error ("unknown parameter '%s'", key);
  return -1;
}

static int
snapcow_config_complete (void)
{
  if (origin_path == NULL) {
    nbdkit_error ("the origin parameter is missing: "
                  "give origin=FILE (or the file name alone)");
    return -1;
  }
  if (cow_path == NULL) {
    nbdkit_error ("the cow parameter is missing: give cow=FILE for the "
                  "COW store (created if it does not exist)");
    return -1;
  }
  return 0;
}

#define snapcow_config_help \
  "[origin=]FILE|URI    (required) The origin image, opened read-only:\n" \
  "                     a file, a block device or an NBD URI.\n" \
  "cow=FILE             (required) The COW store (dm-snapshot format),\n" \
  "                     created if missing.\n" \
  "chunk-size=SIZE      Chunk size of a new store (default 16K).\n" \
  "cow-size=SIZE        Largest size a COW file may grow to.\n" \
  "overflow=enospc|invalidate\n" \
  "                     When the store is full: fail the writes that need a\n" \
  "                     new chunk (default), or invalidate the store.\n" \
  "commit=flush|copy    When new records are committed: at flush and FUA\n" \
  "                     (default), or before each copying write returns."

static void
snapcow_dump_plugin (void)
{
  printf ("snapcow_default_chunk_size=%d\n",
          COW_DEFAULT_CHUNK_SECTORS * COW_SECTOR_SIZE);
  printf ("snapcow_max_chunk_size=%d\n",
          COW_MAX_CHUNK_SECTORS * COW_SECTOR_SIZE);
}

/* Open a file or block device and check its type; on failure say which
 * and why.  Returns the fd, or -1.
 */
static int
open_file (const char *what, const char *path, int flags, struct stat *st)
{
  int fd = open (path, flags | O_CLOEXEC);

  if (fd == -1) {
    nbdkit_error ("cannot open the %s %s: %s", what, path,
                  cow_strerror (errno));
    return -1;
  }
  if (fstat (fd, st) == -1) {
    nbdkit_error ("cannot stat the %s %s: %s", what, path,
                  cow_strerror (errno));
    close (fd);
    return -1;
  }
  if (!S_ISREG (st->st_mode) && !S_ISBLK (st->st_mode)) {
    nbdkit_error ("the %s %s is a %s, not a regular file or a block device",
                  what, path, S_ISDIR (st->st_mode) ? "directory"
                  : S_ISCHR (st->st_mode) ? "character device"
                  : S_ISFIFO (st->st_mode) ? "pipe" : "special file");
    close (fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

/* The backend over fd, which it takes over (closed on failure too). */
static struct cow_io *
fd_backend (const char *what, const char *path, int fd)
{
  struct cow_io *io = cow_io_fd_new (fd);

  if (io == NULL) {
    nbdkit_error ("cannot open the %s %s: %s", what, path,
                  cow_strerror (errno));
    close (fd);
  }
  return io;
}

/* Writing the store over the origin would destroy both: the first
 * writable connection writes the header over the origin's first chunk
 * whenever that chunk starts with zeroes (an ext4 image, an LVM PV).
 * Compared as opened files, so that every spelling of one file (hard
 * and symbolic links, relative names, bind mounts, two nodes of one
 * block device) is caught.
 */
static int
check_not_origin (const struct stat *cow_st)
{
  if (have_origin_st && cow_same_file (cow_st, &origin_st)) {
    nbdkit_error ("cow=%s and the origin %s are the same file: the store "
                  "would be written over the origin", cow_path, origin_path);
    return -1;
  }
  return 0;
}

/* Take the store's lock: a second server on the same store is refused. */
static int
lock_cow (int fd, bool exclusive)
{
  int r = cow_lock_fd (fd, exclusive);

  if (r == -EBUSY) {
    nbdkit_error ("the COW store %s is in use by another process "
                  "(another nbdkit snapcow?): only one server may open it",
                  cow_path);
    return -1;
  }
  if (r < 0) {
    nbdkit_error ("cannot lock the COW store %s: %s", cow_path,
                  cow_strerror (-r));
    return -1;
  }
  return 0;
}

static struct cow_store_params
store_params (bool readonly)
{
  return (struct cow_store_params) {
    .chunk_sectors = chunk_sectors,
    .max_size = cow_size,
    .readonly = readonly,
    .commit_each_copy = commit_each_copy,
    .invalidate_on_overflow = invalidate_on_overflow,
    .message = message,
    .cow_name = cow_path,
    .origin_name = origin_path,
  };
}

static int
open_store (struct cow_io *io, bool readonly, struct cow_store **storep)
{
  struct cow_store_params params = store_params (readonly);

  /* lib/ has said why, in one line. */
  return cow_store_open (io, origin_io, &params, storep) < 0 ? -1 : 0;
}

static int
open_origin (void)
{
  struct cow_store_params params = store_params (true);
  int fd;

  if (origin_is_nbd_uri (origin_path))
    origin_io = origin_nbd_open (origin_path);
  else {
    fd = open_file ("origin", origin_path, O_RDONLY, &origin_st);
    if (fd == -1)
      return -1;
    have_origin_st = true;
    origin_io = fd_backend ("origin", origin_path, fd);
  }
  if (origin_io == NULL)
    return -1;
  /* cow_store_open checks the origin too, but with no store yet
   * nothing calls it before the first writable connection.
   */
  return cow_origin_check (origin_io, &params) < 0 ? -1 : 0;
}

/* The store does not exist yet: the first writable connection will
 * create it, so its directory must be there and writable now, or every
 * connection would fail.  (The directory could change before then: a
 * harmless race, as in nbdkit's file plugin.)
 */
static int
check_cow_dir (void)
{
  char *copy = strdup (cow_path);
  const char *dir;
  struct stat st;
  int r = -1;

  if (copy == NULL) {
    nbdkit_error ("strdup: %s", cow_strerror (errno));
    return -1;
  }
  dir = dirname (copy);
  if (stat (dir, &st) == -1)
    nbdkit_error ("cow=%s: cannot create the store: the directory %s: %s",
                  cow_path, dir, cow_strerror (errno));
  else if (!S_ISDIR (st.st_mode))
    nbdkit_error ("cow=%s: cannot create the store: %s is not a directory",
                  cow_path, dir);
  else if (access (dir, W_OK | X_OK) == -1)
    nbdkit_error ("cow=%s: cannot create the store in the directory %s: %s",
                  cow_path, dir, cow_strerror (errno));
  else
    r = 0;
  free (copy);
  return r;
}

/* The store exists: open, lock, load and validate it read-only. */
static int
open_existing_store (void)
{
  struct stat st;
  int fd;

  /* As nbdkit's file plugin does, a store this user cannot write is
   * served read-only rather than refused: -r is not known yet.
   */
  if (access (cow_path, W_OK) == -1) {
    cow_unwritable = true;
    /* A warning in the form message() gives lib/'s. */
    nbdkit_error ("warning: %s: the COW store cannot be written (%s): "
                  "serving it read-only", cow_path, cow_strerror (errno));
  }
  fd = open_file ("COW store", cow_path, cow_unwritable ? O_RDONLY : O_RDWR,
                  &st);
  if (fd == -1)
    return -1;
  if (check_not_origin (&st) == -1 ||
      lock_cow (fd, !cow_unwritable) == -1) {
    close (fd);
    return -1;
  }
  cow_io = fd_backend ("COW store", cow_path, fd);
  if (cow_io == NULL)
    return -1;
  return open_store (cow_io, true, &store);
}

static int
snapcow_get_ready (void)
{
  struct stat st;

  if (open_origin () == -1)
    return -1;
  if (stat (cow_path, &st) == 0)
    return open_existing_store ();
  if (errno != ENOENT && errno != ENOTDIR) {
    nbdkit_error ("cannot stat the COW store %s: %s", cow_path,
                  cow_strerror (errno));
    return -1;
  }
  return check_cow_dir ();
}

/* The first writable connection, with no store at start-up: create it,
 * or open it if it appeared since (a second server, started before the
 * first created it, gets the store, and the lock refuses it while the
 * first runs).  On failure nothing is kept and the next connection
 * tries again.  open_lock held.
 */
static int
create_store (void)
{
  mode_t mode = cow_new_store_mode (have_origin_st ? &origin_st : NULL);
  struct cow_io *io;
  struct stat st;
  int fd;

  fd = open (cow_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd == -1 && errno == EEXIST)
    fd = open (cow_path, O_RDWR | O_CLOEXEC);
  if (fd == -1) {
    nbdkit_error ("cannot create the COW store %s: %s", cow_path,
                  cow_strerror (errno));
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    nbdkit_error ("cannot stat the COW store %s: %s", cow_path,
                  cow_strerror (errno));
    close (fd);
    return -1;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    nbdkit_error ("the COW store %s is not a regular file or a block device",
                  cow_path);
    close (fd);
    return -1;
  }
  /* A link to the origin made since start-up. */
  if (check_not_origin (&st) == -1 || lock_cow (fd, true) == -1) {
    close (fd);
    return -1;
  }
  io = fd_backend ("COW store", cow_path, fd);
  if (io == NULL)
    return -1;
  if (open_store (io, false, &store) == -1) {
    cow_io_close (io);
    return -1;
  }
  cow_io = io;
  return 0;
}

static void *
snapcow_open (int readonly)
{
  int r = 0;

  pthread_mutex_lock (&open_lock);
  if (store == NULL && readonly) {
    nbdkit_error ("the COW store %s does not exist, and read-only (-r) "
                  "creates nothing: there is no snapshot to serve", cow_path);
    r = -1;
  }
  else if (!readonly && !writable && !cow_unwritable) {
    if (store == NULL)
      r = create_store ();
    else if (cow_store_set_writable (store) < 0)
      r = -1;
    writable = r == 0;
  }
  pthread_mutex_unlock (&open_lock);
  return r == 0 ? &store : NULL;        /* no per-connection state */
}

static void
snapcow_cleanup (void)
{
  /* A clean stop (SIGTERM, SIGINT, last client gone with -s or
   * --exit-with-parent): commit everything pending.
   */
  if (store && cow_store_close (store) < 0)
    nbdkit_error ("%s: the final commit failed: records written since the "
                  "last flush may be lost", cow_path);
  store = NULL;
  cow_io_close (cow_io);
  cow_io_close (origin_io);
  cow_io = origin_io = NULL;
}

static int
snapcow_can_write (void *handle)
{
  return !cow_unwritable;
}

static int64_t
snapcow_get_size (void *handle)
{
  return cow_store_origin_size (store);
}

static int
snapcow_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                    uint32_t *maximum)
{
  *minimum = 1;
  *preferred = cow_store_chunk_sectors (store) * COW_SECTOR_SIZE;
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

/* A fast zero fails with ENOTSUP where it would copy from the origin
 * (lib/snapshot.c decides before doing anything).
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

/* Prefetch from where each chunk lives (lib/snapshot.c), so that
 * nbdkit's readahead filter and clients' NBD_CMD_CACHE reach the
 * files.
 */
static int
snapcow_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* What nbdinfo shows: both files, the chunk size, and the usage line as
 * dmsetup status would print it, as of the connection.
 */
static const char *
snapcow_export_description (void *handle)
{
  char line[COW_USAGE_STATUS_LEN];
  struct cow_usage u;

  cow_store_usage (store, &u);
  cow_usage_status (&u, line, sizeof line);
  return nbdkit_printf_intern ("snapshot of %s, COW store %s, chunk size "
                               "%" PRIu64 ", usage %s", origin_path,
                               cow_path,
                               (uint64_t) u.chunk_sectors * COW_SECTOR_SIZE,
                               line);
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
  return result (cow_snapshot_pread (store, buf, count, offset));
}

static int
snapcow_pwrite (void *handle, const void *buf, uint32_t count,
                uint64_t offset, uint32_t flags)
{
  return result (cow_snapshot_pwrite (store, buf, count, offset,
                                      flags & NBDKIT_FLAG_FUA));
}

static int
snapcow_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  /* NBDKIT_FLAG_MAY_TRIM changes nothing: whole chunks are punched
   * anyway.
   */
  return result (cow_snapshot_zero (store, count, offset,
                                    flags & NBDKIT_FLAG_FUA,
                                    flags & NBDKIT_FLAG_FAST_ZERO));
}

static int
snapcow_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  /* As the kernel's discard: frees the space of copied chunks, never
   * allocates (a trimmed range's contents are unspecified in NBD).
   */
  return result (cow_snapshot_trim (store, count, offset,
                                    flags & NBDKIT_FLAG_FUA));
}

static int
snapcow_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return result (cow_snapshot_cache (store, count, offset));
}

static int
snapcow_flush (void *handle, uint32_t flags)
{
  return result (cow_store_commit (store));
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
  /* With REQ_ONE the first extent is enough; nbdkit drops the rest. */
  return result (cow_snapshot_extents (store, count, offset, add_extent,
                                       extents));
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
