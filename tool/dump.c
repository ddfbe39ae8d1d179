/* dump.c: snapcow dump: the records in on-disk order. */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>

#include "tool.h"

static const char dump_usage[] =
  "Usage: snapcow dump [--json] COW\n"
  "\n"
  "List the store's committed records in on-disk order: area, index,\n"
  "old_chunk (in the origin), new_chunk (in the store).\n"
  "\n"
  "  --json   print a JSON array\n"
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
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  struct dumper d = { .json = false };
  struct opened o;
  int c, r;

  optind = 1;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'j': d.json = true; break;
    case 'h': return usage (dump_usage, true);
    default: return usage (dump_usage, false);
    }
  }
  if (argc - optind != 1)
    return usage (dump_usage, false);
  if (open_store_readonly (argv[optind], NULL, &o) < 0)
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
