/* usage.c: the store's usage, in the units of the kernel's status line
 * (cow-format.md, "Usage figures"), and that line itself, for the tool
 * and the plugin's export description.  metadata counts the areas that are
 * on disk, so pending records do not move it until they are committed.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#include "store-internal.h"

void
cow_store_usage (struct cow_store *s, struct cow_usage *u)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
    while (s->committing)
      pthread_cond_wait (&s->commit_done, &s->commit_lock);
    u->current_area = s->current_area;
  }
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
  u->chunk_sectors = s->chunk_sectors;
  u->allocated_sectors = s->next_free * s->chunk_sectors;
  u->total_sectors = s->dev_size / COW_SECTOR_SIZE;
  u->metadata_sectors = (u->current_area + 2) * s->chunk_sectors;
  u->records = s->records;
  u->pending = s->pending.len;
  u->valid = s->valid;
}

void
cow_usage_status (const struct cow_usage *u, char *buf, size_t len)
{
  /* The kernel's snapshot_status prints "Invalid" for an invalidated
   * snapshot and the three figures otherwise.
   */
  if (!u->valid)
    snprintf (buf, len, "Invalid");
  else
    snprintf (buf, len, "%" PRIu64 "/%" PRIu64 " %" PRIu64,
              u->allocated_sectors, u->total_sectors, u->metadata_sectors);
}
