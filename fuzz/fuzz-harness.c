/* fuzz-harness.c: one fuzzer input -> one COW store -> cow_store_open
 * and a few requests (see fuzz-harness.h).
 *
 * Input layout (all little-endian):
 *   byte 0      flags: bit 0 open read-only; bit 1 then make it writable
 *               (cow_store_set_writable); bit 2 "packed" body (below);
 *               bits 3-4 trim 0/1/100/511 bytes off the origin's size;
 *               bits 5-7 k: the origin's size is shifted left by 3k
 *   bytes 1-4   v: the origin is (v + 1) * 512 << 3k bytes, less the trim
 *   bytes 5-6   packed body only: data chunks after the last area, mod E+2
 *   byte 7      packed body only: bytes cut off the store's end
 *               (byte * 521 mod the chunk size)
 *   bytes 8-15  four requests of two bytes each (see run_op)
 *   bytes 16-   the body
 *
 * A raw body is the COW image itself, byte for byte, in a fixed-size
 * memory backend.  A packed body holds only the metadata, so that stores
 * with several areas fit in a short input: chunk 0 of the body is the
 * header, and body chunk k+1 is metadata area k, placed at its real
 * chunk 1 + k*(E+1) in an image whose data chunks are zeroes (the
 * loader never reads them).  The chunk size comes from the body's own
 * header; one that is not a power of two up to 1 MiB makes the body raw.
 *
 * The origin is not stored: it is a read-only backend of any size whose
 * bytes are a function of their offset, so old_chunk bounds can be tried
 * up to 2^62 bytes at no cost.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapcow.h"
#include "io-mem.h"
#include "fuzz-harness.h"

/* The largest image a packed body expands to: a 64K-chunk store with
 * two areas (4099 chunks) fits.
 */
#define MAX_IMAGE_BYTES (320ull << 20)

static uint8_t
origin_byte (uint64_t offset)
{
  return (uint8_t) (offset * 131 + (offset >> 12) + 7);
}

struct pattern_io {
  struct cow_io io;
  uint64_t size;
};

static int
pattern_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  struct pattern_io *p = (struct pattern_io *) io;
  uint8_t *b = buf;

  if (offset > p->size || count > p->size - offset)
    return -EIO;
  for (size_t i = 0; i < count; i++)
    b[i] = origin_byte (offset + i);
  return 0;
}

static int
pattern_pwrite (struct cow_io *io, const void *buf, size_t count,
                uint64_t offset)
{
  abort ();                     /* lib/ must never write to the origin */
}

static int
pattern_sync (struct cow_io *io)
{
  return 0;
}

static int
pattern_get_size (struct cow_io *io, uint64_t *size)
{
  *size = ((struct pattern_io *) io)->size;
  return 0;
}

static void
pattern_close (struct cow_io *io)
{
}

static const struct cow_io_ops pattern_ops = {
  .name = "fuzz-origin",
  .pread = pattern_pread,
  .pwrite = pattern_pwrite,
  .sync = pattern_sync,
  .get_size = pattern_get_size,
  .close = pattern_close,
};

/* Every message must be one non-empty line; errors are counted. */
static void
message (void *opaque, enum cow_msg_level level, const char *msg)
{
  unsigned *errors = opaque;

  if (msg == NULL || msg[0] == '\0' || strchr (msg, '\n') != NULL) {
    fprintf (stderr, "fuzz: bad message from lib/: \"%s\"\n",
             msg ? msg : "(null)");
    abort ();
  }
  if (level == COW_MSG_ERROR)
    (*errors)++;
}

static uint32_t
fuzz_le32 (const uint8_t *p)
{
  return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t) p[3] << 24;
}

/* The image of a packed body, or NULL to take the body raw. */
static struct cow_io *
expand_packed (const uint8_t *body, size_t len, const uint8_t *prefix)
{
  uint32_t cs, E;
  uint64_t cb, n_areas, chunks, size, trim;
  struct cow_io *io;

  if (len < 16)
    return NULL;
  cs = fuzz_le32 (body + 12);
  if (cs == 0 || (cs & (cs - 1)) || cs > COW_MAX_CHUNK_SECTORS)
    return NULL;
  cb = (uint64_t) cs * COW_SECTOR_SIZE;
  E = cs * (COW_SECTOR_SIZE / 16);
  n_areas = len > cb ? (len - cb + cb - 1) / cb : 0;
  chunks = n_areas ? 1 + (n_areas - 1) * (E + 1) + 1 : 1;
  chunks += (prefix[5] | prefix[6] << 8) % (E + 2);
  if (chunks > MAX_IMAGE_BYTES / cb)
    size = MAX_IMAGE_BYTES;
  else
    size = chunks * cb;
  trim = (prefix[7] * 521u) % cb;
  size -= trim < size ? trim : size;

  io = cow_io_mem_new (NULL, size, false);
  if (io == NULL)
    return NULL;
  for (uint64_t k = 0; k <= n_areas; k++) {
    uint64_t from = k * cb;
    uint64_t n = len - from < cb ? len - from : cb;
    uint64_t at = k == 0 ? 0 : (1 + (k - 1) * (E + 1)) * cb;

    if (at >= size)
      break;
    if (n > size - at)
      n = size - at;
    if (cow_io_pwrite (io, body + from, n, at) < 0)
      abort ();
  }
  return io;
}

static int
count_extent (void *opaque, uint64_t offset, uint64_t length, bool is_zero)
{
  uint64_t *total = opaque;

  *total += length;
  return 0;
}

/* One request: op[0] bits 0-2 pick it (pread, pread, pwrite, pwrite,
 * pwrite with FUA, commit, zero, extents), bits 3-7 its length; op[1]
 * where it starts, in 256ths of the origin.  A write or zero that
 * succeeds is read back.
 */
static void
run_op (struct cow_store *s, uint64_t origin_size, const uint8_t *op)
{
  unsigned kind = op[0] & 7, sel = op[0] >> 3;
  uint64_t offset = origin_size / 256 * op[1] + sel * 7;
  uint64_t count = (uint64_t) (sel + 1) * (sel + 1) * 256;
  uint8_t *buf, *back;
  uint64_t total = 0;

  if (offset >= origin_size)
    offset = origin_size - 1;
  if (count > origin_size - offset)
    count = origin_size - offset;
  if (kind == 5) {
    cow_store_commit (s);
    return;
  }
  if (kind == 7) {
    if (cow_snapshot_extents (s, count, offset, count_extent, &total) == 0 &&
        (total == 0 || total > count))
      abort ();
    return;
  }
  buf = malloc (count);
  back = malloc (count);
  if (buf == NULL || back == NULL)
    abort ();
  for (uint64_t i = 0; i < count; i++)
    buf[i] = (uint8_t) (i * 7 + op[0] + op[1]);
  switch (kind) {
  case 0: case 1:
    cow_snapshot_pread (s, back, count, offset);
    break;
  case 2: case 3: case 4:
    if (cow_snapshot_pwrite (s, buf, count, offset, kind == 4) == 0 &&
        cow_snapshot_pread (s, back, count, offset) == 0 &&
        memcmp (buf, back, count) != 0) {
      fprintf (stderr, "fuzz: a write did not read back\n");
      abort ();
    }
    break;
  case 6:
    memset (buf, 0, count);
    if (cow_snapshot_zero (s, count, offset, false, false) == 0 &&
        cow_snapshot_pread (s, back, count, offset) == 0 &&
        memcmp (buf, back, count) != 0) {
      fprintf (stderr, "fuzz: a zeroed range did not read back as zeroes\n");
      abort ();
    }
    break;
  }
  free (buf);
  free (back);
}

int
snapcow_fuzz_one (const uint8_t *data, size_t size)
{
  uint8_t prefix[FUZZ_PREFIX_BYTES] = { 0 };
  const uint8_t *body = data + FUZZ_PREFIX_BYTES;
  size_t len = size > FUZZ_PREFIX_BYTES ? size - FUZZ_PREFIX_BYTES : 0;
  static const uint64_t origin_trim[4] = { 0, 1, 100, 511 };
  struct pattern_io origin = { .io.ops = &pattern_ops };
  struct cow_io *cow = NULL;
  struct cow_store *s = NULL;
  unsigned errors = 0;
  struct cow_store_params params = {
    .message = message, .message_opaque = &errors,
  };
  int r, opened;

  memcpy (prefix, data, size < sizeof prefix ? size : sizeof prefix);
  params.readonly = prefix[0] & 1;
  origin.size = ((uint64_t) fuzz_le32 (prefix + 1) + 1) * COW_SECTOR_SIZE;
  origin.size <<= 3 * (prefix[0] >> 5);
  origin.size -= origin_trim[(prefix[0] >> 3) & 3];

  if (prefix[0] & 4)
    cow = expand_packed (body, len, prefix);
  if (cow == NULL)
    cow = cow_io_mem_new (len ? body : NULL, len, false);
  if (cow == NULL)
    abort ();

  r = cow_store_open (cow, &origin.io, &params, &s);
  if (r < 0) {
    /* Refused: once, with a message (ENOMEM from the very first calloc
     * is the only refusal allowed to be silent).
     */
    if (errors != 1 && !(errors == 0 && r == -ENOMEM)) {
      fprintf (stderr, "fuzz: open failed (%d) with %u error messages\n",
               r, errors);
      abort ();
    }
    opened = 0;
  }
  else {
    struct cow_usage u;

    opened = 1;
    if (params.readonly && (prefix[0] & 2))
      cow_store_set_writable (s);
    for (int i = 0; i < 4; i++)
      run_op (s, origin.size, prefix + 8 + 2 * i);
    cow_store_usage (s, &u);
    cow_store_close (s);
  }
  cow_io_close (cow);
  return opened;
}
