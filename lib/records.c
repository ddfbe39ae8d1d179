/* records.c: walk the committed records of an open store in on-disk
 * order (area by area, index by index), for the tool's dump and map.
 * The areas are read again from the device: the table keeps no order.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

int
cow_store_for_each_record (struct cow_store *s, cow_record_fn fn,
                           void *opaque)
{
  uint32_t E = s->exceptions_per_area;
  CLEANUP_FREE uint8_t *buf = malloc (s->chunk_bytes);
  uint64_t area, last;
  int r;

  if (buf == NULL)
    return store_error (s, ENOMEM, "out of memory");
  if (s->unformatted)
    return 0;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
    last = s->current_area;
  }
  for (area = 0; area <= last; area++) {
    chunk_t loc = cow_area_location (E, area);

    r = cow_io_pread (s->cow, buf, s->chunk_bytes, chunk_offset (s, loc));
    if (r < 0)
      return store_error (s, -r, "cannot read area %" PRIu64 ": %s",
                          area, cow_strerror (-r));
    for (uint32_t i = 0; i < E; i++) {
      struct core_exception e;

      cow_decode_exception (buf, i, &e);
      if (e.new_chunk == 0)
        break;
      r = fn (opaque, area, i, e.old_chunk, e.new_chunk);
      if (r != 0)
        return r;
    }
  }
  return 0;
}
