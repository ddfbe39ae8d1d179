/* check.c: snapcow check: every problem in a store, with its area and
 * record, not just the first (lib/check.c does the work).  Exit 0 when
 * no error was found (warnings allowed), 1 when one was, 2 when the
 * store could not be read at all.
 */
#include <config.h>

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "tool.h"

static const char check_usage[] =
  "Usage: snapcow check [--origin=ORIGIN] COW\n"
  "\n"
  "Check every header field and record of the store, and list every\n"
  "problem with its area and record.  Stray data that the kernel ignores\n"
  "is a warning.  Exit status: 0 no errors, 1 errors found, 2 the store\n"
  "cannot be read.\n"
  "\n"
  "  --origin=ORIGIN  also check old_chunk against the origin's size\n"
  "  --help           this text\n";

static void
report (void *opaque, enum cow_severity sev, const char *msg)
{
  printf ("%s: %s\n", sev == COW_PROBLEM_ERROR ? "error" : "warning", msg);
}

int
cmd_check (int argc, char **argv)
{
  static const struct option opts[] = {
    { "origin", required_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  struct cow_check_summary sum;
  struct cow_io *cow, *origin;
  const char *path, *origin_path = NULL;
  uint64_t origin_size = 0;
  int c, r;

  optind = 1;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'o': origin_path = optarg; break;
    case 'h': return usage (check_usage, true);
    default: return usage (check_usage, false);
    }
  }
  if (argc - optind != 1)
    return usage (check_usage, false);
  path = argv[optind];

  if (origin_path) {
    origin = open_device (origin_path, O_RDONLY, NULL);
    if (origin == NULL)
      return EXIT_USAGE;
    r = cow_io_get_size (origin, &origin_size);
    cow_io_close (origin);
    if (r < 0 || origin_size == 0) {
      tool_error (origin_path, "cannot get the origin's size");
      return EXIT_USAGE;
    }
  }
  cow = open_device (path, O_RDONLY, NULL);
  if (cow == NULL)
    return EXIT_USAGE;
  r = cow_check (cow, origin_size, report, NULL, &sum);
  cow_io_close (cow);
  if (r < 0) {
    tool_error (path, "cannot read the store: %s", strerror (-r));
    return EXIT_USAGE;
  }
  if (sum.is_new)
    printf ("%s: a new store (magic 0): no records\n", path);
  else
    printf ("%s: %" PRIu64 " records in %" PRIu64 " areas, chunk size %"
            PRIu64 ": %" PRIu64 " errors, %" PRIu64 " warnings\n", path,
            sum.records, sum.areas,
            (uint64_t) sum.chunk_sectors * COW_SECTOR_SIZE,
            sum.errors, sum.warnings);
  return sum.errors ? EXIT_FAILED : EXIT_OK;
}
