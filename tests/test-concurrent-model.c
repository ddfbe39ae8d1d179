/* test-concurrent-model.c: random concurrent writes, zeroes and trims
 * on four connections, checked against a model.
 *
 * Each round draws a batch of byte-disjoint requests of random size and
 * alignment inside a small window of 4K chunks (so they share chunks,
 * new and already copied), some with FUA, and submits all of them at
 * once with nbd_aio_* spread over the connections; then waits for all.
 * Flushes come between rounds.  Since requests in flight never overlap,
 * the model is exact.  A trim zeroes only chunks already copied (the
 * kernel's discard_zeroes_cow) and leaves the others reading from the
 * origin, so a round never trims part of a chunk that was not copied
 * before the round while another request of the round touches it:
 * which came first would decide what the chunk reads.  The whole image is compared now and then, at the
 * end, and after a clean stop and a restart.
 */
#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "plugin-test-server.h"

#define CHUNK     4096
#define SIZE      (4 * 1024 * 1024 + 3000)  /* a last partial chunk */
#define CONNS     4
#define ROUNDS    800
#define PER_ROUND 40
#define WINDOW    (24 * CHUNK)

#define CHUNKS    (SIZE / CHUNK + 1)
#define WCHUNKS   (WINDOW / CHUNK + 2)

static struct test_server srv;
static unsigned char *model;
static bool mapped[CHUNKS];     /* has an exception, as of the round */
static int failures;

struct op {
  uint64_t off, len;
  int kind;                     /* 0 write, 1 zero, 2 trim */
  unsigned char *buf;
};

static int
done (void *user_data, int *error)
{
  struct op *op = user_data;

  if (*error) {
    fprintf (stderr, "%s of %" PRIu64 " bytes at %" PRIu64 " failed: %s\n",
             op->kind == 0 ? "write" : op->kind == 1 ? "zero" : "trim",
             op->len, op->off, strerror (*error));
    failures++;
  }
  return 1;
}

static void
compare_all (struct nbd_handle *h, const char *when)
{
  unsigned char *buf = malloc (SIZE);

  if (nbd_pread (h, buf, SIZE, 0, 0) == -1)
    die_nbd ("nbd_pread");
  for (uint64_t i = 0; i < SIZE; i++)
    if (buf[i] != model[i]) {
      fprintf (stderr, "%s: byte %" PRIu64 " (chunk %" PRIu64 "): got "
               "0x%02x, expected 0x%02x\n", when, i, i / CHUNK, buf[i],
               model[i]);
      exit (1);
    }
  free (buf);
}

static bool
overlaps (const struct op *ops, int n, uint64_t off, uint64_t len)
{
  for (int i = 0; i < n; i++)
    if (off < ops[i].off + ops[i].len && ops[i].off < off + len)
      return true;
  return false;
}

int
main (void)
{
  struct nbd_handle *h[CONNS];
  struct op ops[PER_ROUND];
  uint64_t seed = 0xc0ffee;
  unsigned char *origin = malloc (SIZE);

  model = malloc (SIZE);
  if (!origin || !model) {
    perror ("malloc");
    exit (1);
  }
  prng_fill (&seed, origin, SIZE);
  /* A stretch of zeroes in the origin. */
  memset (origin + 100 * CHUNK, 0, 20 * CHUNK);
  memcpy (model, origin, SIZE);
  server_init (&srv, origin, SIZE);
  server_start (&srv, "chunk-size=4K");
  for (int c = 0; c < CONNS; c++)
    h[c] = server_connect (&srv);

  for (int round = 0; round < ROUNDS; round++) {
    uint64_t base = prng_next (&seed) % (SIZE - WINDOW / 2);
    uint64_t end = base + WINDOW < SIZE ? base + WINDOW : SIZE;
    uint64_t c0 = base / CHUNK;
    /* Chunks of the window touched this round by a trim, by others. */
    bool by_trim[WCHUNKS] = { false }, by_other[WCHUNKS] = { false };
    int n = 0;

    for (int tries = 0; n < PER_ROUND && tries < 400; tries++) {
      uint64_t r = prng_next (&seed);
      uint64_t len, off;

      switch (r % 4) {
      case 0: len = 1 + r / 4 % 600; break;
      case 1: len = 1 + r / 4 % CHUNK; break;
      case 2: len = CHUNK; break;
      default: len = 1 + r / 4 % (4 * CHUNK); break;
      }
      if (len > end - base)
        len = end - base;
      off = base + prng_next (&seed) % (end - base - len + 1);
      if (r % 4 == 2)
        off -= off % CHUNK;     /* aligned whole chunks too */
      if (off < base || off + len > end || overlaps (ops, n, off, len))
        continue;
      ops[n].off = off;
      ops[n].len = len;
      ops[n].kind = prng_next (&seed) % 10 < 7 ? 0 : 1 + prng_next (&seed) % 2;
      ops[n].buf = NULL;
      {
        bool *mine = ops[n].kind == 2 ? by_trim : by_other;
        bool *theirs = ops[n].kind == 2 ? by_other : by_trim;
        bool racy = false;

        for (uint64_t c = off / CHUNK; c <= (off + len - 1) / CHUNK; c++)
          racy |= !mapped[c] && theirs[c - c0];
        if (racy)
          continue;
        for (uint64_t c = off / CHUNK; c <= (off + len - 1) / CHUNK; c++)
          mine[c - c0] = true;
      }
      if (ops[n].kind == 0) {
        ops[n].buf = malloc (len);
        prng_fill (&seed, ops[n].buf, len);
        memcpy (model + off, ops[n].buf, len);
      }
      else if (ops[n].kind == 1)
        memset (model + off, 0, len);
      else {
        for (uint64_t o = off; o < off + len; ) {
          uint64_t e = (o / CHUNK + 1) * CHUNK;

          if (e > off + len)
            e = off + len;
          if (mapped[o / CHUNK])
            memset (model + o, 0, e - o);
          o = e;
        }
      }
      n++;
    }
    /* Writes and zeroes copy chunks (a zero over the origin's hole may
     * not, but such a chunk reads as zeroes either way).
     */
    for (int i = 0; i < WCHUNKS; i++)
      if (by_other[i] && c0 + i < CHUNKS)
        mapped[c0 + i] = true;

    for (int i = 0; i < n; i++) {
      struct nbd_handle *hh = h[i % CONNS];
      uint32_t flags = prng_next (&seed) % 8 == 0 ? LIBNBD_CMD_FLAG_FUA : 0;
      nbd_completion_callback cb = { .callback = done, .user_data = &ops[i] };
      int64_t r;

      if (ops[i].kind == 0)
        r = nbd_aio_pwrite (hh, ops[i].buf, ops[i].len, ops[i].off, cb,
                            flags);
      else if (ops[i].kind == 1)
        r = nbd_aio_zero (hh, ops[i].len, ops[i].off, cb, flags);
      else
        r = nbd_aio_trim (hh, ops[i].len, ops[i].off, cb, flags);
      if (r == -1)
        die_nbd ("nbd_aio_*");
    }
    for (int c = 0; c < CONNS; c++)
      while (nbd_aio_in_flight (h[c]) > 0)
        if (nbd_poll (h[c], -1) == -1)
          die_nbd ("nbd_poll");
    for (int i = 0; i < n; i++)
      free (ops[i].buf);
    if (failures)
      exit (1);

    if (round % 7 == 0 && nbd_flush (h[round % CONNS], 0) == -1)
      die_nbd ("nbd_flush");
    if (round % 50 == 49)
      compare_all (h[(round + 1) % CONNS], "during the run");
  }

  compare_all (h[0], "at the end");
  for (int c = 0; c < CONNS; c++) {
    nbd_shutdown (h[c], 0);
    nbd_close (h[c]);
  }
  server_stop (&srv);

  server_start (&srv, NULL);
  h[0] = server_connect (&srv);
  compare_all (h[0], "after the restart");
  nbd_shutdown (h[0], 0);
  nbd_close (h[0]);
  server_stop (&srv);

  free (origin);
  free (model);
  return 0;
}
