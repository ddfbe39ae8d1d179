/* origin-model.c: random concurrent writes to the origin export and to
 * the snapshot exports of one mode=origin server, every export checked
 * against a model (the helper of test-origin-mode-model.sh).
 *
 *   origin-model run SOCK DIR SEED ROUNDS NAME...
 *   origin-model verify SOCK DIR NAME...
 *
 * DIR/m0 is the model of the origin export (""), DIR/m1 ... that of
 * the snapshot export NAME1 ...: each a whole image.  The model is
 * simple because each export is a disk of its own: an origin write
 * changes m0 only (its snapshots keep their point in time), and a
 * snapshot write changes that snapshot only.
 *
 * run: each round picks a window of the disk, so that requests share
 * chunks, and draws for every export a few writes and zeroes,
 * byte-disjoint within the export (so the model is exact) but freely
 * overlapping across exports, which is where copy-before-write and the
 * snapshots' own copy-on-write meet on the same chunks; and reads,
 * disjoint from that export's own writes of the round.  So a snapshot
 * is read over chunks the origin is overwriting at that moment, and
 * must still show its point in time.  All of them go at once, with
 * nbd_aio_*, over two connections per export; then every export's
 * window is read back and compared, and the whole of every export
 * every 20 rounds and at the end.  Flushes (and some FUA) come in
 * between.  The models are saved at the end, after a flush.
 *
 * verify: reads every export whole and compares it with its model.
 */
#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "plugin-test-server.h"

#define CONNS        2          /* per export */
#define MAX_EXPORTS  8
#define WINDOW       (256 * 1024)
#define WRITES       8          /* per export per round, at most */
#define READS        4
#define MAX_OPS      (MAX_EXPORTS * (WRITES + READS))

struct export {
  const char *name;
  unsigned char *model;
  struct nbd_handle *h[CONNS];
};

static struct export exports[MAX_EXPORTS];
static int nr_exports;
static uint64_t size;
static int failures;

enum kind { OP_WRITE, OP_ZERO, OP_READ };

struct op {
  int export;
  enum kind kind;
  uint64_t off, len;
  unsigned char *buf;           /* data written, or read */
  unsigned char *expected;      /* for a read */
};

static const char *
kind_name (enum kind k)
{
  return k == OP_WRITE ? "write" : k == OP_ZERO ? "zero" : "read";
}

static const char *
export_label (int e)
{
  return e == 0 ? "origin ''" : exports[e].name;
}

static int
done (void *user_data, int *error)
{
  struct op *op = user_data;

  if (*error) {
    fprintf (stderr, "%s: %s of %" PRIu64 " bytes at %" PRIu64
             " failed: %s\n", export_label (op->export), kind_name (op->kind),
             op->len, op->off, strerror (*error));
    failures++;
  }
  else if (op->kind == OP_READ &&
           memcmp (op->buf, op->expected, op->len) != 0) {
    for (uint64_t i = 0; i < op->len; i++)
      if (op->buf[i] != op->expected[i]) {
        fprintf (stderr, "%s: a read during the round: byte %" PRIu64
                 " got 0x%02x, expected 0x%02x\n", export_label (op->export),
                 op->off + i, op->buf[i], op->expected[i]);
        break;
      }
    failures++;
  }
  return 1;
}

static void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);

  if (p == NULL) {
    perror ("malloc");
    exit (1);
  }
  return p;
}

static void
load_model (const char *dir, int e)
{
  char path[4096];
  FILE *fp;
  long n;

  snprintf (path, sizeof path, "%s/m%d", dir, e);
  fp = fopen (path, "r");
  if (fp == NULL || fseek (fp, 0, SEEK_END) == -1 || (n = ftell (fp)) < 0) {
    perror (path);
    exit (1);
  }
  rewind (fp);
  if (e == 0)
    size = n;
  else if ((uint64_t) n != size) {
    fprintf (stderr, "%s: %ld bytes, the origin's model %" PRIu64 "\n",
             path, n, size);
    exit (1);
  }
  exports[e].model = xmalloc (size);
  if (fread (exports[e].model, 1, size, fp) != size) {
    perror (path);
    exit (1);
  }
  fclose (fp);
}

static void
save_model (const char *dir, int e)
{
  char path[4096], tmp[4200];
  FILE *fp;

  snprintf (path, sizeof path, "%s/m%d", dir, e);
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  fp = fopen (tmp, "w");
  if (fp == NULL || fwrite (exports[e].model, 1, size, fp) != size ||
      fclose (fp) != 0 || rename (tmp, path) == -1) {
    perror (path);
    exit (1);
  }
}

static void
connect_all (const char *sock)
{
  for (int e = 0; e < nr_exports; e++)
    for (int c = 0; c < CONNS; c++) {
      struct nbd_handle *h = nbd_create ();

      if (h == NULL)
        die_nbd ("nbd_create");
      if (nbd_set_debug (h, false) == -1 ||
          nbd_set_export_name (h, exports[e].name) == -1)
        die_nbd ("nbd_set_export_name");
      if (nbd_connect_unix (h, sock) == -1) {
        fprintf (stderr, "export '%s': ", exports[e].name);
        die_nbd ("nbd_connect_unix");
      }
      if ((uint64_t) nbd_get_size (h) != size) {
        fprintf (stderr, "export '%s': size %" PRId64 ", expected %"
                 PRIu64 "\n", exports[e].name, nbd_get_size (h), size);
        exit (1);
      }
      exports[e].h[c] = h;
    }
}

static void
disconnect_all (void)
{
  for (int e = 0; e < nr_exports; e++)
    for (int c = 0; c < CONNS; c++)
      if (exports[e].h[c]) {
        nbd_shutdown (exports[e].h[c], 0);
        nbd_close (exports[e].h[c]);
        exports[e].h[c] = NULL;
      }
}

/* Read [off, off+len) of export e and compare it with the model. */
static void
compare (int e, uint64_t off, uint64_t len, const char *when)
{
  unsigned char *buf = xmalloc (len);

  if (nbd_pread (exports[e].h[0], buf, len, off, 0) == -1)
    die_nbd ("nbd_pread");
  for (uint64_t i = 0; i < len; i++)
    if (buf[i] != exports[e].model[off + i]) {
      fprintf (stderr, "%s: %s: byte %" PRIu64 ": got 0x%02x, expected "
               "0x%02x\n", export_label (e), when, off + i, buf[i],
               exports[e].model[off + i]);
      exit (1);
    }
  free (buf);
}

static bool
overlaps (const struct op *ops, int n, int e, bool writes, uint64_t off,
          uint64_t len)
{
  for (int i = 0; i < n; i++)
    if (ops[i].export == e && (ops[i].kind != OP_READ) == writes &&
        off < ops[i].off + ops[i].len && ops[i].off < off + len)
      return true;
  return false;
}

/* A random range of [base, end): sub-chunk, about a chunk, or several,
 * sometimes aligned to 4K.
 */
static void
draw_range (uint64_t *seed, uint64_t base, uint64_t end, uint64_t *off,
            uint64_t *len)
{
  uint64_t r = prng_next (seed);

  switch (r % 4) {
  case 0: *len = 1 + r / 4 % 600; break;
  case 1: *len = 1 + r / 4 % 16384; break;
  case 2: *len = 4096 << (r / 4 % 5); break;
  default: *len = 1 + r / 4 % 70000; break;
  }
  if (*len > end - base)
    *len = end - base;
  *off = base + prng_next (seed) % (end - base - *len + 1);
  if (r % 4 == 2 && *off - *off % 4096 >= base)
    *off -= *off % 4096;
}

static void
round_once (uint64_t *seed, int round)
{
  static struct op ops[MAX_OPS];
  uint64_t base = prng_next (seed) % (size > WINDOW ? size - WINDOW / 2 : 1);
  uint64_t end = base + WINDOW < size ? base + WINDOW : size;
  int n = 0;

  /* Reads first, so their expected bytes are the round's start. */
  for (int e = 0; e < nr_exports; e++) {
    int want = 1 + prng_next (seed) % READS;
    for (int k = 0; k < want; k++) {
      struct op *op = &ops[n++];
      draw_range (seed, base, end, &op->off, &op->len);
      op->export = e;
      op->kind = OP_READ;
      op->buf = xmalloc (op->len);
      op->expected = NULL;
    }
  }
  for (int e = 0; e < nr_exports; e++) {
    int want = 1 + prng_next (seed) % WRITES;
    for (int k = 0, tries = 0; k < want && tries < 100; tries++) {
      struct op *op = &ops[n];
      uint64_t off, len;

      draw_range (seed, base, end, &off, &len);
      if (overlaps (ops, n, e, true, off, len) ||
          overlaps (ops, n, e, false, off, len))
        continue;
      op->export = e;
      op->off = off;
      op->len = len;
      op->kind = prng_next (seed) % 8 == 0 ? OP_ZERO : OP_WRITE;
      op->buf = NULL;
      op->expected = NULL;
      if (op->kind == OP_WRITE) {
        op->buf = xmalloc (len);
        prng_fill (seed, op->buf, len);
        memcpy (exports[e].model + off, op->buf, len);
      }
      else
        memset (exports[e].model + off, 0, len);
      n++;
      k++;
    }
  }
  /* A read is disjoint from its export's writes: its bytes are the
   * same in the model before and after the round.
   */
  for (int i = 0; i < n; i++)
    if (ops[i].kind == OP_READ) {
      ops[i].expected = xmalloc (ops[i].len);
      memcpy (ops[i].expected, exports[ops[i].export].model + ops[i].off,
              ops[i].len);
    }

  for (int i = 0; i < n; i++) {
    struct op *op = &ops[i];
    struct nbd_handle *h = exports[op->export].h[i % CONNS];
    nbd_completion_callback cb = { .callback = done, .user_data = op };
    uint32_t flags = prng_next (seed) % 8 == 0 ? LIBNBD_CMD_FLAG_FUA : 0;
    int64_t r;

    if (op->kind == OP_READ)
      r = nbd_aio_pread (h, op->buf, op->len, op->off, cb, 0);
    else if (op->kind == OP_WRITE)
      r = nbd_aio_pwrite (h, op->buf, op->len, op->off, cb, flags);
    else
      r = nbd_aio_zero (h, op->len, op->off, cb, flags);
    if (r == -1)
      die_nbd ("nbd_aio_*");
  }
  for (int e = 0; e < nr_exports; e++)
    for (int c = 0; c < CONNS; c++)
      while (nbd_aio_in_flight (exports[e].h[c]) > 0)
        if (nbd_poll (exports[e].h[c], -1) == -1)
          die_nbd ("nbd_poll");
  for (int i = 0; i < n; i++) {
    free (ops[i].buf);
    free (ops[i].expected);
  }
  if (failures)
    exit (1);

  /* Every export's window, after the round. */
  for (int e = 0; e < nr_exports; e++)
    compare (e, base, end - base, "after a round");
  if (round % 5 == 4) {
    int e = prng_next (seed) % nr_exports;
    if (nbd_flush (exports[e].h[round % CONNS], 0) == -1)
      die_nbd ("nbd_flush");
  }
  if (round % 20 == 19)
    for (int e = 0; e < nr_exports; e++)
      compare (e, 0, size, "whole, during the run");
}

int
main (int argc, char *argv[])
{
  bool run;
  const char *sock, *dir;
  int first;

  if (argc >= 5 && strcmp (argv[1], "verify") == 0) {
    run = false;
    first = 4;
  }
  else if (argc >= 7 && strcmp (argv[1], "run") == 0) {
    run = true;
    first = 6;
  }
  else {
    fprintf (stderr, "usage: origin-model run SOCK DIR SEED ROUNDS NAME...\n"
             "       origin-model verify SOCK DIR NAME...\n");
    exit (2);
  }
  sock = argv[2];
  dir = argv[3];
  if (argc - first + 1 > MAX_EXPORTS) {
    fprintf (stderr, "at most %d snapshot exports\n", MAX_EXPORTS - 1);
    exit (2);
  }
  exports[0].name = "";
  nr_exports = 1;
  for (int i = first; i < argc; i++)
    exports[nr_exports++].name = argv[i];
  for (int e = 0; e < nr_exports; e++)
    load_model (dir, e);

  if (!run) {
    connect_all (sock);
    for (int e = 0; e < nr_exports; e++)
      compare (e, 0, size, "verify");
    disconnect_all ();
    return 0;
  }

  uint64_t seed = strtoull (argv[4], NULL, 0) | 1;
  int rounds = atoi (argv[5]);

  connect_all (sock);
  for (int round = 0; round < rounds; round++)
    round_once (&seed, round);
  for (int e = 0; e < nr_exports; e++) {
    if (nbd_flush (exports[e].h[0], 0) == -1)
      die_nbd ("nbd_flush");
    compare (e, 0, size, "whole, at the end");
  }
  for (int e = 0; e < nr_exports; e++)
    save_model (dir, e);
  disconnect_all ();
  printf ("%d rounds over %d exports: every export matches its model\n",
          rounds, nr_exports);
  return 0;
}
