/* record-rules.c: the rules each record must keep and their messages
 * (record-rules.h).  The texts are matched by the tests and read by
 * users: change them in one place, here.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#include "record-rules.h"

chunk_t
record_old_chunk_bound (const struct record_geometry *g)
{
  /* An origin's size fits in 64 bits, so its chunks never pass the
   * limit.
   */
  return g->origin_chunks ? g->origin_chunks
    : record_chunk_limit (g->chunk_bytes);
}

unsigned
record_geometry_faults (const struct record_geometry *g,
                        const struct core_exception *e)
{
  unsigned faults = 0;

  if (cow_is_metadata_chunk (g->E, e->new_chunk))
    faults |= RECORD_NEW_IN_METADATA;
  else if (e->new_chunk >= g->dev_chunks)
    faults |= RECORD_NEW_PAST_END;
  if (e->old_chunk >= record_old_chunk_bound (g))
    faults |= g->origin_chunks ? RECORD_OLD_PAST_ORIGIN
      : RECORD_OLD_PAST_LIMIT;
  return faults;
}

unsigned
record_faults (const struct record_geometry *g, const struct cow_table *t,
               const struct core_exception *e, chunk_t *other)
{
  unsigned faults = record_geometry_faults (g, e);

  if (e->old_chunk < record_chunk_limit (g->chunk_bytes) &&
      table_lookup (t, e->old_chunk, other))
    faults |= RECORD_OLD_DUPLICATE;
  return faults;
}

void
record_fault_message (char *buf, size_t len, const struct record_geometry *g,
                      uint64_t area, uint32_t i,
                      const struct core_exception *e,
                      enum record_fault fault, chunk_t other)
{
  int n = snprintf (buf, len, "area %" PRIu64 " record %" PRIu32 ": ",
                    area, i);

  if (n < 0 || (size_t) n >= len)
    return;
  buf += n;
  len -= n;
  switch (fault) {
  case RECORD_NEW_IN_METADATA:
    snprintf (buf, len, "new_chunk %" PRIu64 " points at a metadata area",
              e->new_chunk);
    break;
  case RECORD_NEW_PAST_END:
    snprintf (buf, len, "new_chunk %" PRIu64 " is past the end of the "
              "store (%" PRIu64 " chunks)", e->new_chunk, g->dev_chunks);
    break;
  case RECORD_OLD_PAST_ORIGIN:
    snprintf (buf, len, "old_chunk %" PRIu64 " is past the end of the "
              "origin (%" PRIu64 " chunks): is this the right origin?",
              e->old_chunk, g->origin_chunks);
    break;
  case RECORD_OLD_PAST_LIMIT:
    snprintf (buf, len, "old_chunk %" PRIu64 " ends past 2^64 bytes: no "
              "origin has more than %" PRIu64 " chunks of %" PRIu64
              " bytes", e->old_chunk, record_chunk_limit (g->chunk_bytes),
              g->chunk_bytes);
    break;
  case RECORD_OLD_DUPLICATE:
    snprintf (buf, len, "duplicate old_chunk %" PRIu64 " (already mapped "
              "to new_chunk %" PRIu64 ")", e->old_chunk, other);
    break;
  }
}

void
record_shared_new_message (char *buf, size_t len, uint32_t E,
                           const struct seen_list *seen, uint64_t k)
{
  const struct seen *now = &seen->v[k], *before = &seen->v[k - 1];

  snprintf (buf, len, "area %" PRIu64 " record %" PRIu64 ": new_chunk %"
            PRIu64 " is also used by area %" PRIu64 " record %" PRIu64,
            now->seq / E, now->seq % E, now->new_chunk,
            before->seq / E, before->seq % E);
}
