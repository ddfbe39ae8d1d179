/* test-overlap-same-chunk.c: concurrent writes to the same new chunks
 * lose nothing.
 *
 * Six connections, each with many nbd_aio_pwrite commands in flight:
 *
 * - Region A (the first half): four writers own byte-disjoint sectors
 *   of every chunk (sector s belongs to writer s % 5; sectors with
 *   s % 5 == 4 keep the origin's data), and all walk the chunks in the
 *   same order, so they hit each new chunk together.  A second
 *   copy-on-write clobbering the first shows as origin bytes where a
 *   writer's sector should be.
 *
 * - Region B (the second half): one writer writes whole chunks while
 *   another writes a partial range of the same chunks.  Each chunk
 *   must end up as the whole-chunk data, or that with the partial
 *   range overlaid; never with origin bytes.
 *
 * The image is read back, and again after a clean stop and a restart.
 * Three rounds, each on a fresh store.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "plugin-test-server.h"

#define CHUNK      16384                /* the default chunk size */
#define NCHUNKS    1024
#define SIZE       ((uint64_t) NCHUNKS * CHUNK)
#define HALF       (NCHUNKS / 2)
#define SECTOR     512
#define SECTORS    (CHUNK / SECTOR)
#define WRITERS_A  4
#define PART_OFF   (3 * SECTOR + 7)     /* the partial write in region B */
#define PART_LEN   1000
#define IN_FLIGHT  64

static unsigned char *origin;   /* the origin's data */
static unsigned char *expect;   /* region A's expected data (and origin) */
static unsigned char *whole;    /* region B: whole-chunk data */
static unsigned char *part;     /* region B: partial data, per chunk */

static struct test_server srv;
static pthread_barrier_t barrier;
static int failed_writes;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static int
write_done (void *user_data, int *error)
{
  if (*error) {
    pthread_mutex_lock (&fail_lock);
    fprintf (stderr, "write failed: %s\n", strerror (*error));
    failed_writes++;
    pthread_mutex_unlock (&fail_lock);
  }
  return 1;
}

static void
submit (struct nbd_handle *h, const void *buf, size_t n, uint64_t offset)
{
  while (nbd_aio_in_flight (h) >= IN_FLIGHT)
    if (nbd_poll (h, -1) == -1)
      die_nbd ("nbd_poll");
  if (nbd_aio_pwrite (h, buf, n, offset,
                      (nbd_completion_callback) { .callback = write_done },
                      0) == -1)
    die_nbd ("nbd_aio_pwrite");
}

static void
drain (struct nbd_handle *h)
{
  while (nbd_aio_in_flight (h) > 0)
    if (nbd_poll (h, -1) == -1)
      die_nbd ("nbd_poll");
}

static void *
writer (void *arg)
{
  int w = (intptr_t) arg;
  struct nbd_handle *h = server_connect (&srv);

  pthread_barrier_wait (&barrier);
  if (w < WRITERS_A) {
    for (int c = 0; c < HALF; c++)
      for (int s = w; s < SECTORS; s += 5) {
        uint64_t off = (uint64_t) c * CHUNK + s * SECTOR;
        submit (h, expect + off, SECTOR, off);
      }
  }
  else if (w == WRITERS_A) {
    for (int c = HALF; c < NCHUNKS; c++)
      submit (h, whole + (uint64_t) c * CHUNK, CHUNK, (uint64_t) c * CHUNK);
  }
  else {
    for (int c = HALF; c < NCHUNKS; c++)
      submit (h, part + (uint64_t) c * PART_LEN, PART_LEN,
              (uint64_t) c * CHUNK + PART_OFF);
  }
  drain (h);
  if (nbd_flush (h, 0) == -1)
    die_nbd ("nbd_flush");
  if (nbd_shutdown (h, 0) == -1)
    die_nbd ("nbd_shutdown");
  nbd_close (h);
  return NULL;
}

static void
read_all (unsigned char *buf)
{
  struct nbd_handle *h = server_connect (&srv);

  if (nbd_get_size (h) != (int64_t) SIZE) {
    fprintf (stderr, "export size %" PRIi64 ", expected %" PRIu64 "\n",
             nbd_get_size (h), SIZE);
    exit (1);
  }
  for (uint64_t off = 0; off < SIZE; off += 1 << 20)
    if (nbd_pread (h, buf + off, 1 << 20, off, 0) == -1)
      die_nbd ("nbd_pread");
  nbd_shutdown (h, 0);
  nbd_close (h);
}

static void
first_difference (const unsigned char *got, const unsigned char *exp,
                  uint64_t base, uint64_t n, const char *what)
{
  for (uint64_t i = 0; i < n; i++)
    if (got[i] != exp[i]) {
      fprintf (stderr, "%s: byte %" PRIu64 " (chunk %" PRIu64 ", sector %"
               PRIu64 "): got 0x%02x, expected 0x%02x%s\n", what, base + i,
               (base + i) / CHUNK, (base + i) % CHUNK / SECTOR, got[i],
               exp[i], got[i] == origin[base + i] ? " (the origin's byte)"
               : "");
      return;
    }
}

/* Check the image; fill `settled` with what region B settled on. */
static void
check (const unsigned char *got, unsigned char *settled)
{
  unsigned char *alt = malloc (CHUNK);

  if (memcmp (got, expect, SIZE / 2) != 0) {
    first_difference (got, expect, 0, SIZE / 2, "region A (lost update?)");
    exit (1);
  }
  for (int c = HALF; c < NCHUNKS; c++) {
    uint64_t off = (uint64_t) c * CHUNK;

    memcpy (alt, whole + off, CHUNK);
    memcpy (alt + PART_OFF, part + (uint64_t) c * PART_LEN, PART_LEN);
    if (memcmp (got + off, whole + off, CHUNK) != 0 &&
        memcmp (got + off, alt, CHUNK) != 0) {
      first_difference (got + off, alt, off, CHUNK,
                        "region B (neither whole nor whole+partial)");
      exit (1);
    }
  }
  memcpy (settled, got, SIZE);
  free (alt);
}

int
main (void)
{
  unsigned char *got = malloc (SIZE), *settled = malloc (SIZE);
  pthread_t t[WRITERS_A + 2];
  uint64_t seed = 0x5eed;

  origin = malloc (SIZE);
  expect = malloc (SIZE);
  whole = malloc (SIZE);
  part = malloc ((uint64_t) NCHUNKS * PART_LEN);
  if (!got || !settled || !origin || !expect || !whole || !part) {
    perror ("malloc");
    exit (1);
  }
  prng_fill (&seed, origin, SIZE);
  server_init (&srv, origin, SIZE);

  for (int round = 0; round < 3; round++) {
    /* Fresh data for every round, in every sector the writers own. */
    memcpy (expect, origin, SIZE);
    for (uint64_t s = 0; s < SIZE / 2 / SECTOR; s++)
      if (s % SECTORS % 5 != 4)
        prng_fill (&seed, expect + s * SECTOR, SECTOR);
    prng_fill (&seed, whole, SIZE);
    prng_fill (&seed, part, (uint64_t) NCHUNKS * PART_LEN);

    unlink (srv.cow);
    server_start (&srv, NULL);
    if (pthread_barrier_init (&barrier, NULL, WRITERS_A + 2) != 0)
      abort ();
    for (int w = 0; w < WRITERS_A + 2; w++)
      if (pthread_create (&t[w], NULL, writer, (void *) (intptr_t) w) != 0)
        abort ();
    for (int w = 0; w < WRITERS_A + 2; w++)
      pthread_join (t[w], NULL);
    pthread_barrier_destroy (&barrier);
    if (failed_writes) {
      fprintf (stderr, "%d writes failed\n", failed_writes);
      exit (1);
    }

    read_all (got);
    check (got, settled);
    server_stop (&srv);

    server_start (&srv, NULL);
    read_all (got);
    if (memcmp (got, settled, SIZE) != 0) {
      first_difference (got, settled, 0, SIZE, "after the restart");
      exit (1);
    }
    server_stop (&srv);
  }

  /* The origin file is untouched. */
  {
    FILE *fp = fopen (srv.origin, "r");
    if (fp == NULL || fread (got, 1, SIZE, fp) != SIZE ||
        memcmp (got, origin, SIZE) != 0) {
      fprintf (stderr, "the origin file changed\n");
      exit (1);
    }
    fclose (fp);
  }
  free (got);
  free (settled);
  free (origin);
  free (expect);
  free (whole);
  free (part);
  return 0;
}
