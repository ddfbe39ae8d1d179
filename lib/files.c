/* files.c: rules about the files under a store that the plugin and the
 * tool share: when two opened files are one, and the mode a new store
 * gets.  Both work on struct stat, so they cover every spelling of a
 * path (hard links, symlinks, relative names, bind mounts).
 */
#include <config.h>

#include <sys/stat.h>

#include "io.h"

bool
cow_same_file (const struct stat *a, const struct stat *b)
{
  /* Two nodes of one block device (/dev/sdb and a udev symlink's
   * target, or a second mknod) differ in inode but share st_rdev.
   */
  if (S_ISBLK (a->st_mode) && S_ISBLK (b->st_mode))
    return a->st_rdev == b->st_rdev;
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

unsigned
cow_new_store_mode (const struct stat *origin)
{
  /* A store holds copies of the origin's chunks, so it may be read by
   * no one who may not read the origin; and it is never executable or
   * writable by others, whatever the origin allows.  Its owner, who
   * made it, always gets read and write: a golden image is often 0444,
   * and a store its owner cannot write after a restart is useless.
   */
  if (origin == NULL)
    return 0600;
  return (origin->st_mode & 0044) | 0600;
}
