/* lock.c: the single-writer lock on a store.  flock(2) locks belong to
 * the open file description, so the lock taken before nbdkit forks into
 * the background stays held by the server, and it is released by the
 * kernel however the server ends.
 */
#include <config.h>

#include <errno.h>
#include <sys/file.h>

#include "io.h"

int
cow_lock_fd (int fd, bool exclusive)
{
  while (flock (fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == -1) {
    if (errno == EINTR)
      continue;
    return errno == EWOULDBLOCK ? -EBUSY : -errno;
  }
  return 0;
}
