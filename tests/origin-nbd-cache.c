/* origin-nbd-cache.c: a helper of test-origin-nbd-cache.sh.
 *
 *   origin-nbd-cache URI OFFSET COUNT
 *
 * Opens the NBD origin URI with plugin/origin-nbd.c, built in here
 * (nbdkit's log calls print on stderr), prefetches COUNT bytes at
 * OFFSET through the backend's cache op, and prints "cache: R" with
 * its result (0 or a negative errno).  Exit 0 when R is 0.
 */
#include "../plugin/origin-nbd.c"

#include <stdarg.h>

void
nbdkit_error (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "error: ");
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fputc ('\n', stderr);
}

void
nbdkit_debug (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "debug: ");
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fputc ('\n', stderr);
}

int
main (int argc, char **argv)
{
  struct cow_io *io;
  int r;

  if (argc != 4) {
    fprintf (stderr, "usage: origin-nbd-cache URI OFFSET COUNT\n");
    return 2;
  }
  io = origin_nbd_open (argv[1]);
  if (io == NULL)
    return 1;
  if (io->ops->cache == NULL) {
    fprintf (stderr, "origin-nbd-cache: the backend has no cache op\n");
    return 1;
  }
  r = io->ops->cache (io, strtoull (argv[2], NULL, 0),
                      strtoull (argv[3], NULL, 0));
  printf ("cache: %d\n", r);
  cow_io_close (io);
  return r == 0 ? 0 : 1;
}
