/* check.c: check a store without trusting it, and keep going after a
 * problem so that every one is reported (the loader in load.c stops at
 * the first).  It only reads.
 *
 * Errors are what the kernel or the loader would trip on; warnings are
 * stray data that both ignore: records after the terminator of the
 * current area, non-zero bytes in the areas after it, data in chunks
 * past the next free one (a crash between a copy and its commit leaves
 * those).
 *
 * Memory: the table of old chunks (for duplicates) sized from the areas
 * first, and a bit per chunk of the device for the new chunks.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area-readahead.h"
#include "cleanup.h"
#include "format.h"
#include "record-rules.h"
#include "seen.h"
#include "table.h"

struct checker {
  struct cow_io *cow;
  cow_problem_fn fn;
  void *opaque;
  struct cow_check_summary *sum;
  uint32_t E;
  uint64_t chunk_bytes;
  chunk_t dev_chunks;
  struct record_geometry g;     /* what records are checked against */
};

static void __attribute__ ((format (printf, 3, 4)))
problem (struct checker *c, enum cow_severity sev, const char *fs, ...)
{
  char msg[512];
  va_list args;

  va_start (args, fs);
  vsnprintf (msg, sizeof msg, fs, args);
  va_end (args);
  if (sev == COW_PROBLEM_ERROR)
    c->sum->errors++;
  else
    c->sum->warnings++;
  if (c->fn)
    c->fn (c->opaque, sev, msg);
}

static bool
all_zero (const uint8_t *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

/* Report every rule the record breaks (record-rules.c) and track its
 * old_chunk; returns true if its new_chunk is a data chunk of the
 * device (whatever is wrong with its old_chunk), so that the chunk
 * counts as used.
 */
static bool
check_record (struct checker *c, struct cow_table *t, uint64_t area,
              uint32_t i, const struct core_exception *e)
{
  chunk_t other = 0;
  unsigned faults = record_faults (&c->g, t, e, &other), f;
  char msg[256];

  for (f = 1; f <= faults; f <<= 1) {
    if (!(faults & f))
      continue;
    record_fault_message (msg, sizeof msg, &c->g, area, i, e, f, other);
    problem (c, COW_PROBLEM_ERROR, "%s", msg);
  }
  /* The table holds only chunks below the limit: a larger old_chunk + 1
   * would wrap to its empty key.
   */
  if (!(faults & RECORD_OLD_DUPLICATE) &&
      e->old_chunk < record_chunk_limit (c->chunk_bytes) &&
      table_insert_locked (t, e->old_chunk, e->new_chunk) < 0)
    problem (c, COW_PROBLEM_ERROR, "area %" PRIu64 " record %" PRIu32
             ": cannot track old_chunk %" PRIu64 " (out of memory)",
             area, i, e->old_chunk);
  return !(faults & RECORD_NEW_FAULTS);
}

/* The stray data the kernel ignores, from the current area on. */
static int
check_strays (struct checker *c, uint8_t *buf, uint64_t current_area)
{
  uint64_t area, bad_areas = 0, bad_chunks = 0, first_bad = 0;
  chunk_t ch;
  int r;

  for (area = current_area + 1;
       cow_area_location (c->E, area) < c->dev_chunks; area++) {
    r = cow_io_pread (c->cow, buf, c->chunk_bytes,
                      cow_area_location (c->E, area) * c->chunk_bytes);
    if (r < 0)
      return r;
    if (!all_zero (buf, c->chunk_bytes))
      bad_areas++;
  }
  if (bad_areas)
    problem (c, COW_PROBLEM_WARNING, "%" PRIu64 " metadata area(s) after "
             "the current one (area %" PRIu64 ") are not zeroed; the "
             "kernel ignores them", bad_areas, current_area);

  for (ch = c->sum->next_free; ch < c->dev_chunks; ch++) {
    uint64_t len;
    bool hole;

    if (cow_is_metadata_chunk (c->E, ch))
      continue;
    /* Skip the chunks a sparse file's hole covers whole, without
     * reading them; a chunk the hole only starts is read.
     */
    if (c->cow->ops->extent &&
        c->cow->ops->extent (c->cow, ch * c->chunk_bytes,
                             (c->dev_chunks - ch) * c->chunk_bytes,
                             &len, &hole) == 0 &&
        hole && len >= c->chunk_bytes) {
      ch += len / c->chunk_bytes - 1;
      continue;
    }
    r = cow_io_pread (c->cow, buf, c->chunk_bytes, ch * c->chunk_bytes);
    if (r < 0)
      return r;
    if (!all_zero (buf, c->chunk_bytes)) {
      if (bad_chunks++ == 0)
        first_bad = ch;
    }
  }
  if (bad_chunks)
    problem (c, COW_PROBLEM_WARNING, "%" PRIu64 " data chunk(s) past the "
             "next free chunk %" PRIu64 " hold data (the first is chunk %"
             PRIu64 "), left by writes that were never committed or by "
             "records merged into the origin; the kernel ignores them",
             bad_chunks, c->sum->next_free, first_bad);
  return 0;
}

/* Data chunks below the next free one that no record uses: a copy whose
 * record was lost in a crash, or that failed.  They are never reused;
 * the space is lost until the store is merged or recreated.
 */
static void
count_leaked (struct checker *c, const struct seen_bits *seen)
{
  uint64_t leaked = 0, area;
  chunk_t ch, end, first = 0;

  end = c->sum->next_free < c->dev_chunks ? c->sum->next_free
    : c->dev_chunks;
  /* The data chunks of each area follow it: no division per chunk of
   * the device to find the areas.
   */
  for (area = 0; cow_area_location (c->E, area) + 1 < end; area++) {
    chunk_t from = cow_area_location (c->E, area) + 1;
    chunk_t to = end - from > c->E ? from + c->E : end;

    for (ch = from; ch < to; ch++)
      if (!seen_bits_test (seen, ch) && leaked++ == 0)
        first = ch;
  }
  if (leaked)
    problem (c, COW_PROBLEM_WARNING, "%" PRIu64 " data chunk(s) below the "
             "next free chunk are used by no record (the first is chunk %"
             PRIu64 "): space leaked by a crash or a failed copy",
             leaked, first);
}

/* Every pair of records sharing a new_chunk, in the order of the chunk
 * then of the records: dups (sorted, distinct) are the chunks marked
 * twice, and a second walk finds who uses them.
 */
static void
report_shared (struct checker *c, uint64_t last_area, const chunk_t *dups,
               size_t n)
{
  struct seen_list seen = { .v = NULL };
  char msg[256];
  int r;

  r = seen_collect (c->cow, c->chunk_bytes, c->E, last_area, dups, n, &seen);
  if (r < 0)
    problem (c, COW_PROBLEM_ERROR, "cannot read the areas again to list "
             "the records sharing a new_chunk: %s", cow_strerror (-r));
  seen_sort (&seen);
  for (uint64_t k = seen_next_repeat (&seen, 1); k < seen.n;
       k = seen_next_repeat (&seen, k + 1)) {
    record_shared_new_message (msg, sizeof msg, c->E, &seen, k);
    problem (c, COW_PROBLEM_ERROR, "%s", msg);
  }
  seen_free (&seen);
}

static int
compare_chunks (const void *a, const void *b)
{
  chunk_t x = *(const chunk_t *) a, y = *(const chunk_t *) b;

  return x < y ? -1 : x > y;
}

/* What a walk of the areas gathers. */
struct walk {
  struct cow_table t;           /* the old chunks, for duplicates */
  struct seen_bits seen;        /* the data chunks records use */
  chunk_t *dups;                /* new chunks marked twice */
  size_t ndups, cap;
  uint64_t last_area, used;
  chunk_t max_new;
};

/* End a bulk load before anything is said about the store: 0, or
 * -EAGAIN if it failed (a duplicate old chunk, out of memory), the table
 * then empty.
 */
static int
end_bulk (struct table_bulk *b, bool *bulk)
{
  if (!*bulk)
    return 0;
  *bulk = false;
  return table_bulk_end (b) < 0 ? -EAGAIN : 0;
}

/* One walk of the areas, from the first, into w (table and seen
 * empty).  With bulk, the records go in by table_bulk_add while every
 * one keeps the rules that need no table; the bulk load ends before
 * the first problem (or warning) is reported, and a duplicate it then
 * finds, or a record that breaks a rule, gives -EAGAIN with nothing
 * said and the table empty: walk again without, which reports each
 * problem at its record.  A store with none is checked in bulk whole:
 * 0.4-0.5 s of CPU instead of 3 s for 10^7 random records.
 */
static int
walk_areas (struct checker *c, uint8_t *buf, struct walk *w, bool bulk)
{
  struct table_bulk b;
  uint64_t area;
  bool ended = false;
  int r;

  if (bulk && table_bulk_begin (&w->t, &b) < 0)
    bulk = false;
  for (area = 0; !ended; area++) {
    chunk_t loc = cow_area_location (c->E, area);
    uint32_t i;

    if (loc >= c->dev_chunks) {
      r = end_bulk (&b, &bulk);
      if (r < 0)
        return r;
      problem (c, COW_PROBLEM_ERROR, area == 0
               ? "the store is too small for a header and one area"
               : "area %" PRIu64 " (chunk %" PRIu64 ") is past the end of "
               "the store (%" PRIu64 " chunks): the last area is full and "
               "has no successor (truncated store?)",
               area, loc, c->dev_chunks);
      break;
    }
    areas_read_ahead (c->cow, c->E, c->chunk_bytes, c->dev_chunks, area);
    r = cow_io_pread (c->cow, buf, c->chunk_bytes, loc * c->chunk_bytes);
    if (r < 0) {
      int err = r;

      r = end_bulk (&b, &bulk);
      if (r < 0)
        return r;
      problem (c, COW_PROBLEM_ERROR, "cannot read area %" PRIu64
               " at chunk %" PRIu64 ": %s", area, loc, cow_strerror (-err));
      break;
    }
    c->sum->areas++;
    w->last_area = area;
    for (i = 0; i < c->E; i++) {
      struct core_exception e;

      cow_decode_exception (buf, i, &e);
      if (e.new_chunk == 0)
        break;
      c->sum->records++;
      if (bulk) {
        if (record_geometry_faults (&c->g, &e) != 0) {
          table_bulk_abort (&b);
          return -EAGAIN;
        }
        r = table_bulk_add (&b, e.old_chunk, e.new_chunk);
        if (r == -ENOSPC) {
          /* More entries than the table was sized for: the rest go in
           * one by one, growing it, and are checked as they come.
           */
          r = end_bulk (&b, &bulk);
          if (r < 0)
            return r;
        }
        else if (r < 0) {
          /* Not for the packed layout: the walk without widens it. */
          table_bulk_abort (&b);
          return -EAGAIN;
        }
      }
      if (!bulk && !check_record (c, &w->t, area, i, &e))
        continue;
      /* A data chunk of the device: mark it. */
      r = seen_bits_mark (&w->seen, e.new_chunk);
      if (r < 0)
        goto fail;
      if (r > 0) {
        if (w->ndups == w->cap) {
          size_t ncap = w->cap ? 2 * w->cap : 64;
          chunk_t *v = realloc (w->dups, ncap * sizeof *v);
          if (v == NULL) {
            r = -ENOMEM;
            goto fail;
          }
          w->dups = v;
          w->cap = ncap;
        }
        w->dups[w->ndups++] = e.new_chunk;
      }
      w->used++;
      if (e.new_chunk > w->max_new)
        w->max_new = e.new_chunk;
    }
    if (i < c->E) {
      size_t at = (size_t) i * sizeof (struct disk_exception);

      r = end_bulk (&b, &bulk);
      if (r < 0)
        return r;
      ended = true;
      c->sum->next_free = w->used ? cow_skip_metadata (c->E, w->max_new + 1)
        : 2;
      if (!all_zero (buf + at, c->chunk_bytes - at))
        problem (c, COW_PROBLEM_WARNING, "area %" PRIu64 ": bytes after "
                 "the terminator (record %" PRIu32 ") are not zero; the "
                 "kernel ignores them", area, i);
      r = check_strays (c, buf, area);
      if (r < 0)
        problem (c, COW_PROBLEM_ERROR, "cannot read the store: %s",
                 cow_strerror (-r));
    }
  }
  return 0;

 fail:
  if (bulk)
    table_bulk_abort (&b);
  return r;
}

static int
check_areas (struct checker *c, uint8_t *buf)
{
  struct walk w = { .dups = NULL };
  int r;

  r = table_init (&w.t, record_chunk_limit (c->chunk_bytes), c->dev_chunks,
                  0);
  if (r < 0)
    return r;
  r = seen_bits_init (&w.seen, c->dev_chunks);
  if (r < 0)
    goto out;
  table_presize_from_areas (&w.t, c->cow, c->chunk_bytes, c->E,
                            c->dev_chunks, buf);
  r = walk_areas (c, buf, &w, true);
  if (r == -EAGAIN) {
    /* Nothing was said: start again, from an empty table. */
    seen_bits_free (&w.seen);
    r = seen_bits_init (&w.seen, c->dev_chunks);
    if (r < 0)
      goto out;
    w.ndups = w.used = w.last_area = w.max_new = 0;
    c->sum->areas = c->sum->records = 0;
    r = walk_areas (c, buf, &w, false);
  }
  if (r < 0)
    goto out;

  if (w.ndups) {
    size_t k, n = 0;

    qsort (w.dups, w.ndups, sizeof *w.dups, compare_chunks);
    for (k = 0; k < w.ndups; k++)
      if (k == 0 || w.dups[k] != w.dups[k - 1])
        w.dups[n++] = w.dups[k];
    report_shared (c, w.last_area, w.dups, n);
  }
  count_leaked (c, &w.seen);
  r = 0;
 out:
  free (w.dups);
  seen_bits_free (&w.seen);
  table_free (&w.t);
  return r;
}

int
cow_check (struct cow_io *cow, uint64_t origin_size, cow_problem_fn fn,
           void *opaque, struct cow_check_summary *sum)
{
  struct checker c = { .cow = cow, .fn = fn, .opaque = opaque, .sum = sum };
  struct cow_header_info h;
  CLEANUP_FREE uint8_t *buf = NULL;
  const char *why;
  uint64_t size;
  int r;

  *sum = (struct cow_check_summary) { .next_free = 2 };
  r = cow_io_get_size (cow, &size);
  if (r == 0)
    r = cow_read_header (cow, &h);
  if (r < 0)
    return r;
  if (h.magic == 0) {
    sum->is_new = true;
    return 0;
  }
  if (h.magic != COW_SNAP_MAGIC) {
    problem (&c, COW_PROBLEM_ERROR, "bad magic 0x%08" PRIx32 " in the "
             "header (expected 0x%08x): not a dm-snapshot store",
             h.magic, COW_SNAP_MAGIC);
    return 0;
  }
  if (h.version != COW_DISK_VERSION) {
    problem (&c, COW_PROBLEM_ERROR, "unsupported store version %" PRIu32
             " (only version %d exists)", h.version, COW_DISK_VERSION);
    return 0;
  }
  if (cow_check_chunk_sectors (h.chunk_sectors, &why) < 0) {
    problem (&c, COW_PROBLEM_ERROR, "the header's chunk size of %" PRIu32
             " sectors %s", h.chunk_sectors, why);
    return 0;
  }
  if (h.valid != 1)
    problem (&c, COW_PROBLEM_ERROR, "the store is invalidated (header "
             "valid=%" PRIu32 "); its records are checked all the same",
             h.valid);
  sum->chunk_sectors = h.chunk_sectors;
  c.E = cow_exceptions_per_area (h.chunk_sectors);
  c.chunk_bytes = (uint64_t) h.chunk_sectors * COW_SECTOR_SIZE;
  c.dev_chunks = size / c.chunk_bytes;
  c.g = (struct record_geometry) {
    .E = c.E, .chunk_bytes = c.chunk_bytes, .dev_chunks = c.dev_chunks,
    /* 0 for no origin: old_chunk is then only held below 2^64 bytes. */
    .origin_chunks = origin_size / c.chunk_bytes
      + (origin_size % c.chunk_bytes != 0),
  };
  buf = malloc (c.chunk_bytes);
  if (buf == NULL)
    return -ENOMEM;
  /* The kernel writes zeroes after the header; anything else is stray. */
  if (c.dev_chunks > 0 &&
      cow_io_pread (cow, buf, c.chunk_bytes, 0) == 0 &&
      !all_zero (buf + sizeof (struct disk_header),
                 c.chunk_bytes - sizeof (struct disk_header)))
    problem (&c, COW_PROBLEM_WARNING, "the header chunk holds non-zero "
             "bytes after the header; the kernel ignores them");
  return check_areas (&c, buf);
}
