/* make-big-store.c: write a valid dm-snapshot persistent store
 * (cow-format.md) of N records, and a sparse origin of the right size,
 * quickly, for measuring how the store opens at scale (bench/scale.sh).
 *
 * Only the header and the metadata areas are written; every data chunk
 * is a hole, since nothing here reads the snapshot's data.  New chunks
 * are handed out in record order, skipping the areas, as a writer's
 * allocator does.  The old chunks are either distinct chunks in a
 * scrambled order (--random, the default) or runs of --run consecutive
 * chunks placed in a scrambled order (--consecutive): a sequential
 * writer's runs, consecutive in old and new chunk alike, which the
 * kernel compresses.
 *
 * This is a benchmark tool and is not installed.  It shares no code
 * with lib/ on purpose: a store made by an independent writer checks
 * the loader as much as it loads it.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
  "Usage: make-big-store [--chunk-size=BYTES] [--random | --consecutive]\n"
  "                      [--run=CHUNKS] [--spread=PERCENT] [--seed=N]\n"
  "                      RECORDS STORE ORIGIN\n"
  "\n"
  "Write a dm-snapshot store of RECORDS records to STORE and a sparse\n"
  "origin to ORIGIN (both replaced).  The data chunks are holes.\n"
  "\n"
  "  --chunk-size=BYTES  a power of two from 512 (default 4096)\n"
  "  --random            distinct old chunks in a scrambled order\n"
  "                      (default)\n"
  "  --consecutive       runs of consecutive old chunks, in a scrambled\n"
  "                      order, each on consecutive new chunks\n"
  "  --run=CHUNKS        run length for --consecutive (default 1000)\n"
  "  --spread=PERCENT    origin size as a percentage of the chunks the\n"
  "                      records need (default 125: 80% of the origin's\n"
  "                      chunks end up copied)\n"
  "  --seed=N            scramble differently\n";

/* Little-endian on disk whatever the host (cow-format.md, "Units"). */
static void
put_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = v >> (8 * i);
}

static void
put_le64 (uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = v >> (8 * i);
}

/* A bijection on [0, 2^bits): each step (xor with a right shift,
 * multiply by an odd constant, add) is invertible modulo 2^bits.
 */
static uint64_t
mix (uint64_t x, unsigned bits, uint64_t seed)
{
  uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C (1) << bits) - 1;
  unsigned half = bits / 2 ?: 1;

  for (int round = 0; round < 3; round++) {
    x = (x + seed) & mask;
    x ^= x >> half;
    x = (x * UINT64_C (0x9e3779b97f4a7c15)) & mask;
    x ^= x >> (half + 1);
    x = (x * UINT64_C (0xbf58476d1ce4e5b9)) & mask;
  }
  return x;
}

/* A bijection on [0, n), by walking mix's cycle until it lands below n
 * (n > 0): the walk from a value below n meets each value below n once.
 */
static uint64_t
scramble (uint64_t i, uint64_t n, unsigned bits, uint64_t seed)
{
  do
    i = mix (i, bits, seed);
  while (i >= n);
  return i;
}

static unsigned
bits_for (uint64_t v)
{
  return v <= 1 ? 1 : 64 - __builtin_clzll (v - 1);
}

static int
write_all (int fd, const void *buf, size_t count, uint64_t offset,
           const char *name)
{
  const uint8_t *p = buf;

  while (count > 0) {
    ssize_t n = pwrite (fd, p, count, offset);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fprintf (stderr, "make-big-store: %s: write: %m\n", name);
      return -1;
    }
    p += n;
    count -= n;
    offset += n;
  }
  return 0;
}

static int
create_file (const char *name, uint64_t size)
{
  int fd = open (name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  if (fd < 0) {
    fprintf (stderr, "make-big-store: %s: %m\n", name);
    return -1;
  }
  if (ftruncate (fd, size) < 0) {
    fprintf (stderr, "make-big-store: %s: truncate to %" PRIu64 ": %m\n",
             name, size);
    close (fd);
    return -1;
  }
  return fd;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "chunk-size", required_argument, NULL, 'c' },
    { "random", no_argument, NULL, 'r' },
    { "consecutive", no_argument, NULL, 'C' },
    { "run", required_argument, NULL, 'R' },
    { "spread", required_argument, NULL, 's' },
    { "seed", required_argument, NULL, 'S' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  uint64_t chunk_bytes = 4096, run = 1000, spread = 125, seed = 1;
  uint64_t records, E, units, unit_len, origin_units, origin_chunks;
  uint64_t areas, dev_chunks, rec;
  const char *store, *origin;
  bool consecutive = false;
  unsigned bits;
  uint8_t *area;
  int c, fd;

  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'c': chunk_bytes = strtoull (optarg, NULL, 0); break;
    case 'r': consecutive = false; break;
    case 'C': consecutive = true; break;
    case 'R': run = strtoull (optarg, NULL, 0); break;
    case 's': spread = strtoull (optarg, NULL, 0); break;
    case 'S': seed = strtoull (optarg, NULL, 0); break;
    case 'h': fputs (usage_text, stdout); return 0;
    default: fputs (usage_text, stderr); return 2;
    }
  }
  if (argc - optind != 3 || chunk_bytes < 512 ||
      (chunk_bytes & (chunk_bytes - 1)) != 0 || run == 0 || spread < 100) {
    fputs (usage_text, stderr);
    return 2;
  }
  records = strtoull (argv[optind], NULL, 0);
  store = argv[optind + 1];
  origin = argv[optind + 2];
  E = chunk_bytes / 16;

  /* The origin is cut into units (one chunk, or one run of chunks);
   * record k belongs to unit k / unit_len, placed at a scrambled unit
   * of the origin.  Distinct units, so distinct old chunks.
   */
  unit_len = consecutive ? run : 1;
  units = (records + unit_len - 1) / unit_len;
  origin_units = units * spread / 100 ?: 1;
  if (origin_units < units)
    origin_units = units;
  origin_chunks = origin_units * unit_len;
  bits = bits_for (origin_units);

  /* The header, then area a at chunk 1 + a * (E + 1) followed by its E
   * data chunks.  The last area is not full (it may be empty): the
   * current one, ending the list.  The device ends after its data
   * chunks, so there is room for all of them.
   */
  areas = records / E + 1;
  dev_chunks = 1 + areas * (E + 1);

  fd = create_file (origin, origin_chunks * chunk_bytes);
  if (fd < 0)
    return 1;
  close (fd);
  fd = create_file (store, dev_chunks * chunk_bytes);
  if (fd < 0)
    return 1;
  area = calloc (1, chunk_bytes);
  if (area == NULL) {
    perror ("make-big-store");
    return 1;
  }
  put_le32 (area, 0x70416e53);  /* "SnAp" */
  put_le32 (area + 4, 1);       /* valid */
  put_le32 (area + 8, 1);       /* version */
  put_le32 (area + 12, chunk_bytes / 512);
  if (write_all (fd, area, chunk_bytes, 0, store) < 0)
    return 1;

  rec = 0;
  for (uint64_t a = 0; a < areas; a++) {
    uint64_t loc = 1 + a * (E + 1);

    memset (area, 0, chunk_bytes);
    for (uint64_t i = 0; i < E && rec < records; i++, rec++) {
      uint64_t unit = scramble (rec / unit_len, origin_units, bits, seed);
      uint64_t old_chunk = unit * unit_len + rec % unit_len;
      uint64_t new_chunk = loc + 1 + i;

      put_le64 (area + 16 * i, old_chunk);
      put_le64 (area + 16 * i + 8, new_chunk);
    }
    if (write_all (fd, area, chunk_bytes, loc * chunk_bytes, store) < 0)
      return 1;
  }
  if (fsync (fd) < 0 || close (fd) < 0) {
    fprintf (stderr, "make-big-store: %s: %m\n", store);
    return 1;
  }
  free (area);
  printf ("%" PRIu64 " records in %" PRIu64 " areas, %" PRIu64
          " chunks of %" PRIu64 " bytes; origin %" PRIu64 " chunks\n",
          records, areas, dev_chunks, chunk_bytes, origin_chunks);
  return 0;
}
