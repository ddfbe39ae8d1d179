/* info.c: snapcow info: the header, the geometry and the usage line,
 * the last exactly as the kernel's `dmsetup status` prints it for the
 * same store ("Invalid" for an invalidated one).
 *
 * A valid store is opened and validated as the plugin opens it.  An
 * invalidated one cannot be (cow_store_open refuses it), so its counts
 * come from cow_check's walk of the areas instead: what the records on
 * disk still say.  A store that a running server holds is read all the
 * same, with a warning, and "in_use" says so: a script asking for the
 * JSON still gets it (exit status 0).
 */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "tool.h"

static const char info_usage[] =
  "Usage: snapcow info [--json] COW\n"
  "\n"
  "Print the store's header, geometry and usage.  The usage line is what\n"
  "the kernel's `dmsetup status` prints for it: allocated/total metadata,\n"
  "in sectors, or Invalid.  A store that a running server holds is read\n"
  "all the same, with a warning (in_use: yes).  While a server in\n"
  "mode=merge merges it, records and usage fall with each step (usage is\n"
  "the kernel's snapshot-merge status line); 0 records: merged.\n"
  "\n"
  "  --json   print a JSON object\n"
  "  --help   this text\n";

/* The figures, from cow_store_usage or from cow_check. */
struct counts {
  uint64_t records, areas;
  chunk_t next_free;
  uint64_t size;                /* bytes */
  uint64_t allocated_sectors, total_sectors, metadata_sectors;
};

struct facts {
  const char *status;           /* "new", "Invalid" or "valid" */
  bool in_use;
  struct cow_header_info h;
  struct counts n;
  bool have_counts;
};

/* The usage line as the kernel's dmsetup status prints it. */
static void
usage_line (const struct facts *f, char *buf, size_t len)
{
  struct cow_usage u = {
    .allocated_sectors = f->n.allocated_sectors,
    .total_sectors = f->n.total_sectors,
    .metadata_sectors = f->n.metadata_sectors,
    .valid = strcmp (f->status, "valid") == 0,
  };

  cow_usage_status (&u, buf, len);
}

static void
print_text (const char *path, const struct facts *f)
{
  char line[COW_USAGE_STATUS_LEN];

  printf ("file: %s\n", path);
  printf ("in_use: %s\n", f->in_use ? "yes" : "no");
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
  if (f->have_counts) {
    printf ("records: %" PRIu64 "\n", f->n.records);
    printf ("areas: %" PRIu64 "\n", f->n.areas);
    printf ("next_free_chunk: %" PRIu64 "\n", f->n.next_free);
    printf ("size: %" PRIu64 "\n", f->n.size);
  }
  usage_line (f, line, sizeof line);
  printf ("usage: %s\n", line);
}

static void
print_json (const char *path, const struct facts *f)
{
  char line[COW_USAGE_STATUS_LEN];

  printf ("{\n  \"file\": ");
  json_string (stdout, path);
  printf (",\n  \"status\": \"%s\"", f->status);
  printf (",\n  \"in_use\": %s", f->in_use ? "true" : "false");
  if (strcmp (f->status, "new") != 0) {
    printf (",\n  \"magic\": %" PRIu32 ",\n  \"valid\": %" PRIu32
            ",\n  \"version\": %" PRIu32 ",\n  \"chunk_size\": %" PRIu64
            ",\n  \"chunk_sectors\": %" PRIu32
            ",\n  \"exceptions_per_area\": %" PRIu32,
            f->h.magic, f->h.valid, f->h.version,
            (uint64_t) f->h.chunk_sectors * COW_SECTOR_SIZE,
            f->h.chunk_sectors, f->h.chunk_sectors * (COW_SECTOR_SIZE / 16));
  }
  if (f->have_counts)
    printf (",\n  \"records\": %" PRIu64 ",\n  \"areas\": %" PRIu64
            ",\n  \"next_free_chunk\": %" PRIu64 ",\n  \"size\": %" PRIu64
            ",\n  \"allocated_sectors\": %" PRIu64
            ",\n  \"total_sectors\": %" PRIu64
            ",\n  \"metadata_sectors\": %" PRIu64,
            f->n.records, f->n.areas, f->n.next_free, f->n.size,
            f->n.allocated_sectors, f->n.total_sectors,
            f->n.metadata_sectors);
  if (strcmp (f->status, "new") != 0) {
    usage_line (f, line, sizeof line);
    printf (",\n  \"usage\": \"%s\"", line);
  }
  printf ("\n}\n");
}

/* A valid store: validated and loaded as the plugin does it. */
static int
counts_from_store (const char *path, struct opened *o, struct counts *n)
{
  struct cow_store_params p = {
    .readonly = true, .message = tool_message, .message_opaque = (void *) path,
  };
  struct cow_usage u;

  if (cow_store_open (o->cow, NULL, &p, &o->store) < 0)
    return -1;
  cow_store_usage (o->store, &u);
  *n = (struct counts) {
    .records = u.records,
    .areas = u.current_area + 1,
    .next_free = u.allocated_sectors / u.chunk_sectors,
    .size = u.total_sectors * COW_SECTOR_SIZE,
    .allocated_sectors = u.allocated_sectors,
    .total_sectors = u.total_sectors,
    .metadata_sectors = u.metadata_sectors,
  };
  return 0;
}

static void
ignore_problem (void *opaque, enum cow_severity sev, const char *msg)
{
}

/* An invalidated store: the same figures from a walk of its areas
 * (cow_check trusts nothing, and goes on past the valid=0 it reports).
 * The units are those of cow-format.md, "Usage figures".  Returns 1
 * when the header leaves nothing to count (an unusable chunk size).
 */
static int
counts_from_check (const char *path, struct opened *o, struct counts *n)
{
  struct cow_check_summary sum;
  uint64_t size;
  int r;

  r = cow_io_get_size (o->cow, &size);
  if (r == 0)
    r = cow_check (o->cow, 0, ignore_problem, NULL, &sum);
  if (r < 0) {
    tool_error (path, "cannot read the areas: %s", strerror (-r));
    return -1;
  }
  if (sum.chunk_sectors == 0)   /* an unusable chunk size: no areas */
    return 1;
  *n = (struct counts) {
    .records = sum.records,
    .areas = sum.areas,
    .next_free = sum.next_free,
    .size = size / COW_SECTOR_SIZE * COW_SECTOR_SIZE,
    .allocated_sectors = sum.next_free * sum.chunk_sectors,
    .total_sectors = size / COW_SECTOR_SIZE,
    .metadata_sectors = (sum.areas + 1) * sum.chunk_sectors,
  };
  return 0;
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
  struct opened o;
  const char *path;
  bool json = false;
  int c, r;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case 'j': json = true; break;
    case 'h': return usage (info_usage, true);
    default: return bad_option (c, argv, opts);
    }
  }
  path = one_operand (argc, argv);
  if (path == NULL)
    return EXIT_USAGE;

  if (open_cow (path, IN_USE_NOTE, &o) < 0)
    return EXIT_FAILED;
  f.in_use = o.in_use;
  r = cow_read_header (o.cow, &f.h);
  if (r < 0) {
    tool_error (path, "cannot read the header: %s", strerror (-r));
    close_store (&o);
    return EXIT_FAILED;
  }
  if (f.h.magic == 0)
    f.status = "new";
  else if (f.h.magic == COW_SNAP_MAGIC && f.h.version == COW_DISK_VERSION &&
           f.h.valid == 0) {
    /* The kernel activates it and prints Invalid without reading the
     * areas; so does the usage line.  The records are still there.
     */
    f.status = "Invalid";
    r = counts_from_check (path, &o, &f.n);
    if (r < 0) {
      close_store (&o);
      return EXIT_FAILED;
    }
    f.have_counts = r == 0;
  }
  else {
    if (counts_from_store (path, &o, &f.n) < 0) {
      close_store (&o);
      return EXIT_FAILED;
    }
    f.have_counts = true;
  }
  close_store (&o);
  if (json)
    print_json (path, &f);
  else
    print_text (path, &f);
  return EXIT_OK;
}
