/* files.c: opening and checking the files the plugin serves: the
 * type of a file, the fd backend over it, the directory a store will be
 * created in, and where that store will be.  Each says what went wrong
 * in one line (nbdkit_error).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "files.h"
#include "snapcow.h"

/* Open a file or block device and check its type; on failure say which
 * and why.  Returns the fd, or -1.
 */
int
open_file (const char *what, const char *path, int flags, struct stat *st)
{
  int fd = open (path, flags | O_CLOEXEC);

  if (fd == -1) {
    nbdkit_error ("cannot open the %s %s: %s", what, path,
                  cow_strerror (errno));
    return -1;
  }
  if (fstat (fd, st) == -1) {
    nbdkit_error ("cannot stat the %s %s: %s", what, path,
                  cow_strerror (errno));
    close (fd);
    return -1;
  }
  if (!S_ISREG (st->st_mode) && !S_ISBLK (st->st_mode)) {
    nbdkit_error ("the %s %s is a %s, not a regular file or a block device",
                  what, path, S_ISDIR (st->st_mode) ? "directory"
                  : S_ISCHR (st->st_mode) ? "character device"
                  : S_ISFIFO (st->st_mode) ? "pipe" : "special file");
    close (fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

/* The backend over fd, which it takes over (closed on failure too). */
struct cow_io *
fd_backend (const char *what, const char *path, int fd)
{
  struct cow_io *io = cow_io_fd_new (fd);

  if (io == NULL) {
    nbdkit_error ("cannot open the %s %s: %s", what, path,
                  cow_strerror (errno));
    close (fd);
  }
  return io;
}

/* The store does not exist yet: the first writable connection will
 * create it, so its directory must be there and writable now, or every
 * connection would fail.  (The directory could change before then: a
 * harmless race, as in nbdkit's file plugin.)
 */
int
check_cow_dir (const char *path)
{
  char *copy = strdup (path);
  const char *dir;
  struct stat st;
  int r = -1;

  if (copy == NULL) {
    nbdkit_error ("strdup: %s", cow_strerror (errno));
    return -1;
  }
  dir = dirname (copy);
  if (stat (dir, &st) == -1)
    nbdkit_error ("cow=%s: cannot create the store: the directory %s: %s",
                  path, dir, cow_strerror (errno));
  else if (!S_ISDIR (st.st_mode))
    nbdkit_error ("cow=%s: cannot create the store: %s is not a directory",
                  path, dir);
  else if (access (dir, W_OK | X_OK) == -1)
    nbdkit_error ("cow=%s: cannot create the store in the directory %s: %s",
                  path, dir, cow_strerror (errno));
  else
    r = 0;
  free (copy);
  return r;
}

/* Where an absent store will be created: its directory's real path
 * and its own name, or NULL.
 */
char *
future_path (const char *path)
{
  char *copy = strdup (path), *copy2 = strdup (path);
  char *dir = NULL, *r = NULL;

  if (copy && copy2 && (dir = realpath (dirname (copy), NULL)) != NULL &&
      asprintf (&r, "%s/%s", dir, basename (copy2)) == -1)
    r = NULL;
  free (dir);
  free (copy);
  free (copy2);
  return r;
}
