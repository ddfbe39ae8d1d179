/* io-fd.c: the I/O backend over a file or block device.
 *
 * A regular file can grow (ftruncate) and punch holes (fallocate); a
 * block device has a fixed size and zeroes ranges with BLKZEROOUT, or
 * with written zeroes where that fails.  sync is fdatasync, which also
 * makes a grown file's new size durable.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

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
  .sync = fd_sync,
  .get_size = fd_get_size,
  .grow = fd_grow,
  .punch = fd_punch,
  .extent = fd_extent,
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
