/* map.c: snapcow map: the byte ranges of the snapshot that differ from
 * the origin (the chunks with a record), in origin order, with runs
 * that are contiguous both in the origin and in the store merged.  The
 * JSON uses the field names of `qemu-img map --output=json`, with
 * "offset" the range's place in the COW file.
 */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>

#include "tool.h"

static const char map_usage[] =
  "Usage: snapcow map [--json] [--origin=ORIGIN] COW\n"
  "\n"
  "List the byte ranges in which the snapshot differs from its origin\n"
  "(the chunks copied into the store), merged into runs: start, length,\n"
  "and the offset of the data in COW.  With --origin, the last range\n"
  "stops at the origin's end and records are checked against its size.\n"
  "\n"
  "  --json           qemu-img map style JSON\n"
  "  --origin=ORIGIN  the origin, for its size\n"
  "  --help           this text\n";

struct mapping {
  chunk_t old_chunk, new_chunk;
};

struct collector {
  struct mapping *v;
  size_t n, cap;
};

static int
collect (void *opaque, uint64_t area, uint32_t index, chunk_t old_chunk,
         chunk_t new_chunk)
{
  struct collector *c = opaque;

  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 1024;
    struct mapping *v = realloc (c->v, cap * sizeof *v);
    if (v == NULL) {
      tool_error (NULL, "out of memory");
      return -1;
    }
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = (struct mapping) { old_chunk, new_chunk };
  return 0;
}

static int
by_old_chunk (const void *a, const void *b)
{
  const struct mapping *x = a, *y = b;

  return x->old_chunk < y->old_chunk ? -1 : x->old_chunk > y->old_chunk;
}

int
cmd_map (int argc, char **argv)
{
  static const struct option opts[] = {
    { "json", no_argument, NULL, 'j' },
    { "origin", required_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  struct collector col = { NULL };
  const char *origin = NULL;
  uint64_t chunk_bytes, end = UINT64_MAX;
  struct opened o;
  bool json = false;
  size_t i, runs = 0;
  int c;

  optind = 1;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'j': json = true; break;
    case 'o': origin = optarg; break;
    case 'h': return usage (map_usage, true);
    default: return usage (map_usage, false);
    }
  }
  if (argc - optind != 1)
    return usage (map_usage, false);
  if (open_store_readonly (argv[optind], origin, &o) < 0)
    return EXIT_FAILED;
  chunk_bytes = (uint64_t) cow_store_chunk_sectors (o.store) * COW_SECTOR_SIZE;
  if (origin)
    end = cow_store_origin_size (o.store);
  if (cow_store_for_each_record (o.store, collect, &col) != 0) {
    close_store (&o);
    free (col.v);
    return EXIT_FAILED;
  }
  close_store (&o);
  if (col.n > 1)
    qsort (col.v, col.n, sizeof *col.v, by_old_chunk);

  if (json)
    printf ("[");
  else
    printf ("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
  for (i = 0; i < col.n;) {
    size_t j = i + 1;
    uint64_t start, length;

    while (j < col.n && col.v[j].old_chunk == col.v[j - 1].old_chunk + 1 &&
           col.v[j].new_chunk == col.v[j - 1].new_chunk + 1)
      j++;
    start = col.v[i].old_chunk * chunk_bytes;
    length = (j - i) * chunk_bytes;
    if (start + length > end)
      length = end - start;
    if (json)
      printf ("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
              ", \"depth\": 0, \"present\": true, \"zero\": false"
              ", \"data\": true, \"offset\": %" PRIu64 " }",
              runs ? ",\n  " : "\n  ", start, length,
              col.v[i].new_chunk * chunk_bytes);
    else
      printf ("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
              start, length, col.v[i].new_chunk * chunk_bytes,
              argv[optind]);
    runs++;
    i = j;
  }
  if (json)
    printf ("%s]\n", runs ? "\n" : "");
  free (col.v);
  return EXIT_OK;
}
