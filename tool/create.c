/* create.c: snapcow create: make a new, empty store on a new file, or
 * on an existing file or device whose first chunk is zeroed.  It never
 * overwrites a store or other data.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static const char create_usage[] =
  "Usage: snapcow create [--chunk-size=SIZE] [--size=SIZE] COW\n"
  "\n"
  "Make COW a new, empty dm-snapshot persistent store.  COW is created if\n"
  "it does not exist; an existing file or device must start with zeroes.\n"
  "\n"
  "  --chunk-size=SIZE  chunk size, a power of two from 512 to 1M\n"
  "                     (default 16K)\n"
  "  --size=SIZE        make a file at least SIZE bytes long (default:\n"
  "                     two chunks; nbdkit snapcow grows it on demand)\n"
  "  --help             this text\n";

int
cmd_create (int argc, char **argv)
{
  static const struct option opts[] = {
    { "chunk-size", required_argument, NULL, 'c' },
    { "size", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  struct cow_store_params p = { .message = tool_message };
  struct cow_header_info h;
  struct cow_store *s;
  struct cow_io *cow;
  int64_t chunk = COW_DEFAULT_CHUNK_SECTORS * COW_SECTOR_SIZE, size = 0;
  const char *path, *why;
  int c, fd, r;

  optind = 1;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
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
    case 'h':
      return usage (create_usage, true);
    default:
      return usage (create_usage, false);
    }
  }
  if (argc - optind != 1)
    return usage (create_usage, false);
  path = argv[optind];
  p.chunk_sectors = chunk / COW_SECTOR_SIZE;
  p.message_opaque = (void *) path;

  cow = open_device (path, O_RDWR | O_CREAT, &fd);
  if (cow == NULL)
    return EXIT_FAILED;
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
  if (size > 0 && (r = cow->ops->grow (cow, size)) < 0) {
    tool_error (path, "--size=%" PRIi64 ": %s", size,
                r == -ENOTSUP ? "a block device cannot grow" : strerror (-r));
    goto fail;
  }
  if (cow_store_open (cow, NULL, &p, &s) < 0 || cow_store_close (s) < 0)
    goto fail;
  cow_io_close (cow);
  return EXIT_OK;

 fail:
  cow_io_close (cow);
  return EXIT_FAILED;
}
