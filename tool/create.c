/* create.c: snapcow create: make a new, empty store on a new file, or
 * on an existing file or device whose first chunk is zeroed.  It never
 * overwrites a store, and never other data that libblkid recognises
 * (a filesystem, partition table, ...) unless --force.
 *
 * A file it creates gets the origin's read and write bits (--origin),
 * never wider than 0644, or 0600 without an origin: a store holds
 * copies of the origin's data (lib/files.c).  An existing file keeps
 * its mode.  A file it created is removed again if it fails.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

static const char create_usage[] =
  "Usage: snapcow create [--chunk-size=SIZE] [--size=SIZE] [--origin=FILE]\n"
  "                      [--force] COW\n"
  "\n"
  "Make COW a new, empty dm-snapshot persistent store.  COW is created if\n"
  "it does not exist; an existing file or device must start with zeroes.\n"
  "\n"
  "  --chunk-size=SIZE  chunk size, a power of two from 512 to 1M\n"
  "                     (default 16K)\n"
  "  --size=SIZE        make a file at least SIZE bytes long (default:\n"
  "                     two chunks; nbdkit snapcow grows it on demand)\n"
  "  --origin=FILE      the image the store is for: a new COW file gets\n"
  "                     its read and write bits (at most 0644; default\n"
  "                     0600), and the chunk size is checked against its\n"
  "                     block size\n"
  "  --force            initialise COW even over a filesystem, partition\n"
  "                     table or other signature found on it\n"
  "  --help             this text\n";

/* Open the store, creating it with mode if it does not exist.  Sets
 * *created when this call made the file.
 */
static struct cow_io *
open_or_create (const char *path, unsigned mode, int *fdp, bool *created)
{
  int fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  struct cow_io *io;

  *created = false;
  if (fd == -1) {
    if (errno != EEXIST) {
      tool_error (path, "%m");
      return NULL;
    }
    return open_device (path, O_RDWR, fdp);
  }
  io = cow_io_fd_new (fd);
  if (io == NULL) {
    tool_error (path, "%m");
    close (fd);
    unlink (path);
    return NULL;
  }
  *created = true;
  *fdp = fd;
  return io;
}

int
cmd_create (int argc, char **argv)
{
  static const struct option opts[] = {
    { "chunk-size", required_argument, NULL, 'c' },
    { "size", required_argument, NULL, 's' },
    { "origin", required_argument, NULL, 'o' },
    { "force", no_argument, NULL, 'f' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  struct cow_store_params p = { .message = tool_message };
  struct cow_header_info h;
  struct cow_store *s;
  struct cow_io *cow = NULL, *origin = NULL;
  struct stat origin_st, cow_st;
  int64_t chunk = COW_DEFAULT_CHUNK_SECTORS * COW_SECTOR_SIZE, size = 0;
  const char *path, *origin_path = NULL, *why;
  bool created = false;
  int c, fd, origin_fd, r;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      chunk = parse_size (optarg);
      if (chunk < COW_SECTOR_SIZE || chunk % COW_SECTOR_SIZE ||
          cow_check_chunk_sectors (chunk / COW_SECTOR_SIZE, &why) < 0) {
        tool_error (NULL, "--chunk-size=%s: must be a power of two from "
                    "512 to 1M", optarg);
        return EXIT_USAGE;
      }
      break;
    case 's':
      size = parse_size (optarg);
      if (size <= 0) {
        tool_error (NULL, "--size=%s: not a size", optarg);
        return EXIT_USAGE;
      }
      break;
    case 'o':
      if (*optarg == '\0')
        return usage_error ("option '--origin' needs a file name");
      origin_path = optarg;
      break;
    case 'f':
      p.overwrite_signatures = true;
      break;
    case 'h':
      return usage (create_usage, true);
    default:
      return bad_option (c, argv, opts);
    }
  }
  path = one_operand (argc, argv);
  if (path == NULL)
    return EXIT_USAGE;
  p.chunk_sectors = chunk / COW_SECTOR_SIZE;
  /* Messages come out as "snapcow create: COW: ..."; those about the
   * origin name it after that.
   */
  p.message_opaque = (void *) path;
  p.origin_name = origin_path;

  if (origin_path) {
    origin = open_device (origin_path, O_RDONLY, &origin_fd);
    if (origin == NULL)
      return EXIT_FAILED;
    if (fstat (origin_fd, &origin_st) == -1) {
      tool_error (origin_path, "%m");
      goto fail;
    }
  }
  cow = open_or_create (path, cow_new_store_mode (origin ? &origin_st : NULL),
                        &fd, &created);
  if (cow == NULL)
    goto fail;
  if (origin && fstat (fd, &cow_st) == 0 &&
      cow_same_file (&origin_st, &cow_st)) {
    tool_error (path, "is the origin %s itself: a store cannot hold the "
                "snapshot of its own file", origin_path);
    goto fail;
  }
  r = cow_lock_fd (fd, true);
  if (r == -EBUSY) {
    tool_error (path, "in use by another process");
    goto fail;
  }
  if (r < 0) {
    tool_error (path, "cannot lock: %s", strerror (-r));
    goto fail;
  }
  r = cow_read_header (cow, &h);
  if (r < 0) {
    tool_error (path, "cannot read: %s", strerror (-r));
    goto fail;
  }
  if (h.magic != 0) {
    tool_error (path, "%s: not overwriting it",
                h.magic == COW_SNAP_MAGIC ? "already a COW store"
                : "does not start with zeroes (not a new store)");
    goto fail;
  }
  /* Growing to 0 changes nothing: it only asks whether --size can apply. */
  if (size > 0 && (r = cow->ops->grow (cow, 0)) < 0) {
    tool_error (path, "--size=%" PRIi64 ": %s", size,
                r == -ENOTSUP ? "a block device cannot grow" : strerror (-r));
    goto fail;
  }
  /* The store checks the chunk size against both block sizes and probes
   * for signatures before it writes anything, so a refusal leaves COW as
   * it was; --size is applied only after.
   */
  if (cow_store_open (cow, origin, &p, &s) < 0 || cow_store_close (s) < 0)
    goto fail;
  if (size > 0 && (r = cow->ops->grow (cow, size)) < 0) {
    tool_error (path, "--size=%" PRIi64 ": %s", size, strerror (-r));
    goto fail;
  }
  cow_io_close (cow);
  cow_io_close (origin);
  return EXIT_OK;

 fail:
  /* Only our own new file; the store's lock is dropped with it. */
  if (created)
    unlink (path);
  cow_io_close (cow);
  cow_io_close (origin);
  return EXIT_FAILED;
}
