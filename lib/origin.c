/* origin.c: origin mode (the kernel's snapshot-origin): the origin as a
 * writable block device, with stores that keep its point-in-time views.
 *
 * Reads, prefetches and block status go straight to the origin.  Every
 * change of the origin (write, zero, trim) goes segment by segment:
 * origin_prepare (origin-copy.c) copies what the stores lack and makes
 * it durable, with the stores' chunk locks held; the origin changes;
 * the locks go.  Segments are ORIGIN_SEGMENT bytes, aligned, so a
 * large request needs a bounded buffer and no chunk of any store spans
 * two segments.  With FUA the origin is synced at the end.
 *
 * With defer_writes, a write without FUA that needs a commit does not
 * wait for it: origin-defer.c queues it once its copies are made, and
 * reads, flushes and the other changes keep their order with it.
 *
 * A store full, invalidated or failed: origin-copy.c, which applies the
 * on-full policy.  Each store keeps serving its snapshot through the
 * cow_snapshot_* calls (snapshot.c), which know of origin mode only
 * through s->live_origin.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "origin-internal.h"

void
origin_message (const struct cow_origin *o, enum cow_msg_level level,
                const char *fs, ...)
{
  char msg[512];
  va_list args;

  if (o->message == NULL)
    return;
  va_start (args, fs);
  vsnprintf (msg, sizeof msg, fs, args);
  va_end (args);
  if (o->origin_name == NULL)
    o->message (o->message_opaque, level, msg);
  else {
    char line[PATH_MAX + sizeof msg];

    snprintf (line, sizeof line, "%s: %s", o->origin_name, msg);
    o->message (o->message_opaque, level, line);
  }
}

int
origin_io_error (const struct cow_origin *o, int r, const char *what,
                 uint64_t offset)
{
  origin_message (o, COW_MSG_ERROR, "%s the origin at offset %" PRIu64
                  ": %s", what, offset, cow_strerror (-r));
  return r;
}

/* Each store must serve a snapshot of this very origin, in origin mode. */
static int
check_store (struct cow_origin *o, size_t i, struct cow_store *s)
{
  if (!s->live_origin)
    return store_error (s, EINVAL, "store %zu was not opened for origin "
                        "mode (live_origin)", i);
  if (s->origin != o->io || s->origin_size != o->size)
    return store_error (s, EINVAL, "store %zu is not over this origin", i);
  /* The origin's on-full policy says what a full store does; a store
   * that invalidated itself could do so while an origin writer is
   * skipping it, before the header is on disk (origin-copy.c).
   */
  if (s->invalidate_on_overflow)
    return store_error (s, EINVAL, "overflow=invalidate does not apply "
                        "in origin mode: on-full= says what a full "
                        "store does");
  return 0;
}

int
cow_origin_open (struct cow_io *io, struct cow_store *const *stores,
                 size_t nr_stores, const struct cow_origin_params *params,
                 struct cow_origin **originp)
{
  struct cow_origin *o = calloc (1, sizeof *o);
  int r;

  if (o == NULL)
    return -ENOMEM;
  o->io = io;
  o->fail_write_when_full = params->fail_write_when_full;
  o->message = params->message;
  o->message_opaque = params->message_opaque;
  o->origin_name = params->origin_name;
  o->defer_writes = params->defer_writes;
  pthread_mutex_init (&o->start_lock, NULL);
  defer_init (&o->defer);

  r = cow_io_get_size (io, &o->size);
  if (r < 0) {
    origin_message (o, COW_MSG_ERROR, "cannot get the origin's size: %s",
                    cow_strerror (-r));
    goto err;
  }
  for (size_t i = 0; i < nr_stores; i++) {
    r = check_store (o, i, stores[i]);
    if (r < 0)
      goto err;
    /* An origin writer would take its chunk locks twice. */
    for (size_t j = 0; j < i; j++)
      if (stores[j] == stores[i]) {
        r = store_error (stores[i], EINVAL, "stores %zu and %zu are the "
                         "same store", j, i);
        goto err;
      }
  }
  o->st = calloc (nr_stores ? nr_stores : 1, sizeof *o->st);
  if (o->st == NULL) {
    r = -ENOMEM;
    goto err;
  }
  o->nr_stores = nr_stores;
  for (size_t i = 0; i < nr_stores; i++) {
    o->st[i].s = stores[i];
    stores[i]->full_policy = o->fail_write_when_full
      ? "origin writes that need a copy fail with ENOSPC and the snapshot "
        "stays whole (on-full=fail-write)"
      : "origin writes go on and invalidate this snapshot "
        "(on-full=invalidate)";
    pthread_mutex_init (&o->st[i].inval_lock, NULL);
    committer_init (&o->st[i].committer, stores[i]);
  }
  *originp = o;
  return 0;

 err:
  defer_stop (o);
  pthread_mutex_destroy (&o->start_lock);
  free (o);
  return r;
}

void
cow_origin_close (struct cow_origin *o)
{
  if (o == NULL)
    return;
  /* The applier commits through the committers: it goes first. */
  defer_stop (o);
  for (size_t i = 0; i < o->nr_stores; i++) {
    committer_stop (&o->st[i].committer);
    pthread_mutex_destroy (&o->st[i].inval_lock);
  }
  pthread_mutex_destroy (&o->start_lock);
  free (o->st);
  free (o);
}

static int
check_range (const struct cow_origin *o, uint64_t count, uint64_t offset)
{
  if (offset > o->size || count > o->size - offset) {
    origin_message (o, COW_MSG_ERROR, "request of %" PRIu64 " bytes at %"
                    PRIu64 " is past the end of the origin (%" PRIu64
                    " bytes)", count, offset, o->size);
    return -EINVAL;
  }
  return 0;
}

/* Asked at each change, not fixed at open: a server learns that a
 * store may be written only when a client connects, and then calls
 * cow_store_set_writable.
 */
static bool
is_readonly (const struct cow_origin *o)
{
  for (size_t i = 0; i < o->nr_stores; i++)
    if (o->st[i].s->readonly)
      return true;
  return false;
}

static int
check_writable (const struct cow_origin *o)
{
  if (is_readonly (o)) {
    origin_message (o, COW_MSG_ERROR, "the origin is read-only, as one of "
                    "its stores is");
    return -EROFS;
  }
  return 0;
}

int
cow_origin_pread (struct cow_origin *o, void *buf, uint32_t count,
                  uint64_t offset)
{
  int r = check_range (o, count, offset);

  if (r == 0 && count > 0) {
    r = o->defer_writes ? defer_pread (o, buf, count, offset)
      : cow_io_pread (o->io, buf, count, offset);
    if (r < 0)
      return origin_io_error (o, r, "cannot read", offset);
  }
  return r;
}

enum change { CHANGE_WRITE, CHANGE_ZERO, CHANGE_TRIM };

static int
write_zeroes (struct cow_origin *o, uint64_t count, uint64_t offset)
{
  static const char zeroes[65536];

  while (count > 0) {
    uint64_t n = count < sizeof zeroes ? count : sizeof zeroes;
    int r = cow_io_pwrite (o->io, zeroes, n, offset);

    if (r < 0)
      return origin_io_error (o, r, "cannot write zeroes to", offset);
    offset += n;
    count -= n;
  }
  return 0;
}

/* Change one segment of the origin, its copies made. */
static int
apply (struct cow_origin *o, enum change kind, const char *buf,
       uint64_t count, uint64_t offset)
{
  int r;

  if (kind == CHANGE_WRITE) {
    r = cow_io_pwrite (o->io, buf, count, offset);
    if (r < 0)
      return origin_io_error (o, r, "cannot write", offset);
    return 0;
  }
  if (o->io->ops->punch == NULL)
    return write_zeroes (o, count, offset);  /* trim has no punch: not here */
  r = o->io->ops->punch (o->io, offset, count);
  if (r < 0)
    return origin_io_error (o, r, "cannot zero", offset);
  return 0;
}

/* A segment of a write without FUA: copy, then queue the write if a
 * commit must come first (or a queued write overlaps), else write it.
 */
static int
write_deferred (struct cow_origin *o, const char *buf, uint64_t count,
                uint64_t offset, struct origin_hold *hold)
{
  bool need_commit = false, deferred;
  int r = origin_copy (o, offset, count, hold);

  if (r < 0)
    return r;
  for (size_t i = 0; i < o->nr_stores; i++)
    need_commit |= hold->want[i];
  r = defer_write (o, buf, count, offset, need_commit, &deferred);
  if (r == 0 && !deferred)
    r = apply (o, CHANGE_WRITE, buf, count, offset);
  origin_unhold (o, hold);
  return r;
}

static int
change (struct cow_origin *o, enum change kind, const char *buf,
        uint64_t count, uint64_t offset, bool fua)
{
  bool defer = o->defer_writes && kind == CHANGE_WRITE && !fua;
  struct origin_hold hold;
  int r = 0;

  /* What does not join the queue goes after what it overlaps there. */
  if (o->defer_writes && !defer)
    r = defer_drain_overlap (o, offset, count);
  if (r == 0)
    r = origin_hold_init (o, &hold);
  if (r < 0)
    return r;
  while (r == 0 && count > 0) {
    uint64_t seg = ORIGIN_SEGMENT - offset % ORIGIN_SEGMENT;

    if (seg > count)
      seg = count;
    if (defer)
      r = write_deferred (o, buf, seg, offset, &hold);
    else {
      r = origin_prepare (o, offset, seg, &hold);
      if (r == 0) {
        r = apply (o, kind, buf, seg, offset);
        origin_unhold (o, &hold);
      }
    }
    if (buf)
      buf += seg;
    offset += seg;
    count -= seg;
  }
  origin_hold_free (&hold);
  if (r == 0 && fua) {
    r = cow_io_sync (o->io);
    if (r < 0)
      origin_message (o, COW_MSG_ERROR, "cannot sync the origin: %s",
                      cow_strerror (-r));
  }
  return r;
}

int
cow_origin_pwrite (struct cow_origin *o, const void *buf, uint32_t count,
                   uint64_t offset, bool fua)
{
  return check_writable (o) ?: check_range (o, count, offset)
    ?: change (o, CHANGE_WRITE, buf, count, offset, fua);
}

int
cow_origin_zero (struct cow_origin *o, uint32_t count, uint64_t offset,
                 bool fua, bool fast)
{
  int r = check_writable (o) ?: check_range (o, count, offset);

  if (r == 0 && fast &&
      (o->io->ops->punch == NULL || origin_needs_copy (o, offset, count))) {
    /* Not an error: the client falls back to writing zeroes. */
    origin_message (o, COW_MSG_DEBUG, "fast zero of %" PRIu32 " bytes at %"
                    PRIu64 " would copy to a store or write zeroes",
                    count, offset);
    return -ENOTSUP;
  }
  return r ?: change (o, CHANGE_ZERO, NULL, count, offset, fua);
}

int
cow_origin_trim (struct cow_origin *o, uint32_t count, uint64_t offset,
                 bool fua)
{
  int r = check_writable (o) ?: check_range (o, count, offset);

  /* A trim is a hint: an origin that cannot punch keeps its data, and
   * then nothing changes that would need a copy.
   */
  if (r < 0 || o->io->ops->punch == NULL)
    return r;
  return change (o, CHANGE_TRIM, NULL, count, offset, fua);
}

int
cow_origin_flush (struct cow_origin *o)
{
  CLEANUP_FREE bool *want = NULL;
  int r = 0, rc;

  /* Every write completed before the flush is in the origin first. */
  if (o->defer_writes) {
    r = defer_flush (o);
    if (r < 0)
      return r;
  }
  if (!is_readonly (o)) {
    r = cow_io_sync (o->io);
    if (r < 0)
      origin_message (o, COW_MSG_ERROR, "cannot sync the origin: %s",
                      cow_strerror (-r));
  }
  if (o->nr_stores == 0)
    return r;
  want = calloc (o->nr_stores, sizeof *want);
  if (want == NULL) {
    origin_message (o, COW_MSG_ERROR, "out of memory");
    return -ENOMEM;
  }
  for (size_t i = 0; i < o->nr_stores; i++)
    want[i] = o->st[i].s->valid && !o->st[i].s->readonly;
  rc = origin_commit_stores (o, want);
  return r ?: rc;
}

int
cow_origin_cache (struct cow_origin *o, uint32_t count, uint64_t offset)
{
  int r = check_range (o, count, offset);

  if (r == 0 && count > 0 && o->io->ops->cache) {
    r = o->io->ops->cache (o->io, offset, count);
    if (r < 0)
      return origin_io_error (o, r, "cannot prefetch", offset);
  }
  return r;
}

int
cow_origin_extents (struct cow_origin *o, uint32_t count, uint64_t offset,
                    cow_extent_fn add, void *opaque)
{
  int r = check_range (o, count, offset);

  /* A queued write over a hole is not data in the origin yet.  If it
   * cannot be written, the range is data: block status may say so of
   * any range.
   */
  if (r == 0 && o->defer_writes && count > 0 &&
      defer_drain_overlap (o, offset, count) < 0)
    return add (opaque, offset, count, false);
  if (r == 0 && o->io->ops->extent == NULL && count > 0)
    return add (opaque, offset, count, false);
  while (r == 0 && count > 0) {
    uint64_t len = count;
    bool hole = false;

    r = o->io->ops->extent (o->io, offset, count, &len, &hole);
    if (r < 0)
      return origin_io_error (o, r, "cannot get block status of", offset);
    if (len == 0 || len > count)
      len = count;
    r = add (opaque, offset, len, hole);
    offset += len;
    count -= len;
  }
  return r;
}
