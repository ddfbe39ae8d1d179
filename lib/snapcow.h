/* snapcow.h: the public interface of libsnapcow, the exception store.
 *
 * This is the only lib/ header that plugin/, the tool and the tests
 * include.  It has no nbdkit or libnbd dependency: every byte goes
 * through a struct cow_io backend (io.h), one for the COW store and one
 * for the origin.
 *
 * A store is opened over two backends, loaded and validated
 * (cow-format.md, "Loading"), and then serves the snapshot: reads,
 * copy-on-write writes, zeroes, and commits of the exception records
 * in the kernel's order (cow-format.md, "Committing").  The functions
 * below are safe to call from many threads at once unless they say
 * otherwise.
 *
 * Errors: functions return 0 (or a count) on success and a negative
 * errno on failure.  The message, when there is one, has been handed to
 * the params.message callback, once, where the fault was found.
 */
#ifndef SNAPCOW_H
#define SNAPCOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* A chunk number, in units of whole chunks (cow-format.md, "Units"). */
typedef uint64_t chunk_t;

/* Fixed by the format. */
#define COW_SECTOR_SIZE        512
#define COW_SNAP_MAGIC         0x70416e53u   /* "SnAp" */
#define COW_DISK_VERSION       1
#define COW_DEFAULT_CHUNK_SECTORS 32         /* 16 KiB, the kernel's default */
/* The kernel refuses chunk sizes above INT_MAX >> 9 sectors; the largest
 * power of two under that is 1 GiB.
 */
#define COW_KERNEL_MAX_CHUNK_SECTORS (1u << 21)
/* Our own cap: an area buffer and every copy-on-write buffer is one
 * chunk, so a 1 GiB chunk would cost gigabytes per request.  LVM's
 * largest chunk is 512 KiB; we allow up to 1 MiB.
 */
#define COW_MAX_CHUNK_SECTORS  (1u << 11)

/* 0 if chunk_sectors is usable for a store, else -EINVAL with a reason
 * in *why (a static string: "is not a power of two", ...).
 */
extern int cow_check_chunk_sectors (uint64_t chunk_sectors, const char **why);

/* The text of an errno value, for messages: untranslated, so it never
 * takes the C library's locale lock (a server logging from many
 * threads, or one under a preloaded sanitizer, is safe), and
 * thread-safe for any value.
 */
extern const char *cow_strerror (int err);

/* Message levels handed to the callback. */
enum cow_msg_level {
  COW_MSG_ERROR,      /* the call that reported it fails */
  COW_MSG_WARNING,    /* something the user should know; the call goes on */
  COW_MSG_DEBUG,      /* details for nbdkit -v */
};

typedef void (*cow_msg_fn) (void *opaque, enum cow_msg_level level,
                            const char *msg);

/* What the caller tells cow_store_open. */
struct cow_store_params {
  uint32_t chunk_sectors;  /* chunk size for a new store, in 512-byte
                            * sectors; 0 means the default (32).  An
                            * existing store's own size wins. */
  uint64_t max_size;       /* cap on the COW device in bytes when it can
                            * grow (a file); 0 means no cap */
  bool readonly;           /* write nothing to either backend */
  bool invalidate_on_overflow; /* when full, invalidate the store as the
                            * kernel does without its overflow mode
                            * (default: -ENOSPC for the writes that need
                            * a new chunk; the store stays valid) */
  bool commit_each_copy;   /* the kernel's timing: a write that made a
                            * new chunk returns once its record is
                            * durable (default: at the next flush) */
  bool overwrite_signatures; /* initialise a new store (magic 0) even over
                            * a filesystem, partition table or other
                            * signature the cow backend's probe finds
                            * (default: refuse with -EEXIST) */
  bool live_origin;        /* the origin is written, through a cow_origin
                            * (below), while this store serves its
                            * snapshot: the snapshot's reads from the
                            * origin are ordered against origin writes,
                            * and a trim releases chunks (origin mode) */
  bool reflink;            /* a first write clones the origin's chunk
                            * where the backends can share blocks
                            * (io clone_from: XFS with reflink, btrfs)
                            * and writes only the client's bytes
                            * (default: copy; each clone locks both
                            * files, which many small first writes at
                            * once pay for) */
  cow_msg_fn message;      /* may be NULL */
  void *message_opaque;
  /* Names that prefix each message ("NAME: ..."), so that it says which
   * file it is about: cow_name on messages about the store, origin_name
   * on those about the origin.  NULL: no prefix (the caller adds its
   * own).  Not copied: they must outlive the store.
   */
  const char *cow_name;
  const char *origin_name;
};

struct cow_store;

/* Usage in 512-byte sectors, as the kernel's status line prints it
 * (cow-format.md, "Usage figures").
 */
struct cow_usage {
  uint64_t allocated_sectors;  /* next_free * chunk_sectors */
  uint64_t total_sectors;      /* size of the COW device now */
  uint64_t metadata_sectors;   /* (current_area + 2) * chunk_sectors */
  uint64_t records;            /* exceptions, committed or not */
  uint64_t pending;            /* of those, not yet committed */
  uint64_t current_area;
  uint32_t chunk_sectors;
  bool valid;
};

/* Open a store.  Reads chunk 0; a magic of 0 means a new store, which is
 * initialised (unless params->readonly: then it serves the origin
 * unchanged and writes nothing).  Otherwise the header and every record
 * are validated and loaded.  On success *storep owns neither backend:
 * the caller closes them after cow_store_close.
 *
 * A new store is not initialised over a known signature (a filesystem,
 * partition table, LVM PV, swap, RAID metadata: the cow backend's probe
 * op) unless params->overwrite_signatures: -EEXIST.  The chunk size
 * (the header's, or the requested one for a new store) must be a
 * multiple of both backends' logical block size, as the kernel
 * requires: -EINVAL.
 *
 * origin may be NULL to inspect or create a store without its origin
 * (the tool): old_chunk is then not checked against an origin's size,
 * and the snapshot has no data to read or write.
 */
extern int cow_store_open (struct cow_io *cow, struct cow_io *origin,
                           const struct cow_store_params *params,
                           struct cow_store **storep);

/* The checks of the origin that cow_store_open makes, for a caller
 * that has no store to open yet (the plugin, before the first writable
 * connection creates one): the origin is not empty, and its logical
 * block size divides params->chunk_sectors (or the default).  0, or a
 * negative errno with the message given to params->message.
 */
extern int cow_origin_check (struct cow_io *origin,
                             const struct cow_store_params *params);

/* Let a store opened read-only take writes from now on (nbdkit only
 * learns whether it is read-only when a client connects).  A new store
 * is initialised now, and refused as cow_store_open would (-EEXIST over
 * a signature).  The cow backend must accept writes.
 */
extern int cow_store_set_writable (struct cow_store *s);

/* Commit what is pending (unless read-only or failed) and free the
 * store.  Returns the commit's result.
 */
extern int cow_store_close (struct cow_store *s);

/* Geometry. */
extern uint32_t cow_store_chunk_sectors (const struct cow_store *s);
extern uint64_t cow_store_origin_size (const struct cow_store *s); /* bytes */

/* Look up the COW chunk of an origin chunk.  Lock-free.  Returns true
 * and sets *new_chunk when the chunk has an exception (committed or
 * not).
 */
extern bool cow_store_lookup (const struct cow_store *s, chunk_t old_chunk,
                              chunk_t *new_chunk);

/* Hand out the next free data chunk, skipping metadata areas, growing
 * a file store as needed and reserving the chunk's space (and that of
 * the metadata area it steps over) in the filesystem.  -ENOSPC when the
 * store or the filesystem is full (the chunk is given back), -EROFS
 * when read-only, -EIO after a failed commit.
 */
extern int cow_store_allocate (struct cow_store *s, chunk_t *new_chunk);

/* Record old_chunk -> new_chunk once new_chunk's data has been written.
 * The mapping is visible to lookups at once and durable after the next
 * successful cow_store_commit.
 */
extern int cow_store_add_exception (struct cow_store *s, chunk_t old_chunk,
                                    chunk_t new_chunk);

/* Make every write completed before the call durable, and every record
 * added before the call committed: sync the data, zero the next area
 * where one fills, write the areas, sync (one sync when no record is
 * pending).  Concurrent callers share one commit.  An area write that
 * fails with ENOSPC returns -ENOSPC and keeps the records pending, in
 * order, for the next commit.  Any other failure fails the store: every
 * later write and commit returns -EIO (a failed sync is never retried
 * as if it had succeeded).
 */
extern int cow_store_commit (struct cow_store *s);

/* Mark the store invalid on disk (header valid=0), as the kernel does.
 * Nothing else is changed.  The store refuses writes afterwards.
 */
extern int cow_store_invalidate (struct cow_store *s);

extern void cow_store_usage (struct cow_store *s, struct cow_usage *u);
/* The usage as the kernel's `dmsetup status` prints it for the store:
 * "allocated/total metadata" in sectors, or "Invalid".  buf holds at
 * least COW_USAGE_STATUS_LEN bytes, which always fits the line.
 */
#define COW_USAGE_STATUS_LEN 64
extern void cow_usage_status (const struct cow_usage *u, char *buf,
                              size_t len);

/* The snapshot as a block device of cow_store_origin_size bytes.
 * Requests may have any length and alignment within the device.  With
 * fua, the data (and any record it needed) is durable on return.
 */
extern int cow_snapshot_pread (struct cow_store *s, void *buf,
                               uint32_t count, uint64_t offset);
extern int cow_snapshot_pwrite (struct cow_store *s, const void *buf,
                                uint32_t count, uint64_t offset, bool fua);
/* The range reads as zeroes afterwards.  Whole chunks are deallocated
 * in the COW file (punched) rather than written.  A chunk without an
 * exception gets one unless the origin is a hole there.  With fast,
 * -ENOTSUP, before doing anything, if part of a chunk would have to be
 * copied from the origin (the NBD fast-zero contract).
 */
extern int cow_snapshot_zero (struct cow_store *s, uint32_t count,
                              uint64_t offset, bool fua, bool fast);
/* Discard, as the kernel's discard_zeroes_cow: chunks with exceptions
 * are punched in the COW file over the range (reading as zeroes there,
 * their records kept); chunks without one are left alone and still
 * read from the origin.  Allocates nothing.  With params.live_origin
 * (origin mode) a trim releases instead: each whole chunk without an
 * exception gets one pointing at a punched chunk, so it reads as zeroes
 * and later origin writes never copy it (a full store releases no
 * more); part of a chunk without one is left alone.
 */
extern int cow_snapshot_trim (struct cow_store *s, uint32_t count,
                              uint64_t offset, bool fua);
/* Prefetch the range from where each part lives: the COW chunk for
 * chunks with exceptions, the origin for the rest (the backends' cache
 * op; nothing where it is NULL).
 */
extern int cow_snapshot_cache (struct cow_store *s, uint32_t count,
                               uint64_t offset);

/* Block status.  Calls add(opaque, offset, length, is_zero) for
 * consecutive extents covering at least [offset, offset+1) and at most
 * [offset, offset+count).  is_zero is true only where the range is
 * known to read as zeroes (a hole in the COW chunk or in the origin).
 */
typedef int (*cow_extent_fn) (void *opaque, uint64_t offset, uint64_t length,
                              bool is_zero);
extern int cow_snapshot_extents (struct cow_store *s, uint32_t count,
                                 uint64_t offset, cow_extent_fn add,
                                 void *opaque);

/* Origin mode (the kernel's snapshot-origin): the origin itself,
 * writable, with one or more stores that keep its point-in-time views.
 * Before a chunk of the origin is first overwritten, its old contents
 * are copied into every store that has no exception for it yet, and
 * their records are durable before the origin write is issued.
 */
struct cow_origin;

struct cow_origin_params {
  /* on-full=fail-write: an origin write for which some store has no
   * room to copy fails with -ENOSPC and every snapshot stays whole.
   * Default (false), as the kernel: that store is invalidated (said
   * once, as an error message) and the write goes on.
   */
  bool fail_write_when_full;
  /* A write without FUA whose copies need a commit is queued once they
   * are made, and written into the origin by a thread after the commit,
   * so the client does not wait for the sync (origin-defer.c).  Reads,
   * flushes and other changes keep their order with queued writes; a
   * flush waits for them.  Default (false), as the kernel: each such
   * write waits for its commit.
   */
  bool defer_writes;
  cow_msg_fn message;           /* may be NULL */
  void *message_opaque;
  const char *origin_name;      /* prefixes messages about the origin */
};

/* stores[0..nr_stores) were opened with cow_store_open over this same
 * origin backend with params.live_origin set (chunk sizes may differ).
 * The cow_origin owns neither the backend nor the stores: close it
 * first, then the stores, then the backends.  nr_stores may be 0 (then
 * it is a plain pass-through).  While a store is read-only the origin
 * is too: writes return -EROFS (asked at each write, so
 * cow_store_set_writable on the stores lifts it).  A store opened with
 * invalidate_on_overflow is refused (-EINVAL): in origin mode
 * fail_write_when_full says what a full store does (a snapshot write
 * that finds its store full gets -ENOSPC, the store stays valid).
 */
extern int cow_origin_open (struct cow_io *origin,
                            struct cow_store *const *stores,
                            size_t nr_stores,
                            const struct cow_origin_params *params,
                            struct cow_origin **originp);
extern void cow_origin_close (struct cow_origin *o);

/* The origin as a block device of cow_io size bytes. */
extern int cow_origin_pread (struct cow_origin *o, void *buf, uint32_t count,
                             uint64_t offset);
extern int cow_origin_pwrite (struct cow_origin *o, const void *buf,
                              uint32_t count, uint64_t offset, bool fua);
/* Zero and trim change the origin, so they copy first, as a write does.
 * With fast, -ENOTSUP before doing anything if a copy would be needed.
 */
extern int cow_origin_zero (struct cow_origin *o, uint32_t count,
                            uint64_t offset, bool fua, bool fast);
extern int cow_origin_trim (struct cow_origin *o, uint32_t count,
                            uint64_t offset, bool fua);
/* Sync the origin and commit every store. */
extern int cow_origin_flush (struct cow_origin *o);
extern int cow_origin_cache (struct cow_origin *o, uint32_t count,
                             uint64_t offset);
extern int cow_origin_extents (struct cow_origin *o, uint32_t count,
                               uint64_t offset, cow_extent_fn add,
                               void *opaque);

/* Merging (merge.c): the kernel's snapshot-merge, which writes the
 * snapshot's chunks back into the origin, last record first, so that at
 * the end the origin is the former snapshot view and the store holds no
 * records (cow-format.md, "Merging back into the origin").  The steps
 * are the kernel's prepare_merge and commit_merge.  At every step the
 * store on disk is one the kernel can load and finish merging, and its
 * snapshot view is the same; an interrupted merge (a crash, a kill) is
 * finished by merging again.  The store must be open writable with its
 * origin; no other writer may use it during the merge, and it hands out
 * no new chunks until it is reopened.
 */
struct cow_merge;

/* The largest read or write of a merge's copy (or one chunk, if
 * larger): small enough to stay in the processor's cache between the
 * read and the write.
 */
#define COW_MERGE_PIECE (1u << 20)

/* A run of records consecutive in both old_chunk and new_chunk. */
struct cow_merge_run {
  chunk_t old_chunk;            /* first origin chunk */
  chunk_t new_chunk;            /* first COW chunk */
  uint64_t chunks;              /* >= 1 */
};

/* Totals of a merge so far: records and runs committed, bytes copied
 * to the origin (a copy repeated after a crash counts again).
 */
struct cow_merge_totals {
  uint64_t records, runs, bytes;
};

/* Called after each piece of a copy with its size in bytes; a negative
 * errno stops the copy with that error.
 */
typedef int (*cow_merge_progress_fn) (void *opaque, uint64_t bytes);

/* Start a merge: commit the pending records first, then take the area
 * state as the disk has it.  -EROFS (read-only), -EINVAL (no origin, or
 * an invalidated store).
 */
extern int cow_merge_begin (struct cow_store *s, struct cow_merge **mp);
/* Free the merge.  Runs prepared but not committed stay in the store. */
extern void cow_merge_end (struct cow_merge *m);
/* The kernel's prepare_merge: the run ending at the last record not yet
 * prepared, within its area; when the area is used up, the previous one
 * is read.  Returns the run's length (> 0), 0 when no record is left,
 * or a negative errno.  Several runs may be prepared before a commit.
 */
extern int cow_merge_prepare (struct cow_merge *m, struct cow_merge_run *run);
/* Copy a prepared run from the store to the origin (one pread and one
 * pwrite per piece of up to COW_MERGE_PIECE bytes; only the bytes
 * inside the origin), without a sync.
 */
extern int cow_merge_copy (struct cow_merge *m,
                           const struct cow_merge_run *run,
                           cow_merge_progress_fn progress, void *opaque);
/* The kernel's commit_merge, after its merge_callback's origin flush:
 * sync the origin, zero the prepared records in their areas (write the
 * emptied areas and the current one), sync the store, drop the records
 * from the table.  Every run prepared must have
 * been copied.  On failure the store object fails (-EIO afterwards);
 * what is on disk is still a good store: reopen it and merge again.
 */
extern int cow_merge_commit (struct cow_merge *m);
/* Prepare and copy runs until `budget` bytes or no record is left, then
 * commit: the number of records merged (0: done), or a negative errno.
 * When no record is left, any area after area 0 that an interrupted
 * merge left stale is zeroed.  The data chunks stay, as the kernel
 * leaves them.
 */
extern int64_t cow_merge_step (struct cow_merge *m, uint64_t budget,
                               cow_merge_progress_fn progress, void *opaque);
extern void cow_merge_get_totals (const struct cow_merge *m,
                                  struct cow_merge_totals *t);

/* Online merge (merge-online.c): the kernel's snapshot-merge target.  A
 * background thread runs the merge steps above while the store serves
 * the snapshot's view through the cow_merging_* calls: a chunk with a
 * record reads (and is written in) its COW chunk, any other chunk reads
 * and is written in the origin; no record is ever added.  A write to a
 * chunk being merged waits for that step (at most step_bytes of data,
 * or one area's run).  At the end the store holds no records and the
 * view is the plain origin.  The store must have been opened without
 * live_origin, over its origin, and be used only through these calls
 * until cow_merging_close; then cow_store_close it.
 */
struct cow_merging;

#define COW_MERGING_STEP (4u << 20) /* default bytes per step */

struct cow_merging_params {
  uint64_t step_bytes;          /* data per step; 0: COW_MERGING_STEP */
};

enum cow_merging_state {
  COW_MERGING_WAITING,          /* not started (a read-only store) */
  COW_MERGING_RUNNING,
  COW_MERGING_DONE,             /* no record left; the view is the origin */
  COW_MERGING_FAILED,           /* stopped by an error (said once) */
};

struct cow_merging_status {
  enum cow_merging_state state;
  int error;                    /* negative errno when FAILED */
  uint64_t records_at_start;    /* at cow_merging_open */
  uint64_t records_left;
  uint64_t bytes;               /* copied into the origin so far */
  char usage[COW_USAGE_STATUS_LEN]; /* the kernel's status line */
};

/* -EINVAL for a store with no origin or an invalidated one.  Starts
 * nothing: the store may still be read-only.
 */
extern int cow_merging_open (struct cow_store *s,
                             const struct cow_merging_params *p,
                             struct cow_merging **mgp);
/* Start the background merge; the store must be writable (-EROFS).
 * Calling it again does nothing.
 */
extern int cow_merging_start (struct cow_merging *mg);
/* One step in the caller's thread (tests; not while the thread runs):
 * 1 when something was merged, 0 when done, or a negative errno (the
 * merge has failed).
 */
extern int cow_merging_step (struct cow_merging *mg);
/* Wait for the thread to end (at once if it was never started): 0, or
 * the merge's error.
 */
extern int cow_merging_wait (struct cow_merging *mg);
/* Stop the thread after its current step and free.  What is on disk is
 * a good store; a later merge goes on from it.
 */
extern void cow_merging_close (struct cow_merging *mg);
extern void cow_merging_get_status (struct cow_merging *mg,
                                    struct cow_merging_status *st);

/* The view, as the cow_snapshot_* calls.  Writes and zeroes to a chunk
 * that still has a record fail with -EIO once the merge has failed.
 * Trim does nothing (the origin keeps its blocks, a record's chunk is
 * about to be merged).  Flush syncs the origin and the store.  A fast
 * zero is -ENOTSUP where a backend cannot punch.
 */
extern int cow_merging_pread (struct cow_merging *mg, void *buf,
                              uint32_t count, uint64_t offset);
extern int cow_merging_pwrite (struct cow_merging *mg, const void *buf,
                               uint32_t count, uint64_t offset, bool fua);
extern int cow_merging_zero (struct cow_merging *mg, uint32_t count,
                             uint64_t offset, bool fua, bool fast);
extern int cow_merging_trim (struct cow_merging *mg, uint32_t count,
                             uint64_t offset, bool fua);
extern int cow_merging_flush (struct cow_merging *mg);
extern int cow_merging_cache (struct cow_merging *mg, uint32_t count,
                              uint64_t offset);
extern int cow_merging_extents (struct cow_merging *mg, uint32_t count,
                                uint64_t offset, cow_extent_fn add,
                                void *opaque);

/* Inspection, for the tool. */

/* Chunk 0 as it is on disk, unchecked (an invalidated or foreign store
 * too).  A device shorter than the header reads as zeroes past its end.
 */
struct cow_header_info {
  uint32_t magic;
  uint32_t valid;
  uint32_t version;
  uint32_t chunk_sectors;
};
extern int cow_read_header (struct cow_io *cow, struct cow_header_info *h);

/* Call fn for each committed record in on-disk order, stopping at the
 * first non-zero return, which is returned.
 */
typedef int (*cow_record_fn) (void *opaque, uint64_t area, uint32_t index,
                              chunk_t old_chunk, chunk_t new_chunk);
extern int cow_store_for_each_record (struct cow_store *s, cow_record_fn fn,
                                      void *opaque);

/* Check a store without trusting it, reporting every problem (not just
 * the first, unlike cow_store_open) through fn.  Errors make the store
 * unusable; warnings are stray data the kernel ignores (records after
 * the terminator, non-zero areas past the current one, data past the
 * next free chunk).  Returns 0 when the check ran (see the counts), or
 * a negative errno when the device could not be read at all.
 * origin_size 0 means unknown: old_chunk bounds are not checked.
 */
enum cow_severity { COW_PROBLEM_ERROR, COW_PROBLEM_WARNING };
typedef void (*cow_problem_fn) (void *opaque, enum cow_severity severity,
                                const char *msg);
struct cow_check_summary {
  uint32_t chunk_sectors;
  uint64_t records;
  uint64_t areas;               /* areas read, the current one included */
  chunk_t next_free;
  uint64_t errors;
  uint64_t warnings;
  bool is_new;                  /* magic 0: an empty new store */
};
extern int cow_check (struct cow_io *cow, uint64_t origin_size,
                      cow_problem_fn fn, void *opaque,
                      struct cow_check_summary *summary);

#endif /* SNAPCOW_H */
