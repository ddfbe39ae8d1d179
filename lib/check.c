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
  uint64_t leaked = 0;
  chunk_t ch, first = 0;

  for (ch = 2; ch < c->sum->next_free && ch < c->dev_chunks; ch++)
    if (!cow_is_metadata_chunk (c->E, ch) && !seen_bits_test (seen, ch) &&
        leaked++ == 0)
      first = ch;
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
  struct seen_list seen = { NULL };
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

static int
check_areas (struct checker *c, uint8_t *buf)
{
  struct cow_table t;
  struct seen_bits seen = { NULL };
  chunk_t *dups = NULL;
  size_t ndups = 0, cap = 0;
  uint64_t area, last_area = 0, used = 0;
  chunk_t max_new = 0;
  bool ended = false;
  int r;

  r = table_init (&t, record_chunk_limit (c->chunk_bytes), c->dev_chunks, 0);
  if (r < 0)
    return r;
  r = seen_bits_init (&seen, c->dev_chunks);
  if (r < 0)
    goto out;
  table_presize_from_areas (&t, c->cow, c->chunk_bytes, c->E, c->dev_chunks,
                            buf);
  for (area = 0; !ended; area++) {
    chunk_t loc = cow_area_location (c->E, area);
    uint32_t i;

    if (loc >= c->dev_chunks) {
      problem (c, COW_PROBLEM_ERROR, area == 0
               ? "the store is too small for a header and one area"
               : "area %" PRIu64 " (chunk %" PRIu64 ") is past the end of "
               "the store (%" PRIu64 " chunks): the last area is full and "
               "has no successor (truncated store?)",
               area, loc, c->dev_chunks);
      break;
    }
    r = cow_io_pread (c->cow, buf, c->chunk_bytes, loc * c->chunk_bytes);
    if (r < 0) {
      problem (c, COW_PROBLEM_ERROR, "cannot read area %" PRIu64
               " at chunk %" PRIu64 ": %s", area, loc, cow_strerror (-r));
      break;
    }
    c->sum->areas++;
    last_area = area;
    for (i = 0; i < c->E; i++) {
      struct core_exception e;

      cow_decode_exception (buf, i, &e);
      if (e.new_chunk == 0)
        break;
      c->sum->records++;
      if (!check_record (c, &t, area, i, &e))
        continue;
      /* A data chunk of the device: mark it. */
      r = seen_bits_mark (&seen, e.new_chunk);
      if (r < 0)
        goto out;
      if (r > 0) {
        if (ndups == cap) {
          size_t ncap = cap ? 2 * cap : 64;
          chunk_t *v = realloc (dups, ncap * sizeof *v);
          if (v == NULL) {
            r = -ENOMEM;
            goto out;
          }
          dups = v;
          cap = ncap;
        }
        dups[ndups++] = e.new_chunk;
      }
      used++;
      if (e.new_chunk > max_new)
        max_new = e.new_chunk;
    }
    if (i < c->E) {
      size_t at = (size_t) i * sizeof (struct disk_exception);
      ended = true;
      c->sum->next_free = used ? cow_skip_metadata (c->E, max_new + 1) : 2;
      if (!all_zero (buf + at, c->chunk_bytes - at))
        problem (c, COW_PROBLEM_WARNING, "area %" PRIu64 ": bytes after "
                 "the terminator (record %" PRIu32 ") are not zero; the "
                 "kernel ignores them", area, i);
      r = check_strays (c, buf, area);
      if (r < 0) {
        problem (c, COW_PROBLEM_ERROR, "cannot read the store: %s",
                 cow_strerror (-r));
        r = 0;
      }
    }
  }

  if (ndups) {
    size_t k, n = 0;

    qsort (dups, ndups, sizeof *dups, compare_chunks);
    for (k = 0; k < ndups; k++)
      if (k == 0 || dups[k] != dups[k - 1])
        dups[n++] = dups[k];
    report_shared (c, last_area, dups, n);
  }
  count_leaked (c, &seen);
  r = 0;
 out:
  free (dups);
  seen_bits_free (&seen);
  table_free (&t);
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
