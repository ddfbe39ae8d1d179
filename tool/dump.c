/* dump.c: snapcow dump: the records in on-disk order. */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>

#include "tool.h"

static const char dump_usage[] =
  "Usage: snapcow dump [--json] [--force] COW\n"
  "\n"
  "List the store's committed records in on-disk order: area, index,\n"
  "old_chunk (in the origin), new_chunk (in the store).\n"
  "\n"
  "  --json   print a JSON array\n"
  "  --force  dump a store that a running server holds (the records\n"
  "           may be inconsistent)\n"
  "  --help   this text\n";

struct dumper {
  bool json;
  uint64_t n;
};

static int
print_record (void *opaque, uint64_t area, uint32_t index, chunk_t old_chunk,
              chunk_t new_chunk)
{
  struct dumper *d = opaque;

  if (d->json)
    printf ("%s{ \"area\": %" PRIu64 ", \"index\": %" PRIu32
            ", \"old_chunk\": %" PRIu64 ", \"new_chunk\": %" PRIu64 " }",
            d->n ? ",\n  " : "\n  ", area, index, old_chunk, new_chunk);
  else
    printf ("%" PRIu64 " %" PRIu32 " %" PRIu64 " %" PRIu64 "\n",
            area, index, old_chunk, new_chunk);
  d->n++;
  return 0;
}

int
cmd_dump (int argc, char **argv)
{
  static const struct option opts[] = {
    { "json", no_argument, NULL, 'j' },
    { "force", no_argument, NULL, 'f' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  enum in_use policy = IN_USE_REFUSE;
  struct dumper d = { .json = false };
  struct opened o;
  const char *path;
  int c, r;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case 'j': d.json = true; break;
    case 'f': policy = IN_USE_FORCE; break;
    case 'h': return usage (dump_usage, true);
    default: return bad_option (c, argv, opts);
    }
  }
  path = one_operand (argc, argv);
  if (path == NULL)
    return EXIT_USAGE;
  if (open_store_readonly (path, NULL, policy, &o) < 0)
    return EXIT_FAILED;
  if (d.json)
    printf ("[");
  else
    printf ("# area index old_chunk new_chunk\n");
  r = cow_store_for_each_record (o.store, print_record, &d);
  if (d.json)
    printf ("%s]\n", d.n ? "\n" : "");
  close_store (&o);
  return r < 0 ? EXIT_FAILED : EXIT_OK;
}
