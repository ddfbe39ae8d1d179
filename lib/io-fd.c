/* io-fd.c: the I/O backend over a file or block device.
 *
 * A regular file can grow (ftruncate), reserve space for chunks it
 * will write (fallocate, so that the writes cannot meet a full
 * filesystem) and punch holes (fallocate); a block device has a fixed
 * size and zeroes ranges with BLKZEROOUT, or with written zeroes where
 * that fails.  sync is fdatasync, which also makes a grown file's new
 * size durable.  cache is readahead
 * (posix_fadvise WILLNEED).  pwritev writes a chunk made of pieces in
 * one call; clone_from shares another file's blocks (FICLONERANGE).
 *
 * probe asks libblkid, util-linux's signature probe (the one wipefs and
 * mkfs use), whether the device holds a filesystem, partition table or
 * other known signature, so that a new store is not laid over data.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blkid.h>

#include "io.h"

struct io_fd {
  struct cow_io io;
  int fd;
  bool is_block;
};

#define FD(io) ((struct io_fd *) (io))

static int
fd_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  char *p = buf;

  while (count > 0) {
    ssize_t r = pread (FD (io)->fd, p, count, offset);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (r == 0)
      return -EIO;              /* past the end */
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

static int
fd_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  const char *p = buf;

  while (count > 0) {
    ssize_t r = pwrite (FD (io)->fd, p, count, offset);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

/* pwritev(2), whole: after a short write (a signal, a filesystem that
 * ran out of room half-way) the rest goes out piece by piece, which
 * then either completes or returns the error.  At most IOV_MAX buffers
 * per call.
 */
static int
fd_pwritev (struct cow_io *io, const struct iovec *iov, int iovcnt,
            uint64_t offset)
{
  while (iovcnt > 0) {
    int n = iovcnt < IOV_MAX ? iovcnt : IOV_MAX;
    ssize_t r = pwritev (FD (io)->fd, iov, n, offset);
    size_t done;

    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    done = r;
    for (; n > 0 && done >= iov->iov_len; n--, iovcnt--, iov++) {
      done -= iov->iov_len;
      offset += iov->iov_len;
    }
    if (n > 0) {
      /* Short: finish this call's buffers with plain writes. */
      for (; n > 0; n--, iovcnt--, iov++) {
        int e = fd_pwrite (io, (const char *) iov->iov_base + done,
                           iov->iov_len - done, offset + done);
        if (e < 0)
          return e;
        offset += iov->iov_len;
        done = 0;
      }
    }
  }
  return 0;
}

/* Share the origin's blocks (a reflink): both must be files of this
 * backend on one filesystem that can (XFS with reflink, btrfs); the
 * filesystem says EXDEV, EOPNOTSUPP or EINVAL where not.
 */
static int
fd_clone_from (struct cow_io *io, uint64_t offset, struct cow_io *src,
               uint64_t src_offset, uint64_t count)
{
  struct file_clone_range range = {
    .src_offset = src_offset,
    .src_length = count,
    .dest_offset = offset,
  };

  if (src->ops != io->ops || FD (io)->is_block || FD (src)->is_block ||
      count == 0)               /* 0 would mean "to the end of src" */
    return -EOPNOTSUPP;
  range.src_fd = FD (src)->fd;
  if (ioctl (FD (io)->fd, FICLONERANGE, &range) == -1)
    return -errno;
  return 0;
}

static int
fd_sync (struct cow_io *io)
{
  if (fdatasync (FD (io)->fd) == -1)
    return -errno;
  return 0;
}

static int
fd_get_size (struct cow_io *io, uint64_t *size)
{
  struct stat st;

  if (FD (io)->is_block) {
    if (ioctl (FD (io)->fd, BLKGETSIZE64, size) == -1)
      return -errno;
    return 0;
  }
  if (fstat (FD (io)->fd, &st) == -1)
    return -errno;
  *size = st.st_size;
  return 0;
}

static int
fd_grow (struct cow_io *io, uint64_t size)
{
  uint64_t cur;
  int r;

  if (FD (io)->is_block)
    return -ENOTSUP;
  r = fd_get_size (io, &cur);
  if (r < 0)
    return r;
  if (cur >= size)
    return 0;
  if (ftruncate (FD (io)->fd, size) == -1)
    return -errno;
  return 0;
}

static int
write_zeroes (struct cow_io *io, uint64_t offset, uint64_t count)
{
  static const char zeroes[65536];

  while (count > 0) {
    size_t n = count < sizeof zeroes ? count : sizeof zeroes;
    int r = fd_pwrite (io, zeroes, n, offset);
    if (r < 0)
      return r;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
fd_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  int fd = FD (io)->fd;

  if (FD (io)->is_block) {
    uint64_t range[2] = { offset, count };
    if (ioctl (fd, BLKZEROOUT, range) == 0)
      return 0;
  }
  else if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      offset, count) == 0)
    return 0;
  if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL)
    return -errno;
  return write_zeroes (io, offset, count);
}

static int
fd_reserve (struct cow_io *io, uint64_t offset, uint64_t count)
{
  if (FD (io)->is_block)
    return 0;
  if (fallocate (FD (io)->fd, FALLOC_FL_KEEP_SIZE, offset, count) == 0)
    return 0;
  /* A filesystem without fallocate cannot promise space: carry on as
   * before, and let the writes find out.
   */
  if (errno == EOPNOTSUPP)
    return 0;
  return -errno;
}

static int
fd_extent (struct cow_io *io, uint64_t offset, uint64_t count,
           uint64_t *length, bool *is_hole)
{
  int fd = FD (io)->fd;
  off_t pos;

  *length = count;
  *is_hole = false;
  if (FD (io)->is_block)
    return 0;
  pos = lseek (fd, offset, SEEK_DATA);
  if (pos == -1) {
    if (errno == ENXIO) {       /* no data from offset to the end */
      *is_hole = true;
      return 0;
    }
    return 0;                   /* no SEEK_DATA here: call it data */
  }
  if ((uint64_t) pos > offset) {
    *is_hole = true;
    if ((uint64_t) pos - offset < count)
      *length = pos - offset;
    return 0;
  }
  pos = lseek (fd, offset, SEEK_HOLE);
  if (pos != -1 && (uint64_t) pos > offset && (uint64_t) pos - offset < count)
    *length = pos - offset;
  return 0;
}

/* Describe what blkid found, in the words wipefs and lsblk use: the
 * TYPE with its USAGE ("ext4 filesystem", "swap signature",
 * "LVM2_member signature"), or the PTTYPE ("dos partition table").
 */
static void
describe_signature (blkid_probe pr, char *what, size_t len)
{
  const char *type = NULL, *usage = NULL, *pttype = NULL;

  blkid_probe_lookup_value (pr, "TYPE", &type, NULL);
  blkid_probe_lookup_value (pr, "USAGE", &usage, NULL);
  blkid_probe_lookup_value (pr, "PTTYPE", &pttype, NULL);
  if (type && usage && strcmp (usage, "filesystem") == 0)
    snprintf (what, len, "%s filesystem", type);
  else if (type)
    snprintf (what, len, "%s signature", type);
  else if (pttype)
    snprintf (what, len, "%s partition table", pttype);
  else
    snprintf (what, len, "an unnamed signature");
}

static int
fd_probe (struct cow_io *io, char *what, size_t len)
{
  blkid_probe pr;
  uint64_t size;
  int r;

  /* blkid refuses an empty device; an empty file holds nothing. */
  r = fd_get_size (io, &size);
  if (r < 0)
    return r;
  if (size == 0)
    return 0;

  pr = blkid_new_probe ();
  if (pr == NULL)
    return -ENOMEM;
  errno = 0;
  if (blkid_probe_set_device (pr, FD (io)->fd, 0, 0) != 0) {
    r = errno ? -errno : -EIO;
    goto out;
  }
  /* A damaged checksum still marks data someone may want (wipefs
   * counts it too).
   */
  blkid_probe_enable_superblocks (pr, 1);
  blkid_probe_set_superblocks_flags (pr, BLKID_SUBLKS_TYPE |
                                     BLKID_SUBLKS_USAGE |
                                     BLKID_SUBLKS_BADCSUM);
  blkid_probe_enable_partitions (pr, 1);
  blkid_probe_set_partitions_flags (pr, 0);

  errno = 0;
  switch (blkid_do_safeprobe (pr)) {
  case 0:
    describe_signature (pr, what, len);
    r = 1;
    break;
  case 1:                       /* nothing found */
    r = 0;
    break;
  case -2:                      /* signatures that contradict each other */
    snprintf (what, len, "more than one signature (wipefs lists them)");
    r = 1;
    break;
  default:
    r = errno ? -errno : -EIO;
    break;
  }
 out:
  blkid_free_probe (pr);
  return r;
}

static int
fd_block_size (struct cow_io *io, uint32_t *bytes)
{
  int n;

  if (!FD (io)->is_block) {
    *bytes = 512;
    return 0;
  }
  if (ioctl (FD (io)->fd, BLKSSZGET, &n) == -1)
    return -errno;
  *bytes = n;
  return 0;
}

/* Prefetch: the kernel starts reading the range into the page cache
 * and the call returns at once (readahead).  Advice, so nothing is
 * lost where the kernel ignores it.
 */
static int
fd_cache (struct cow_io *io, uint64_t offset, uint64_t count)
{
  /* posix_fadvise returns the error instead of setting errno. */
  return -posix_fadvise (FD (io)->fd, offset, count, POSIX_FADV_WILLNEED);
}

static void
fd_close (struct cow_io *io)
{
  close (FD (io)->fd);
  free (io);
}

static const struct cow_io_ops fd_ops = {
  .name = "fd",
  .pread = fd_pread,
  .pwrite = fd_pwrite,
  .pwritev = fd_pwritev,
  .sync = fd_sync,
  .get_size = fd_get_size,
  .grow = fd_grow,
  .punch = fd_punch,
  .extent = fd_extent,
  .reserve = fd_reserve,
  .probe = fd_probe,
  .block_size = fd_block_size,
  .clone_from = fd_clone_from,
  .cache = fd_cache,
  .close = fd_close,
};

struct cow_io *
cow_io_fd_new (int fd)
{
  struct io_fd *f;
  struct stat st;

  if (fstat (fd, &st) == -1)
    return NULL;
  f = calloc (1, sizeof *f);
  if (f == NULL)
    return NULL;
  f->io.ops = &fd_ops;
  f->fd = fd;
  f->is_block = S_ISBLK (st.st_mode);
  return &f->io;
}
