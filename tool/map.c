/* map.c: snapcow map: the snapshot's byte ranges and where each one
 * reads from, in the form of `qemu-img map --output=json` (fields
 * start, length, depth, present, zero, data, offset; qemu 7.2's
 * layout, one range a line).
 *
 * The JSON tiles the disk in origin order.  A changed range (a chunk
 * with a record) is depth 0, with offset its place in the COW file; it
 * is zero and not data where that place is a hole in the COW file (a
 * punched chunk reads as zeroes).  An unchanged range is depth 1, the
 * origin, with offset its place in the origin; with --origin, holes in
 * the origin are zero too.  Without --origin the origin's size is
 * unknown, so the tiling stops at the end of the last changed chunk and
 * the origin's ranges are taken as data.
 *
 * Neighbouring ranges merge when their flags match and their offsets
 * run on, as qemu-img merges them.  The text form lists only the
 * changed ranges, in the columns of `qemu-img map`.
 */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const char map_usage[] =
  "Usage: snapcow map [--json] [--force] [--origin=ORIGIN] COW\n"
  "\n"
  "List the byte ranges in which the snapshot differs from its origin\n"
  "(the chunks copied into the store), merged into runs: start, length,\n"
  "and the offset of the data in COW.  With --json, every range of the\n"
  "disk as qemu-img map does: the changed ones at depth 0, the origin's\n"
  "at depth 1, holes as zero.  With --origin, the map runs to the\n"
  "origin's end and shows its holes; without it, it stops at the end of\n"
  "the last changed chunk.\n"
  "\n"
  "  --json           qemu-img map style JSON\n"
  "  --origin=ORIGIN  the origin, for its size and its holes\n"
  "  --force          map a store that a running server holds (the\n"
  "                   result may be inconsistent)\n"
  "  --help           this text\n";

struct mapping {
  chunk_t old_chunk, new_chunk;
};

struct collector {
  struct mapping *v;
  size_t n, cap;
};

/* One range of the map, before or after merging. */
struct range {
  uint64_t start, length;       /* in the snapshot */
  uint64_t offset;              /* in the COW file (depth 0) or origin */
  int depth;                    /* 0 the store, 1 the origin */
  bool zero, data;
};

struct printer {
  bool json;
  const char *path;             /* for the text form's File column */
  struct range cur;             /* being merged; length 0 if none */
  size_t printed;
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

static void
print_range (struct printer *p, const struct range *r)
{
  if (p->json) {
    printf ("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
            ", \"depth\": %d, \"present\": true, \"zero\": %s"
            ", \"data\": %s, \"offset\": %" PRIu64 "}",
            p->printed ? ",\n" : "", r->start, r->length, r->depth,
            r->zero ? "true" : "false", r->data ? "true" : "false",
            r->offset);
    p->printed++;
  }
  else if (r->depth == 0) {
    printf ("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
            r->start, r->length, r->offset, p->path);
    p->printed++;
  }
}

/* Ranges arrive in order and tile the disk; merge each into the one
 * before when qemu-img would.
 */
static void
add_range (struct printer *p, const struct range *r)
{
  struct range *c = &p->cur;

  if (c->length > 0 && c->depth == r->depth && c->zero == r->zero &&
      c->data == r->data && c->start + c->length == r->start &&
      c->offset + c->length == r->offset) {
    c->length += r->length;
    return;
  }
  if (c->length > 0)
    print_range (p, c);
  *c = *r;
}

static void
flush_ranges (struct printer *p)
{
  if (p->cur.length > 0)
    print_range (p, &p->cur);
  p->cur.length = 0;
}

/* [start, start+length) of the snapshot reads from [offset, ...) of
 * io at depth: split it where io's holes begin and end.  A backend
 * with no extent op is all data.
 */
static int
add_extents (struct printer *p, struct cow_io *io, const char *what,
             int depth, uint64_t start, uint64_t length, uint64_t offset)
{
  while (length > 0) {
    uint64_t n = length;
    bool hole = false;
    int r;

    if (io && io->ops->extent) {
      r = io->ops->extent (io, offset, length, &n, &hole);
      if (r < 0) {
        tool_error (what, "cannot map holes at offset %" PRIu64 ": %s",
                    offset, strerror (-r));
        return -1;
      }
    }
    add_range (p, &(struct range) {
        .start = start, .length = n, .offset = offset, .depth = depth,
        .zero = hole, .data = !hole });
    start += n;
    offset += n;
    length -= n;
  }
  return 0;
}

int
cmd_map (int argc, char **argv)
{
  static const struct option opts[] = {
    { "json", no_argument, NULL, 'j' },
    { "origin", required_argument, NULL, 'o' },
    { "force", no_argument, NULL, 'f' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  enum in_use policy = IN_USE_REFUSE;
  struct collector col = { NULL };
  struct printer p = { .json = false };
  const char *path, *origin = NULL;
  uint64_t chunk_bytes, pos = 0, end = UINT64_MAX;
  struct opened o;
  size_t i;
  int c, status = EXIT_FAILED;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case 'j': p.json = true; break;
    case 'o':
      if (*optarg == '\0')
        return usage_error ("option '--origin' needs a file name");
      origin = optarg;
      break;
    case 'f': policy = IN_USE_FORCE; break;
    case 'h': return usage (map_usage, true);
    default: return bad_option (c, argv, opts);
    }
  }
  path = one_operand (argc, argv);
  if (path == NULL)
    return EXIT_USAGE;
  p.path = path;
  if (open_store_readonly (path, origin, policy, &o) < 0)
    return EXIT_FAILED;
  chunk_bytes = (uint64_t) cow_store_chunk_sectors (o.store) * COW_SECTOR_SIZE;
  if (origin)
    end = cow_store_origin_size (o.store);
  if (cow_store_for_each_record (o.store, collect, &col) != 0)
    goto out;
  if (col.n > 1)
    qsort (col.v, col.n, sizeof *col.v, by_old_chunk);
  /* Without an origin nothing bounds old_chunk (lib/ checks it against
   * the origin's size only), so the byte offsets could overflow.
   */
  if (col.n > 0 && col.v[col.n - 1].old_chunk >= UINT64_MAX / chunk_bytes) {
    tool_error (path, "old_chunk %" PRIu64 " lies beyond any disk",
                col.v[col.n - 1].old_chunk);
    goto out;
  }

  if (p.json)
    printf ("[");
  else
    printf ("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
  for (i = 0; i < col.n; i++) {
    uint64_t start = col.v[i].old_chunk * chunk_bytes;
    uint64_t length = chunk_bytes;

    /* The store was validated against the origin: start < end. */
    if (length > end - start)
      length = end - start;     /* the origin's last, partial chunk */
    if (start > pos &&
        add_extents (&p, o.origin, origin, 1, pos, start - pos, pos) < 0)
      goto out;
    if (add_extents (&p, o.cow, path, 0, start, length,
                     col.v[i].new_chunk * chunk_bytes) < 0)
      goto out;
    pos = start + length;
  }
  if (origin && pos < end &&
      add_extents (&p, o.origin, origin, 1, pos, end - pos, pos) < 0)
    goto out;
  flush_ranges (&p);
  if (p.json)
    printf ("]\n");
  status = EXIT_OK;
 out:
  close_store (&o);
  free (col.v);
  return status;
}
