/* io-mem.h: an I/O backend in memory with fault injection and power
 * loss simulation (io-mem.c), for the unit tests and the fuzzer only:
 * it is not part of libsnapcow, and nothing shipped links it.
 */
#ifndef SNAPCOW_IO_MEM_H
#define SNAPCOW_IO_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* A new backend whose image starts as a copy of data (size bytes; data
 * may be NULL for zeroes).  If growable, grow extends it.
 */
extern struct cow_io *cow_io_mem_new (const void *data, size_t size,
                                      bool growable);
/* The current image (valid until the next write or grow). */
extern const uint8_t *cow_io_mem_data (struct cow_io *io, size_t *size);
/* Fault injection: the nth (1-based, counted from now) call of the
 * given op fails with -err; 0 disables.  op is one of "pread",
 * "pwrite", "sync", "grow", "punch".  If sticky, every later call of
 * that op fails too.
 */
extern void cow_io_mem_fail (struct cow_io *io, const char *op,
                             unsigned nth, int err, bool sticky);
/* Power loss.  After track_power_loss, the backend keeps what was
 * synced apart from what was written since; power_loss then throws
 * away every write, punch and grow since the last sync, as a machine
 * that lost power would.
 */
extern int cow_io_mem_track_power_loss (struct cow_io *io);
extern int cow_io_mem_power_loss (struct cow_io *io);
/* A harsher power loss, as a disk with a volatile write cache: the
 * image after the crash is the durable one plus ANY subset of the
 * writes, punches and grows since the last sync, applied in any order,
 * each write or punch possibly torn (only some of its 512-byte sectors
 * land; a sector is atomic).  A lost grow leaves the image shorter.
 * The seed picks the subset, the order and the tears.  The result
 * becomes the durable image (tracking stays on).  If stats is not
 * NULL, it says what happened to the unsynced changes.
 */
struct cow_io_mem_crash {
  unsigned unsynced, lost, landed, torn;
};
extern int cow_io_mem_power_loss_random (struct cow_io *io, uint64_t seed,
                                         struct cow_io_mem_crash *stats);
/* How many times each op was called since creation. */
struct cow_io_mem_counts {
  unsigned pread, pwrite, sync, grow, punch;
  unsigned pwritev;             /* of the pwrites, the vectored ones */
  unsigned clone;               /* clone_from calls, failed ones too */
};
extern void cow_io_mem_counts (struct cow_io *io,
                               struct cow_io_mem_counts *counts);
/* From now on the backend has an extent op: 512-byte sectors of zeroes
 * are a hole, the rest data.  Call it before wrapping the backend.
 */
extern void cow_io_mem_set_extents (struct cow_io *io);
/* From now on the backend has a clone_from op that copies from another
 * memory backend (and refuses any other with -EOPNOTSUPP), or, if err
 * is not 0, fails every call with -err, as a filesystem without
 * reflink would.
 */
extern void cow_io_mem_set_clone (struct cow_io *io, int err);

#endif /* SNAPCOW_IO_MEM_H */
