/* info.c: snapcow info: the header, the geometry and the usage line,
 * the last exactly as the kernel's `dmsetup status` prints it for the
 * same store ("Invalid" for an invalidated one).
 */
#include <config.h>

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "tool.h"

static const char info_usage[] =
  "Usage: snapcow info [--json] COW\n"
  "\n"
  "Print the store's header, geometry and usage.  The usage line is what\n"
  "the kernel's `dmsetup status` prints for it: allocated/total metadata,\n"
  "in sectors, or Invalid.\n"
  "\n"
  "  --json   print a JSON object\n"
  "  --help   this text\n";

struct facts {
  const char *status;           /* "new", "Invalid" or "valid" */
  struct cow_header_info h;
  struct cow_usage u;
  bool have_usage;
};

static void
print_text (const char *path, const struct facts *f)
{
  printf ("file: %s\n", path);
  if (strcmp (f->status, "new") == 0) {
    printf ("status: new (magic 0: an empty store, initialised on "
            "first use)\n");
    return;
  }
  printf ("magic: 0x%08" PRIx32 "\n", f->h.magic);
  printf ("valid: %" PRIu32 "\n", f->h.valid);
  printf ("version: %" PRIu32 "\n", f->h.version);
  printf ("chunk_size: %" PRIu64 "\n",
          (uint64_t) f->h.chunk_sectors * COW_SECTOR_SIZE);
  printf ("chunk_sectors: %" PRIu32 "\n", f->h.chunk_sectors);
  printf ("exceptions_per_area: %" PRIu32 "\n",
          f->h.chunk_sectors * (COW_SECTOR_SIZE / 16));
  if (f->have_usage) {
    printf ("records: %" PRIu64 "\n", f->u.records);
    printf ("areas: %" PRIu64 "\n", f->u.current_area + 1);
    printf ("next_free_chunk: %" PRIu64 "\n",
            f->u.allocated_sectors / f->u.chunk_sectors);
    printf ("size: %" PRIu64 "\n", f->u.total_sectors * COW_SECTOR_SIZE);
    printf ("usage: %" PRIu64 "/%" PRIu64 " %" PRIu64 "\n",
            f->u.allocated_sectors, f->u.total_sectors,
            f->u.metadata_sectors);
  }
  else
    printf ("usage: Invalid\n");
}

static void
print_json (const char *path, const struct facts *f)
{
  printf ("{\n  \"file\": ");
  json_string (stdout, path);
  printf (",\n  \"status\": \"%s\"", f->status);
  if (strcmp (f->status, "new") != 0) {
    printf (",\n  \"magic\": %" PRIu32 ",\n  \"valid\": %" PRIu32
            ",\n  \"version\": %" PRIu32 ",\n  \"chunk_size\": %" PRIu64
            ",\n  \"chunk_sectors\": %" PRIu32
            ",\n  \"exceptions_per_area\": %" PRIu32,
            f->h.magic, f->h.valid, f->h.version,
            (uint64_t) f->h.chunk_sectors * COW_SECTOR_SIZE,
            f->h.chunk_sectors, f->h.chunk_sectors * (COW_SECTOR_SIZE / 16));
  }
  if (f->have_usage)
    printf (",\n  \"records\": %" PRIu64 ",\n  \"areas\": %" PRIu64
            ",\n  \"next_free_chunk\": %" PRIu64 ",\n  \"size\": %" PRIu64
            ",\n  \"allocated_sectors\": %" PRIu64
            ",\n  \"total_sectors\": %" PRIu64
            ",\n  \"metadata_sectors\": %" PRIu64
            ",\n  \"usage\": \"%" PRIu64 "/%" PRIu64 " %" PRIu64 "\"",
            f->u.records, f->u.current_area + 1,
            f->u.allocated_sectors / f->u.chunk_sectors,
            f->u.total_sectors * COW_SECTOR_SIZE,
            f->u.allocated_sectors, f->u.total_sectors,
            f->u.metadata_sectors, f->u.allocated_sectors,
            f->u.total_sectors, f->u.metadata_sectors);
  else if (strcmp (f->status, "Invalid") == 0)
    printf (",\n  \"usage\": \"Invalid\"");
  printf ("\n}\n");
}

int
cmd_info (int argc, char **argv)
{
  static const struct option opts[] = {
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  struct facts f = { .status = "valid" };
  struct cow_io *cow;
  struct opened o;
  const char *path;
  bool json = false;
  int c, r;

  optind = 1;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'j': json = true; break;
    case 'h': return usage (info_usage, true);
    default: return usage (info_usage, false);
    }
  }
  if (argc - optind != 1)
    return usage (info_usage, false);
  path = argv[optind];

  cow = open_device (path, O_RDONLY, NULL);
  if (cow == NULL)
    return EXIT_FAILED;
  r = cow_read_header (cow, &f.h);
  cow_io_close (cow);
  if (r < 0) {
    tool_error (path, "cannot read the header: %s", strerror (-r));
    return EXIT_FAILED;
  }
  if (f.h.magic == 0)
    f.status = "new";
  else if (f.h.magic == COW_SNAP_MAGIC && f.h.version == COW_DISK_VERSION &&
           f.h.valid == 0)
    /* The kernel activates it and prints Invalid without reading the
     * areas; so do we.
     */
    f.status = "Invalid";
  else {
    if (open_store_readonly (path, NULL, &o) < 0)
      return EXIT_FAILED;
    cow_store_usage (o.store, &f.u);
    f.have_usage = true;
    close_store (&o);
  }
  if (json)
    print_json (path, &f);
  else
    print_text (path, &f);
  return EXIT_OK;
}
