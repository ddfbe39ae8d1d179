/* check.c: snapcow check: every problem in a store, with its area and
 * record, not just the first (lib/check.c does the work).  Exit 0 when
 * no error was found (warnings allowed), 1 when one was or a running
 * server holds the store (without --force), 2 when the store could not
 * be read at all.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "tool.h"

static const char check_usage[] =
  "Usage: snapcow check [--force] [--origin=ORIGIN] COW\n"
  "\n"
  "Check every header field and record of the store, and list every\n"
  "problem with its area and record.  Stray data that the kernel ignores\n"
  "is a warning.  Exit status: 0 no errors, 1 errors found (or a server\n"
  "is using the store), 2 the store cannot be read.\n"
  "\n"
  "  --force          check a store that a running server holds (the\n"
  "                   result may show problems that are not there)\n"
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
    { "force", no_argument, NULL, 'f' },
    { "origin", required_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  enum in_use policy = IN_USE_REFUSE;
  struct cow_check_summary sum;
  struct cow_io *origin;
  struct opened o;
  const char *path, *origin_path = NULL;
  uint64_t origin_size = 0;
  int c, r;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case 'f': policy = IN_USE_FORCE; break;
    case 'o':
      if (*optarg == '\0')
        return usage_error ("option '--origin' needs a file name");
      origin_path = optarg;
      break;
    case 'h': return usage (check_usage, true);
    default: return bad_option (c, argv, opts);
    }
  }
  path = one_operand (argc, argv);
  if (path == NULL)
    return EXIT_USAGE;

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
  r = open_cow (path, policy, &o);
  if (r == -EBUSY)
    return EXIT_FAILED;
  if (r < 0)
    return EXIT_USAGE;
  r = cow_check (o.cow, origin_size, report, NULL, &sum);
  close_store (&o);
  if (r < 0) {
    tool_error (path, "cannot read the store: %s", strerror (-r));
    return EXIT_USAGE;
  }
  if (sum.is_new)
    printf ("%s: a new store (magic 0): no records\n", path);
  else
    printf ("%s: %" PRIu64 " record%s in %" PRIu64 " area%s, chunk size %"
            PRIu64 ": %" PRIu64 " error%s, %" PRIu64 " warning%s\n", path,
            sum.records, plural_s (sum.records),
            sum.areas, plural_s (sum.areas),
            (uint64_t) sum.chunk_sectors * COW_SECTOR_SIZE,
            sum.errors, plural_s (sum.errors),
            sum.warnings, plural_s (sum.warnings));
  return sum.errors ? EXIT_FAILED : EXIT_OK;
}
