/* store-internal.h: struct cow_store, shared by the lib/ files that
 * implement it.  Not for plugin/ or the tool.
 *
 * Locks, outermost first; take them only in this order.
 *   chunk lock       chunk_locks[old_chunk % NR_CHUNK_LOCKS] (chunk-lock.c):
 *                    held over one chunk's copy-on-write; one at a time
 *                    per thread, except as sets in the order that
 *                    chunk-lock.h gives (origin writes, tracked reads).
 *   s->commit_lock   the group-commit state (committing, tickets); never
 *                    held over I/O.  The thread that set `committing`
 *                    owns the area state below until it clears it.
 *   s->grow_lock     held over growing the COW file and reserving
 *                    space in it; guards reserved_to.
 *   s->lock          table inserts, next_free, dev_chunks, the pending
 *                    batch, failed; never held over I/O.
 *   s->bg_lock       the background committer's wake-up (commit.c); a
 *                    leaf, taken with no other lock held.
 */
#ifndef SNAPCOW_STORE_INTERNAL_H
#define SNAPCOW_STORE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "chunk-lock.h"
#include "cleanup.h"
#include "format.h"
#include "snapcow.h"
#include "table.h"

struct pending {
  struct core_exception *v;
  size_t len, cap;
};

struct cow_store {
  struct cow_io *cow;
  struct cow_io *origin;
  bool readonly;
  bool commit_each_copy;        /* params->commit_each_copy */
  bool invalidate_on_overflow;  /* params->invalidate_on_overflow */
  bool overwrite_signatures;    /* params->overwrite_signatures */
  bool live_origin;             /* params->live_origin: origin mode */
  cow_msg_fn message;
  void *message_opaque;
  const char *cow_name;         /* params->cow_name, may be NULL */
  const char *origin_name;      /* params->origin_name, may be NULL */

  /* Geometry, fixed after open. */
  uint32_t chunk_sectors;       /* 512-byte sectors */
  uint32_t chunk_shift;         /* log2 of the chunk size in bytes */
  uint64_t chunk_bytes;
  uint32_t exceptions_per_area; /* E */
  uint64_t origin_size;         /* bytes; the export size */
  chunk_t origin_chunks;        /* the last one may be partial */
  chunk_t max_chunks;           /* the COW device may not pass this */
  bool can_grow;
  uint64_t max_size;            /* params->max_size */
  bool unformatted;             /* magic 0, opened read-only: not yet
                                 * initialised */

  /* s->lock */
  pthread_mutex_t lock;
  struct cow_table table;
  chunk_t next_free;            /* next data chunk to hand out */
  uint64_t dev_size;            /* bytes in the COW device now */
  chunk_t dev_chunks;           /* whole chunks in the COW device now */
  struct pending pending;       /* added, not yet committed */
  /* The first `prepared` of pending: their data is stable and the areas
   * they fill have zeroed successors; the next commit round writes
   * them (commit.c).
   */
  size_t prepared;
  bool background_commit;       /* wake the background committer when
                                 * an area's worth is pending (tests
                                 * turn it off) */
  bool bg_kicked;               /* it was woken for the records pending */
  uint64_t records;             /* committed + pending */
  _Atomic int failed;           /* negative errno once a commit failed;
                                 * read without the lock on the write path */
  _Atomic bool valid;           /* header valid=1 */
  /* A "no space" error was reported and nothing has succeeded since:
   * later ones go to the debug log (commit.c, store_full_error).
   */
  _Atomic bool full_reported;
  /* A commit round found no space, and none has succeeded since (the
   * committing thread's, commit.c).
   */
  bool commit_short_of_space;
  /* Origin mode: what a full store means for origin writes (the
   * on-full= policy, set by cow_origin_open), said in the same line
   * as the first "no space" error so that a full store is one line in
   * the log.  NULL outside origin mode.
   */
  const char *full_policy;
  /* The COW backend could not share the origin's blocks once (another
   * filesystem, no reflink): first writes copy from now on (snapshot.c).
   */
  _Atomic bool no_clone;

  pthread_mutex_t grow_lock;
  chunk_t reserved_to;          /* chunks from next_free at open up to
                                 * here have their space reserved */

  /* s->commit_lock */
  pthread_mutex_t commit_lock;
  pthread_cond_t commit_done;
  bool committing;
  uint64_t tickets_issued;      /* flushes asked for */
  uint64_t tickets_done;        /* flushes served */
  /* Writes completed since the data was last synced; lets an idle flush
   * skip its syncs.  Bumped without a lock.
   */
  _Atomic uint64_t writes;
  uint64_t writes_synced;
  uint64_t prepared_covers;     /* tickets served once the prepared
                                 * records are written */
  uint64_t flushes;             /* cow_store_commit calls */
  uint64_t background_rounds;
  _Atomic uint64_t syncs;       /* syncs by commits */

  /* The background committer (commit.c).  s->bg_lock is a leaf: no
   * other lock is taken while it is held.
   */
  pthread_mutex_t bg_lock;
  pthread_cond_t bg_wake;
  pthread_t bg_thread;
  bool bg_started, bg_start_failed, bg_asked, bg_stop;

  /* Owned by the committing thread. */
  uint8_t *area;                /* current area, one chunk */
  uint8_t *zero_chunk;          /* one chunk of zeroes, read-only */
  uint64_t current_area;
  uint32_t current_committed;   /* records of the current area on disk */

  struct chunk_locks chunk_locks;
};

/* Report a message through the caller's callback, prefixed with the
 * name of the file it is about: store_* with s->cow_name, origin_* with
 * s->origin_name (no prefix where the name is NULL).  The *_error
 * helpers return -err so that `return store_error (s, EINVAL, ...)`
 * reads naturally.
 */
extern void store_message (const struct cow_store *s,
                           enum cow_msg_level level, const char *fs, ...)
  __attribute__ ((format (printf, 3, 4)));
extern int store_error (const struct cow_store *s, int err,
                        const char *fs, ...)
  __attribute__ ((format (printf, 3, 4)));
extern int origin_error (const struct cow_store *s, int err,
                         const char *fs, ...)
  __attribute__ ((format (printf, 3, 4)));
/* For the request paths (snapshot.c, merge-online.c): -EINVAL, said,
 * for a range past the end of the snapshot; and the one message for a
 * failed backend call r on io at offset ("cannot read the origin at
 * offset N: ..." or "... the COW store ..."), returning r.
 */
extern int store_check_range (const struct cow_store *s, uint64_t count,
                              uint64_t offset);
extern int store_io_error (const struct cow_store *s, int r,
                           const char *what, const struct cow_io *io,
                           uint64_t offset);

static inline uint64_t
chunk_offset (const struct cow_store *s, chunk_t chunk)
{
  return chunk << s->chunk_shift;
}

/* Bytes of origin chunk `chunk` inside the device: the chunk size,
 * except for a last partial chunk.
 */
static inline uint64_t
chunk_valid_bytes (const struct cow_store *s, chunk_t chunk)
{
  uint64_t start = chunk_offset (s, chunk);
  uint64_t left = s->origin_size - start;

  return left < s->chunk_bytes ? left : s->chunk_bytes;
}

/* load.c */
extern int store_load (struct cow_store *s);

/* alloc.c */
extern int store_grow_for (struct cow_store *s, chunk_t chunks);
/* Hand out up to n chunks at once, as n calls of cow_store_allocate
 * would (consecutive but for the metadata areas stepped over), under
 * one lock and with one grow and one reservation.  Returns how many
 * (at least 1: fewer where the store has room for fewer), or a
 * negative errno as cow_store_allocate.
 */
extern int store_allocate_chunks (struct cow_store *s, size_t n,
                                  chunk_t *chunks);

/* commit.c */
extern void store_note_write (struct cow_store *s);
/* After a write of data into the COW device at byte `at` that returned
 * r: a full device is store_full_error, another failure the one
 * message for it, and a success is noted for the next commit.  Returns
 * r (0 on success).
 */
extern int store_cow_written (struct cow_store *s, int r, uint64_t at);
/* The background committer's state, from cow_store_open; stop (and
 * join) it, and log the commit counters, before the store is freed.
 */
extern void store_commit_init (struct cow_store *s);
extern void store_commit_stop (struct cow_store *s);
/* Tests: off, an area's worth of pending records no longer starts a
 * background commit.
 */
extern void store_set_background_commit (struct cow_store *s, bool on);
/* cow_store_add_exception for n records at once, under one lock. */
extern int store_add_exceptions (struct cow_store *s, const chunk_t *old,
                                 const chunk_t *new_chunks, size_t n);
/* The error for a call on a failed store: "... accepts no more writes",
 * or with durable "... nothing more can be made durable".
 */
extern int store_failed_error (const struct cow_store *s, bool durable);
/* Report running out of space and return -ENOSPC: an error the first
 * time, then debug messages until store_not_full, so a full store does
 * not log once per request.
 */
extern int store_full_error (struct cow_store *s, const char *fs, ...)
  __attribute__ ((format (printf, 2, 3)));
extern void store_not_full (struct cow_store *s);

#endif /* SNAPCOW_STORE_INTERNAL_H */