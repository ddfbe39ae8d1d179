/* load.c: read and validate the metadata areas of an existing store
 * (cow-format.md, "Loading").  Every field is untrusted: each record is
 * checked against the geometry (record-rules.c) before it enters the
 * table, and the first bad one fails the open with its area and index.
 * The table is sized from the areas before the walk
 * (table_presize_from_areas), and filled in bulk (table_bulk_add, 4x
 * faster than one insert per record for 10^7 random ones); a store
 * that breaks any rule is walked again one record at a time, which
 * finds the first fault and names it.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "area-readahead.h"
#include "record-rules.h"
#include "seen.h"
#include "store-internal.h"

/* Records whose table slots are fetched ahead of their turn, one at a
 * time: a random record's lookup and insert are a cache miss each in a
 * big table, and the misses of several records overlap.
 */
#define PREFETCH_AHEAD 16

/* The geometry records are checked against (record-rules.h). */
static struct record_geometry
geometry (const struct cow_store *s)
{
  return (struct record_geometry) {
    .E = s->exceptions_per_area, .chunk_bytes = s->chunk_bytes,
    .dev_chunks = s->dev_chunks,
    .origin_chunks = s->origin ? s->origin_chunks : 0,
  };
}

/* The first rule the record breaks fails the open. */
static int
check_record (struct cow_store *s, uint64_t area, uint32_t i,
              const struct core_exception *e)
{
  struct record_geometry g = geometry (s);
  char msg[256];
  chunk_t other = 0;
  unsigned faults = record_faults (&g, &s->table, e, &other);

  if (faults == 0)
    return 0;
  /* The lowest bit is the first rule in the order of the checks. */
  record_fault_message (msg, sizeof msg, &g, area, i, e,
                        faults & -faults, other);
  return store_error (s, EINVAL, "%s", msg);
}

/* No two records may share a new_chunk: dup is the lowest new_chunk
 * that two records of areas 0..last_area use.  The message names its
 * first two users, found by a second walk.
 */
static int
report_shared_new_chunk (struct cow_store *s, uint64_t last_area,
                         chunk_t dup)
{
  struct seen_list seen = { NULL };
  char msg[256];
  int r;

  r = seen_collect (s->cow, s->chunk_bytes, s->exceptions_per_area,
                    last_area, &dup, 1, &seen);
  if (r < 0)
    r = store_error (s, -r, "cannot read the areas again: %s",
                     cow_strerror (-r));
  else {
    seen_sort (&seen);
    record_shared_new_message (msg, sizeof msg, s->exceptions_per_area,
                               &seen, seen_next_repeat (&seen, 1));
    r = store_error (s, EINVAL, "%s", msg);
  }
  seen_free (&seen);
  return r;
}

/* One walk of the areas, from the first: every record into the table
 * and its new_chunk into seen.  With bulk, the records go in by
 * table_bulk_add while they can; a record that breaks a rule, a store
 * that does not fit the bulk load, or a duplicate old chunk gives
 * -EAGAIN, with nothing said and the table empty: walk again without.
 */
static int
walk_areas (struct cow_store *s, struct seen_bits *seen, bool bulk)
{
  uint32_t E = s->exceptions_per_area;
  const struct record_geometry g = geometry (s);
  struct table_bulk b;
  uint64_t n = 0, area;
  chunk_t max_new = 0, dup = 0;
  bool shared = false;
  int r;

  if (bulk && table_bulk_begin (&s->table, &b) < 0)
    bulk = false;
  /* The walk reads the areas again from the start. */
  memset (s->area, 0, s->chunk_bytes);
  for (area = 0;; area++) {
    chunk_t loc = cow_area_location (E, area);
    uint32_t i;

    if (loc >= s->dev_chunks) {
      if (area == 0)
        r = store_error (s, EINVAL, "the store is too small: %" PRIu64
                         " bytes, less than a header and one area (%"
                         PRIu64 " bytes)", s->dev_size, 2 * s->chunk_bytes);
      else
        r = store_error (s, EINVAL, "area %" PRIu64 " (chunk %" PRIu64
                         ") is past the end of the store (%" PRIu64
                         " chunks): the last area is full and has no "
                         "successor (truncated store?)",
                         area, loc, s->dev_chunks);
      goto out;
    }
    areas_read_ahead (s->cow, E, s->chunk_bytes, s->dev_chunks, area);
    r = cow_io_pread (s->cow, s->area, s->chunk_bytes, chunk_offset (s, loc));
    if (r < 0) {
      r = store_error (s, -r, "cannot read area %" PRIu64 " at chunk %"
                       PRIu64 ": %s", area, loc, cow_strerror (-r));
      goto out;
    }
    for (i = 0; !bulk && i < PREFETCH_AHEAD && i < E; i++) {
      struct core_exception e;

      cow_decode_exception (s->area, i, &e);
      table_prefetch (&s->table, e.old_chunk);
    }
    for (i = 0; i < E; i++) {
      struct core_exception e;

      if (!bulk && i + PREFETCH_AHEAD < E) {
        cow_decode_exception (s->area, i + PREFETCH_AHEAD, &e);
        table_prefetch (&s->table, e.old_chunk);
      }
      cow_decode_exception (s->area, i, &e);
      if (e.new_chunk == 0)
        break;
      if (bulk) {
        /* A record that breaks a rule sends the load back to the
         * walk that checks each one with record_faults and names the
         * fault.
         */
        if (record_geometry_faults (&g, &e) != 0) {
          r = -EAGAIN;
          goto out;
        }
        r = table_bulk_add (&b, e.old_chunk, e.new_chunk);
        if (r == -ENOSPC) {
          /* More entries than the table was sized for: the rest go in
           * one by one, growing it.
           */
          r = table_bulk_end (&b);
          bulk = false;
          if (r < 0)
            goto bulk_failed;
        }
        else if (r < 0) {
          r = -EAGAIN;
          goto out;
        }
      }
      if (!bulk) {
        r = check_record (s, area, i, &e);
        if (r < 0)
          goto out;
        r = table_insert_locked (&s->table, e.old_chunk, e.new_chunk);
        if (r < 0) {
          r = store_error (s, -r, "cannot load area %" PRIu64 " record %"
                           PRIu32 ": %s", area, i, cow_strerror (-r));
          goto out;
        }
      }
      /* The record passed its checks: its new_chunk is a data chunk
       * of the device.  Only the lowest shared one is reported.
       */
      r = seen_bits_mark (seen, e.new_chunk);
      if (r < 0) {
        r = store_error (s, ENOMEM, "out of memory");
        goto out;
      }
      if (r > 0 && (!shared || e.new_chunk < dup)) {
        shared = true;
        dup = e.new_chunk;
      }
      n++;
      if (e.new_chunk > max_new)
        max_new = e.new_chunk;
    }
    if (i < E) {
      /* The current area.  Anything after the terminator is stray (a
       * torn write of a later batch, say): drop it from the buffer, or
       * the next area write would bring it back to life.
       */
      s->current_area = area;
      s->current_committed = i;
      memset (s->area + (size_t) i * sizeof (struct disk_exception), 0,
              s->chunk_bytes - (size_t) i * sizeof (struct disk_exception));
      break;
    }
  }
  if (bulk) {
    r = table_bulk_end (&b);
    bulk = false;
    if (r < 0)
      goto bulk_failed;
  }

  if (shared) {
    r = report_shared_new_chunk (s, s->current_area, dup);
    goto out;
  }
  r = 0;
  /* Nobody can be looking anything up yet. */
  table_release_retired_unshared (&s->table);
  s->records = n;
  /* Records may be out of allocation order after a crash: the highest
   * one decides.
   */
  s->next_free = n ? cow_skip_metadata (E, max_new + 1) : 2;
  store_message (s, COW_MSG_DEBUG, "loaded %" PRIu64 " records in %" PRIu64
                 " areas, next free chunk %" PRIu64,
                 n, s->current_area + 1, s->next_free);

 out:
  if (bulk)
    table_bulk_abort (&b);
  return r;

 bulk_failed:
  /* The table is empty again. */
  if (r == -ENOMEM)
    return store_error (s, ENOMEM, "out of memory");
  return -EAGAIN;
}

int
store_load (struct cow_store *s)
{
  struct seen_bits seen = { NULL };
  int r;

  r = seen_bits_init (&seen, s->dev_chunks);
  if (r < 0)
    return store_error (s, ENOMEM, "out of memory");
  /* Sized for the store, so that a big one neither grows the table nor
   * rehashes on the way, and fits it closely.
   */
  table_presize_from_areas (&s->table, s->cow, s->chunk_bytes,
                            s->exceptions_per_area, s->dev_chunks, s->area);
  r = walk_areas (s, &seen, true);
  if (r == -EAGAIN) {
    seen_bits_free (&seen);
    r = seen_bits_init (&seen, s->dev_chunks);
    if (r < 0)
      return store_error (s, ENOMEM, "out of memory");
    r = walk_areas (s, &seen, false);
  }
  seen_bits_free (&seen);
  return r;
}
