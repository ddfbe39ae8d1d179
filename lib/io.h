/* io.h: the I/O backend interface under the exception store.
 *
 * Both the COW store and the origin are reached through a struct cow_io,
 * so that the store can run on a file or block device (io-fd.c) or on
 * anything a caller supplies (the plugin's libnbd origin, the tests'
 * memory, fault and power-loss backends in tests/io-mem.c).
 *
 * Every op returns 0 on success or a negative errno.  pread and pwrite
 * transfer the whole count or fail: a read past the end is -EIO.  The
 * ops may be called from many threads at once.
 */
#ifndef SNAPCOW_IO_H
#define SNAPCOW_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct cow_io;

struct cow_io_ops {
  const char *name;
  int (*pread) (struct cow_io *io, void *buf, size_t count, uint64_t offset);
  int (*pwrite) (struct cow_io *io, const void *buf, size_t count,
                 uint64_t offset);
  /* Write the iovcnt buffers of iov one after the other from offset,
   * whole or fail, as pwrite: a chunk made of pieces (the origin's
   * head, the client's bytes, the origin's tail) goes out in one call
   * without being gathered into one buffer first.  May be NULL: the
   * store gathers the pieces and calls pwrite.
   */
  int (*pwritev) (struct cow_io *io, const struct iovec *iov, int iovcnt,
                  uint64_t offset);
  /* Everything written before the call is on stable storage after it. */
  int (*sync) (struct cow_io *io);
  int (*get_size) (struct cow_io *io, uint64_t *size);
  /* Extend the device to at least size bytes, reading as zeroes.
   * -ENOTSUP where the size is fixed (a block device).  May be NULL.
   */
  int (*grow) (struct cow_io *io, uint64_t size);
  /* The range reads as zeroes afterwards, deallocated where the backend
   * can.  The range lies within the device.  May be NULL: the store
   * then writes zeroes.
   */
  int (*punch) (struct cow_io *io, uint64_t offset, uint64_t count);
  /* Block status: sets *length (> 0, <= count) to the extent starting
   * at offset that is all hole (*is_hole true) or all data.  May be
   * NULL: everything is data.
   */
  int (*extent) (struct cow_io *io, uint64_t offset, uint64_t count,
                 uint64_t *length, bool *is_hole);
  /* Allocate the range's blocks now (within the device), so that later
   * writes to it cannot fail for lack of space: -ENOSPC if the
   * filesystem has no room.  May be NULL: nothing to allocate (a block
   * device, memory).
   */
  int (*reserve) (struct cow_io *io, uint64_t offset, uint64_t count);
  /* 1 and a description in what (a string of at most len bytes, such
   * as "ext4 filesystem" or "dos partition table") if the device holds
   * a known signature (filesystem, partition table, RAID, LVM, swap
   * ...), 0 if none, or a negative errno.  May be NULL: nothing to
   * probe.
   */
  int (*probe) (struct cow_io *io, char *what, size_t len);
  /* The logical block size in bytes: the smallest write the device
   * takes (BLKSSZGET).  May be NULL: 512 (files, memory).
   */
  int (*block_size) (struct cow_io *io, uint32_t *bytes);
  /* Make count bytes at offset read as src's bytes at src_offset do,
   * by sharing src's blocks (a reflink, FICLONERANGE) rather than
   * copying them.  The three are multiples of the chunk size, and the
   * range lies within both.  -EOPNOTSUPP where src is not a backend
   * this one can share blocks with (an NBD origin); otherwise the
   * errno of the filesystem (EXDEV, EOPNOTSUPP, EINVAL where it cannot
   * share blocks at all or at this alignment).  On any error the
   * caller copies the data instead.  May be NULL: never clones.
   */
  int (*clone_from) (struct cow_io *io, uint64_t offset, struct cow_io *src,
                     uint64_t src_offset, uint64_t count);
  /* Prefetch; may be NULL. */
  int (*cache) (struct cow_io *io, uint64_t offset, uint64_t count);
  void (*close) (struct cow_io *io);
};

struct cow_io {
  const struct cow_io_ops *ops;
};

static inline int
cow_io_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  return io->ops->pread (io, buf, count, offset);
}

static inline int
cow_io_pwrite (struct cow_io *io, const void *buf, size_t count,
               uint64_t offset)
{
  return io->ops->pwrite (io, buf, count, offset);
}

static inline int
cow_io_sync (struct cow_io *io)
{
  return io->ops->sync (io);
}

static inline int
cow_io_get_size (struct cow_io *io, uint64_t *size)
{
  return io->ops->get_size (io, size);
}

static inline void
cow_io_close (struct cow_io *io)
{
  if (io)
    io->ops->close (io);
}

/* io-fd.c: a file or block device.  The backend takes ownership of fd
 * (closed by cow_io_close).
 */
extern struct cow_io *cow_io_fd_new (int fd);

/* lock.c: take an advisory lock on fd so a second server cannot open
 * the same store.  exclusive for writers, shared for read-only.  The
 * lock belongs to the open file description, so it survives nbdkit's
 * fork into the background.  Returns 0, -EBUSY if held elsewhere, or
 * another -errno.
 */
extern int cow_lock_fd (int fd, bool exclusive);

/* files.c.  True if a and b (from fstat) are the same file: the same
 * device and inode, or for block devices the same st_rdev.
 */
struct stat;
extern bool cow_same_file (const struct stat *a, const struct stat *b);
/* The mode to create a new store with: read and write for its owner,
 * and the origin's read bits for group and others (so never wider than
 * 0644); 0600 when there is no origin (NULL).  The caller's umask still
 * applies.
 */
extern unsigned cow_new_store_mode (const struct stat *origin);

#endif /* SNAPCOW_IO_H */
