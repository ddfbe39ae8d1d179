/* recording-io.h: a cow_io test backend that wraps another cow_io and
 * records every op (kind, offset, length) in call order, so tests can
 * assert the order of writes and syncs.  It does not own the inner
 * backend.
 */
#ifndef RECORDING_IO_H
#define RECORDING_IO_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

enum rec_kind {
  REC_PREAD, REC_PWRITE, REC_SYNC, REC_GROW, REC_PUNCH, REC_RESERVE,
  REC_CACHE,
  REC_PWRITEV,                  /* one op, the buffers' total length */
  REC_CLONE,                    /* offset and length in this backend */
};

struct rec_op {
  enum rec_kind kind;
  uint64_t offset;              /* grow: the size asked for */
  uint64_t length;
};

extern struct cow_io *recording_io_new (struct cow_io *inner);
/* A copy of the log (free it), and its length. */
extern size_t recording_io_log (struct cow_io *io, struct rec_op **ops);
extern void recording_io_clear (struct cow_io *io);
extern unsigned recording_io_count (struct cow_io *io, enum rec_kind kind);
/* Sleep this long in every sync, to let concurrent commits pile up. */
extern void recording_io_set_sync_delay (struct cow_io *io, unsigned usec);
/* Call fn (opaque) in every sync, after the inner backend's sync
 * returned (whatever it returned) and before this one does: what fn
 * writes is not covered by that sync.  NULL removes it.
 */
extern void recording_io_set_sync_hook (struct cow_io *io,
                                        void (*fn) (void *opaque),
                                        void *opaque);
/* From now on the backend has a reserve op, as a file on a filesystem
 * does: each call is recorded and returns -err (0: it succeeds), as if
 * the filesystem had that much room.  May be called at any time.
 */
extern void recording_io_set_reserve (struct cow_io *io, int err);
/* From now on the backend has a cache op that records each call. */
extern void recording_io_set_cache (struct cow_io *io);

#endif /* RECORDING_IO_H */
