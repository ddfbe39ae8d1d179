/* merge.c: folding a store back into its origin, the kernel's
 * snapshot-merge (cow-format.md, "Merging back into the origin").
 *
 * The steps are the kernel's persistent_prepare_merge and
 * persistent_commit_merge, so that the tool (offline) and an online
 * merge can share them:
 *
 *   prepare  the last record not yet taken, and how many records before
 *            it in the same area are consecutive in both old_chunk and
 *            new_chunk: a run.  When the area is used up, the previous
 *            one is read and becomes current.
 *   copy     the run's data from the store to the origin, one pread and
 *            one pwrite per piece of COW_MERGE_PIECE bytes (or a chunk,
 *            if larger), never one per chunk; a last partial origin
 *            chunk gets only its bytes inside the origin.
 *   commit   sync the origin, then zero the runs' records in their
 *            area, write the area, sync the store; then drop the
 *            records from the table.
 *   finish   once no record is left, zero the areas after area 0
 *            that a crash left stale (below), so no record is left
 *            anywhere.  The data chunks stay, as the kernel leaves
 *            them: punching them cost half as much again as the whole
 *            copy on an ext4 mounted with discard, and a merged store
 *            is usually removed.
 *
 * The origin is durable before a record is cleared, so a crash leaves
 * each record either still there (its copy is simply made again: the
 * store chunk has not changed) or its data already in the origin.  A
 * record's data reads the same from the store and from the origin once
 * copied, so a half-merged store shows the same snapshot at every step.
 *
 * Batching: the kernel commits one run at a time.  Here several runs
 * may be prepared and copied before one commit (cow_merge_step takes a
 * byte budget), so that a store of small scattered runs does not cost
 * two syncs per run.  The runs may reach back over several areas; the
 * commit then writes every area it emptied (zeroes) and the area it
 * shortened, and syncs once: a sync per area would cost more than the
 * copy at 4K chunks (an area per MiB of data).  Whatever subset of
 * those writes a crash keeps, the loader (ours or the kernel's) walks
 * full areas up to the first that ends early and stops there, so it
 * sees each record either still there or merged with its data durable
 * in the origin: the same snapshot, in a store the kernel can finish.
 * Areas above the one it stops at may keep stale records, which
 * nothing reads (the kernel, like commit.c, zeroes an area before it
 * fills the one below); `finish` clears them.
 *
 * The area state (s->area, current_area, current_committed) belongs to
 * the thread that set s->committing (store-internal.h); the commit
 * takes that role.  After a commit, next_free is what the kernel sets
 * it to (the chunk after the current area's last record), which only
 * the usage line reads: a store being merged hands out no new chunks
 * (the kernel's snapshot-merge allocates none either), so no caller may
 * cow_store_allocate on it until it is reopened.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

struct cow_merge {
  struct cow_store *s;
  /* The prepare cursor: `area` as the disk will hold it after the next
   * commit, with the records already prepared zeroed in buf, and
   * `committed` records still in it.
   */
  uint8_t *buf;                 /* one chunk */
  uint64_t area;
  uint32_t committed;
  /* Prepared, and copied or being copied, not yet committed. */
  struct cow_merge_run *runs;
  size_t nr_runs, cap_runs;
  uint64_t prepared;            /* records in runs */
  uint8_t *copy_buf;            /* copy_bytes */
  size_t copy_bytes;
  struct cow_merge_totals totals;
  bool finished;                /* no record left, stale areas cleared */
};

/* Become the owner of the area state (store-internal.h: the thread
 * that set `committing`), waiting for a commit in progress.
 */
static void
own_area (struct cow_store *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
  while (s->committing)
    pthread_cond_wait (&s->commit_done, &s->commit_lock);
  s->committing = true;
}

static void
release_area (struct cow_store *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
  s->committing = false;
  pthread_cond_broadcast (&s->commit_done);
}

int
cow_merge_begin (struct cow_store *s, struct cow_merge **mp)
{
  struct cow_merge *m;
  int r;

  *mp = NULL;
  if (s->readonly)
    return store_error (s, EROFS, "cannot merge a store opened read-only");
  if (s->origin == NULL)
    return store_error (s, EINVAL, "cannot merge without the origin");
  if (!s->valid)
    return store_error (s, EINVAL, "the store is invalidated: there is no "
                        "snapshot to merge");
  /* Records still pending are committed first: the merge walks the
   * areas as they are on disk.
   */
  r = cow_store_commit (s);
  if (r < 0)
    return r;

  m = calloc (1, sizeof *m);
  if (m == NULL)
    return store_error (s, ENOMEM, "out of memory");
  m->s = s;
  m->copy_bytes = s->chunk_bytes > COW_MERGE_PIECE ? s->chunk_bytes
    : COW_MERGE_PIECE;
  m->buf = malloc (s->chunk_bytes);
  m->copy_buf = malloc (m->copy_bytes);
  if (m->buf == NULL || m->copy_buf == NULL) {
    cow_merge_end (m);
    return store_error (s, ENOMEM, "out of memory");
  }
  own_area (s);
  memcpy (m->buf, s->area, s->chunk_bytes);
  m->area = s->current_area;
  m->committed = s->current_committed;
  release_area (s);
  *mp = m;
  return 0;
}

void
cow_merge_end (struct cow_merge *m)
{
  if (m == NULL)
    return;
  /* Runs prepared and not committed are still recorded on disk and in
   * the table: a later merge copies them again.
   */
  free (m->runs);
  free (m->buf);
  free (m->copy_buf);
  free (m);
}

static int
push_run (struct cow_merge *m, const struct cow_merge_run *run)
{
  if (m->nr_runs == m->cap_runs) {
    size_t cap = m->cap_runs ? 2 * m->cap_runs : 64;
    struct cow_merge_run *v = realloc (m->runs, cap * sizeof *v);

    if (v == NULL)
      return store_error (m->s, ENOMEM, "out of memory");
    m->runs = v;
    m->cap_runs = cap;
  }
  m->runs[m->nr_runs++] = *run;
  m->prepared += run->chunks;
  return 0;
}

int
cow_merge_prepare (struct cow_merge *m, struct cow_merge_run *run)
{
  struct cow_store *s = m->s;
  uint32_t E = s->exceptions_per_area;
  struct core_exception last, e;
  const struct core_exception zero = { 0, 0 };
  uint32_t n;
  int r;

  if (m->committed == 0) {
    if (m->area == 0)
      return 0;                 /* every record is taken */
    /* The area is used up: the one before it becomes current.  Areas
     * before the current one are full and did not change since the
     * load validated them.
     */
    m->area--;
    r = cow_io_pread (s->cow, m->buf, s->chunk_bytes,
                      chunk_offset (s, cow_area_location (E, m->area)));
    if (r < 0) {
      m->area++;
      return store_error (s, -r, "cannot read area %" PRIu64 ": %s",
                          m->area - 1, cow_strerror (-r));
    }
    m->committed = E;
  }

  cow_decode_exception (m->buf, m->committed - 1, &last);
  for (n = 1; n < m->committed; n++) {
    cow_decode_exception (m->buf, m->committed - 1 - n, &e);
    if (e.old_chunk != last.old_chunk - n ||
        e.new_chunk != last.new_chunk - n)
      break;
  }
  *run = (struct cow_merge_run) {
    .old_chunk = last.old_chunk + 1 - n,
    .new_chunk = last.new_chunk + 1 - n,
    .chunks = n,
  };
  r = push_run (m, run);
  if (r < 0)
    return r;
  /* Cleared in the buffer now, on disk at the commit. */
  for (uint32_t k = m->committed - n; k < m->committed; k++)
    cow_encode_exception (m->buf, k, &zero);
  m->committed -= n;
  return (int) n;
}

int
cow_merge_copy (struct cow_merge *m, const struct cow_merge_run *run,
                cow_merge_progress_fn progress, void *opaque)
{
  struct cow_store *s = m->s;
  uint64_t dst = chunk_offset (s, run->old_chunk);
  uint64_t src = chunk_offset (s, run->new_chunk);
  uint64_t count, done, piece;
  int r;

  /* The records were checked against the origin at open: the run
   * starts inside it.  Only the bytes inside the origin are copied.
   */
  count = run->chunks << s->chunk_shift;
  if (count > s->origin_size - dst)
    count = s->origin_size - dst;
  for (done = 0; done < count; done += piece) {
    piece = count - done < m->copy_bytes ? count - done : m->copy_bytes;
    r = cow_io_pread (s->cow, m->copy_buf, piece, src + done);
    if (r < 0)
      return store_error (s, -r, "cannot read chunks %" PRIu64 "-%" PRIu64
                          " to merge them: %s", run->new_chunk,
                          run->new_chunk + run->chunks - 1,
                          cow_strerror (-r));
    r = cow_io_pwrite (s->origin, m->copy_buf, piece, dst + done);
    if (r < 0)
      return origin_error (s, -r, "cannot write chunks %" PRIu64 "-%"
                           PRIu64 " of the merge: %s", run->old_chunk,
                           run->old_chunk + run->chunks - 1,
                           cow_strerror (-r));
    m->totals.bytes += piece;
    if (progress) {
      r = progress (opaque, piece);
      if (r < 0)
        return r;
    }
  }
  return 0;
}

static int
write_area (struct cow_store *s, uint64_t area, const void *buf)
{
  chunk_t loc = cow_area_location (s->exceptions_per_area, area);
  int r;

  r = cow_io_pwrite (s->cow, buf, s->chunk_bytes, chunk_offset (s, loc));
  if (r < 0)
    return store_error (s, -r, "cannot write area %" PRIu64 " of the "
                        "merge: %s", area, cow_strerror (-r));
  return 0;
}

/* Write the areas emptied, from the highest down, and the cursor's,
 * then sync once (the top of the file says why that is enough).  The
 * caller owns the area state.
 */
static int
clear_records_locked (struct cow_merge *m)
{
  struct cow_store *s = m->s;
  uint64_t area;
  int r;

  for (area = s->current_area; area > m->area; area--) {
    r = write_area (s, area, s->zero_chunk);
    if (r < 0)
      return r;
  }
  if (m->area != s->current_area || m->committed != s->current_committed) {
    r = write_area (s, m->area, m->buf);
    if (r < 0)
      return r;
  }
  r = cow_io_sync (s->cow);
  if (r < 0)
    return store_error (s, -r, "cannot sync the COW store: %s",
                        cow_strerror (-r));
  return 0;
}

int
cow_merge_commit (struct cow_merge *m)
{
  struct cow_store *s = m->s;
  int r;

  if (m->nr_runs == 0)
    return 0;
  if (s->failed)
    return store_failed_error (s, true);
  /* The kernel's merge_callback: the origin is flushed before the
   * records go.
   */
  r = cow_io_sync (s->origin);
  if (r < 0)
    return origin_error (s, -r, "cannot sync the origin: %s",
                         cow_strerror (-r));

  own_area (s);
  r = clear_records_locked (m);
  if (r < 0) {
    /* What reached the disk is unknown; each state it can be in is a
     * good one (see the top), but this store object no longer knows
     * which: reopen to go on.
     */
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    s->failed = -EIO;
  }
  else {
    memcpy (s->area, m->buf, s->chunk_bytes);
    s->current_area = m->area;
    s->current_committed = m->committed;
    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
      for (size_t i = 0; i < m->nr_runs; i++)
        for (uint64_t k = 0; k < m->runs[i].chunks; k++)
          table_remove_locked (&s->table, m->runs[i].old_chunk + k);
      s->records -= m->prepared;
      m->totals.records += m->prepared;
      m->totals.runs += m->nr_runs;
      /* As the kernel's commit_merge sets it (top of the file). */
      s->next_free = cow_area_location (s->exceptions_per_area, m->area) +
        m->committed + 1;
    }
  }
  release_area (s);
  if (r < 0)
    return r;
  m->nr_runs = 0;
  m->prepared = 0;
  return 0;
}

/* Zero every area after area 0 that is not zero: one read each, a
 * write only for a stale one.  The cost: every area of the device is read
 * (one chunk per E data chunks, about 0.4% of a store at 4K chunks):
 * a stale area can lie above the last one in use, left by an earlier
 * interrupted merge, and nothing on disk bounds how far up.
 */
static int
zero_stray_areas (struct cow_store *s, uint64_t size)
{
  uint32_t E = s->exceptions_per_area;
  CLEANUP_FREE uint8_t *buf = malloc (s->chunk_bytes);
  int r;

  if (buf == NULL)
    return -ENOMEM;
  for (uint64_t area = 1;
       chunk_offset (s, cow_area_location (E, area)) + s->chunk_bytes <= size;
       area++) {
    uint64_t at = chunk_offset (s, cow_area_location (E, area));

    r = cow_io_pread (s->cow, buf, s->chunk_bytes, at);
    if (r < 0)
      return r;
    if (buf[0] == 0 && memcmp (buf, buf + 1, s->chunk_bytes - 1) == 0)
      continue;
    r = cow_io_pwrite (s->cow, s->zero_chunk, s->chunk_bytes, at);
    if (r < 0)
      return r;
  }
  return 0;
}

/* No record is left: clear stale areas.  They are beyond the
 * terminator, where nothing reads them, so a failure is not an error.
 */
static int
finish (struct cow_merge *m)
{
  struct cow_store *s = m->s;
  uint64_t from = chunk_offset (s, 2), size;
  int r;

  if (m->finished)
    return 0;
  m->finished = true;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    size = s->dev_size;
  }
  if (size <= from)
    return 0;
  r = zero_stray_areas (s, size);
  if (r == 0)
    r = cow_io_sync (s->cow);
  if (r < 0)
    store_message (s, COW_MSG_DEBUG, "cannot clear the stale areas: %s",
                   cow_strerror (-r));
  return 0;
}

int64_t
cow_merge_step (struct cow_merge *m, uint64_t budget,
                cow_merge_progress_fn progress, void *opaque)
{
  struct cow_merge_run run;
  uint64_t bytes = 0, records;
  int r;

  bool done = false;

  while (bytes < budget) {
    r = cow_merge_prepare (m, &run);
    if (r < 0)
      return r;
    if (r == 0) {
      done = true;
      break;
    }
    bytes += run.chunks << m->s->chunk_shift;
  }
  /* Copy the step's runs in the order of the records, the reverse of
   * the order they were prepared in: their COW chunks then come in
   * ascending order, which the store's readahead follows, where going
   * backwards through a store of scattered runs reads it a chunk at a
   * time.  The order of the copies within a step does not matter to a
   * crash: the commit syncs the origin before it clears any record.
   */
  for (size_t i = m->nr_runs; i-- > 0; ) {
    r = cow_merge_copy (m, &m->runs[i], progress, opaque);
    if (r < 0)
      return r;
  }
  records = m->prepared;
  r = cow_merge_commit (m);
  if (r < 0)
    return r;
  if (done)
    finish (m);
  return records;
}

void
cow_merge_get_totals (const struct cow_merge *m, struct cow_merge_totals *t)
{
  *t = m->totals;
}
