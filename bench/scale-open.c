/* scale-open.c: open a store as the server does and say what it cost:
 * the wall and CPU time of cow_store_open (the whole load: the areas
 * read, every record checked and put in the table), and the memory the
 * process holds because of the open (resident set after the open less
 * before it) and at its peak during the open (VmHWM less the resident
 * set before it).  For bench/scale.sh; not installed.
 *
 * Usage: scale-open STORE ORIGIN
 * Prints: records=N open_s=S cpu_s=C held_bytes=B peak_bytes=P
 * (CPU time is user and system: steadier than wall time on a busy
 * machine.)
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "snapcow.h"

/* A field of /proc/self/status in bytes ("VmRSS", "VmHWM"). */
static uint64_t
status_bytes (const char *field)
{
  char line[256];
  size_t len = strlen (field);
  uint64_t kib = 0;
  FILE *fp = fopen ("/proc/self/status", "r");

  if (fp == NULL)
    return 0;
  while (fgets (line, sizeof line, fp))
    if (strncmp (line, field, len) == 0 && line[len] == ':') {
      kib = strtoull (line + len + 1, NULL, 10);
      break;
    }
  fclose (fp);
  return kib * 1024;
}

static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
    + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
message (void *opaque, enum cow_msg_level level, const char *msg)
{
  if (level != COW_MSG_DEBUG)
    fprintf (stderr, "scale-open: %s\n", msg);
}

static struct cow_io *
open_file (const char *path, int flags)
{
  int fd = open (path, flags | O_CLOEXEC);
  struct cow_io *io;

  if (fd < 0) {
    fprintf (stderr, "scale-open: %s: %m\n", path);
    exit (1);
  }
  io = cow_io_fd_new (fd);
  if (io == NULL) {
    fprintf (stderr, "scale-open: %s: %m\n", path);
    exit (1);
  }
  return io;
}

int
main (int argc, char **argv)
{
  struct cow_store_params p = { .message = message };
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_usage u;
  struct timespec t0, t1;
  uint64_t before, after, peak;
  double cpu0, cpu1;

  if (argc != 3) {
    fprintf (stderr, "Usage: scale-open STORE ORIGIN\n");
    return 2;
  }
  cow = open_file (argv[1], O_RDWR);
  origin = open_file (argv[2], O_RDONLY);
  /* Reset the high-water mark to the resident set now, where the
   * kernel allows it, so that peak is the open's own.
   */
  {
    FILE *fp = fopen ("/proc/self/clear_refs", "w");
    if (fp) {
      fputs ("5", fp);
      fclose (fp);
    }
  }
  before = status_bytes ("VmRSS");
  cpu0 = cpu_seconds ();
  clock_gettime (CLOCK_MONOTONIC, &t0);
  if (cow_store_open (cow, origin, &p, &s) < 0)
    return 1;
  clock_gettime (CLOCK_MONOTONIC, &t1);
  cpu1 = cpu_seconds ();
  after = status_bytes ("VmRSS");
  peak = status_bytes ("VmHWM");
  cow_store_usage (s, &u);
  printf ("records=%" PRIu64 " open_s=%.3f cpu_s=%.3f held_bytes=%" PRIu64
          " peak_bytes=%" PRIu64 "\n", u.records,
          (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
          cpu1 - cpu0,
          after > before ? after - before : 0,
          peak > before ? peak - before : 0);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
  return 0;
}
