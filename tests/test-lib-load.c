/* test-lib-load.c: cow_store_open on stores built by hand in memory
 * (with this file's own little-endian encoder, from cow-format.md, not
 * lib/format.c): record counts around area boundaries, out-of-order
 * records, next_free, the kernel's usage figures, read-only opens that
 * write nothing, initialising a new store, and every kind of corrupt
 * input, each refused with its errno and message and the image left
 * unchanged.  Also old_chunks past 2^64 bytes with no origin given,
 * through both the loader and cow_check.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "test-lib-util.h"

/* The kernel check's geometry (cow-format.md, "Usage figures"). */
#define KERNEL_ORIGIN_SECTORS 16458
#define KERNEL_COW_SECTORS    16384

/* Origin chunks of the kernel check's origin at 4K: 2057.25 -> 2058. */
#define ORIGIN_CHUNKS_4K 2058

static uint64_t
old_for (uint64_t i, uint64_t origin_chunks)
{
  return (i * 5 + 1) % origin_chunks;
}

/* An origin of `chunks` whole chunks and a quarter chunk more. */
static struct cow_io *
origin_chunks_new (uint32_t cs, uint64_t chunks)
{
  struct cow_io *io = cow_io_mem_new (NULL, chunks * t_chunk_bytes (cs)
                                      + t_chunk_bytes (cs) / 4, false);

  ck_assert_ptr_nonnull (io);
  return io;
}

/* n records in allocation order (or reversed), old chunks spread. */
static void
put_records (struct image *img, uint64_t n, uint64_t origin_chunks,
             bool reversed)
{
  for (uint64_t j = 0; j < n; j++) {
    uint64_t i = reversed ? n - 1 - j : j;
    image_put_record (img, j, old_for (i, origin_chunks),
                      t_data_chunk (img->chunk_sectors, i));
  }
}

/* Every record maps, every other chunk misses. */
static void
check_lookups (struct cow_store *s, uint64_t n, uint64_t origin_chunks)
{
  uint8_t *used = calloc (origin_chunks, 1);
  uint32_t cs = cow_store_chunk_sectors (s);
  chunk_t nc;

  ck_assert_ptr_nonnull (used);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t old = old_for (i, origin_chunks);
    used[old] = 1;
    ck_assert_msg (cow_store_lookup (s, old, &nc), "record %" PRIu64
                   " (old_chunk %" PRIu64 ") missing", i, old);
    ck_assert_uint_eq (nc, t_data_chunk (cs, i));
  }
  for (uint64_t c = 0; c < origin_chunks; c++)
    if (!used[c])
      ck_assert_msg (!cow_store_lookup (s, c, &nc),
                     "old_chunk %" PRIu64 " should miss", c);
  ck_assert (!cow_store_lookup (s, origin_chunks, &nc));
  ck_assert (!cow_store_lookup (s, UINT64_MAX, &nc));
  free (used);
}

static const struct { uint32_t cs; uint64_t n; bool reversed; } counts[] = {
  { 8, 0, false }, { 8, 1, false }, { 8, 255, false }, { 8, 256, false },
  { 8, 257, false }, { 8, 512, false }, { 8, 3 * 256 + 5, false },
  { 8, 3 * 256 + 5, true }, { 8, 300, true },
  { 32, 0, false }, { 32, 1, false }, { 32, 1024, false },
  { 32, 1025, false }, { 32, 1025, true },
};

START_TEST (test_counts)
{
  const uint32_t cs = counts[_i].cs;
  const uint64_t n = counts[_i].n, E = t_per_area (cs);
  const uint64_t origin_chunks = 2048 + 1, cow_chunks = 2048;
  struct msgs m;
  struct cow_store_params p = params_for (&m, cs);
  struct image img;
  struct cow_io *origin = origin_chunks_new (cs, 2048), *cow;
  struct cow_store *s;
  struct cow_usage u;
  chunk_t nc;

  msgs_init (&m);
  image_new_valid (&img, cow_chunks * t_chunk_bytes (cs), cs);
  put_records (&img, n, origin_chunks, counts[_i].reversed);
  cow = cow_io_mem_new (img.data, img.size, false);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_uint_eq (m.errors, 0);
  ck_assert_uint_eq (cow_store_chunk_sectors (s), cs);
  check_lookups (s, n, origin_chunks);

  cow_store_usage (s, &u);
  ck_assert_uint_eq (u.records, n);
  ck_assert_uint_eq (u.pending, 0);
  ck_assert_uint_eq (u.current_area, n / E);
  ck_assert_uint_eq (u.chunk_sectors, cs);
  ck_assert (u.valid);
  ck_assert_uint_eq (u.total_sectors, cow_chunks * cs);
  ck_assert_uint_eq (u.allocated_sectors,
                     (n ? t_data_chunk (cs, n) : 2) * cs);
  ck_assert_uint_eq (u.metadata_sectors, (n / E + 2) * cs);

  /* next_free, seen through one allocation. */
  ck_assert_int_eq (cow_store_allocate (s, &nc), 0);
  ck_assert_uint_eq (nc, t_data_chunk (cs, n));
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* Open a hand-built 4K store over the kernel check's geometry. */
static struct cow_store *
open_kernel_geometry (struct image *img, struct cow_io **cow,
                      struct cow_io **origin, struct msgs *m)
{
  struct cow_store_params p = params_for (m, 8);
  struct cow_store *s;

  *origin = cow_io_mem_new (NULL, KERNEL_ORIGIN_SECTORS * 512, false);
  *cow = cow_io_mem_new (img->data, img->size, false);
  ck_assert_int_eq (cow_store_open (*cow, *origin, &p, &s), 0);
  return s;
}

/* The kernel's own status lines for 673 and 256 records. */
START_TEST (test_kernel_usage)
{
  static const struct { uint64_t n, allocated, metadata; } lines[] = {
    { 673, 5416, 32 }, { 256, 2072, 24 },
  };
  struct msgs m;
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_usage u;

  msgs_init (&m);
  image_new_valid (&img, KERNEL_COW_SECTORS * 512, 8);
  put_records (&img, lines[_i].n, ORIGIN_CHUNKS_4K, false);
  s = open_kernel_geometry (&img, &cow, &origin, &m);
  cow_store_usage (s, &u);
  ck_assert_uint_eq (u.allocated_sectors, lines[_i].allocated);
  ck_assert_uint_eq (u.total_sectors, KERNEL_COW_SECTORS);
  ck_assert_uint_eq (u.metadata_sectors, lines[_i].metadata);
  ck_assert_uint_eq (u.records, lines[_i].n);
  ck_assert_uint_eq (cow_store_origin_size (s), KERNEL_ORIGIN_SECTORS * 512);
  check_lookups (s, lines[_i].n, ORIGIN_CHUNKS_4K);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* New stores: 16/16384 16, 64/16384 64, 256/16384 256. */
START_TEST (test_kernel_usage_new)
{
  static const uint32_t cs[] = { 8, 32, 128 };
  struct msgs m;
  struct cow_store_params p = params_for (&m, cs[_i]);
  struct cow_io *origin = cow_io_mem_new (NULL, KERNEL_ORIGIN_SECTORS * 512,
                                          false);
  struct cow_io *cow = cow_io_mem_new (NULL, KERNEL_COW_SECTORS * 512, false);
  struct cow_store *s;
  struct cow_usage u;

  msgs_init (&m);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  cow_store_usage (s, &u);
  ck_assert_uint_eq (u.allocated_sectors, 2 * cs[_i]);
  ck_assert_uint_eq (u.total_sectors, KERNEL_COW_SECTORS);
  ck_assert_uint_eq (u.metadata_sectors, 2 * cs[_i]);
  ck_assert_uint_eq (u.records, 0);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
}
END_TEST

/* next_free is one past the highest new_chunk, stepped over an area. */
START_TEST (test_next_free)
{
  static const struct { chunk_t news[4]; unsigned n; chunk_t want; } c[] = {
    { { 5, 3, 9, 2 }, 4, 10 },
    { { 257, 2 }, 2, 259 },             /* 258 is area 1 */
    { { 3, 514, 2 }, 3, 516 },          /* 515 is area 2 */
    { { 256 }, 1, 257 },
    { { 259 }, 1, 260 },
    { { 2 }, 1, 3 },
  };
  struct msgs m;
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  chunk_t nc;

  msgs_init (&m);
  image_new_valid (&img, KERNEL_COW_SECTORS * 512, 8);
  for (unsigned k = 0; k < c[_i].n; k++)
    image_put_record (&img, k, 100 + k, c[_i].news[k]);
  s = open_kernel_geometry (&img, &cow, &origin, &m);
  for (unsigned k = 0; k < c[_i].n; k++) {
    ck_assert (cow_store_lookup (s, 100 + k, &nc));
    ck_assert_uint_eq (nc, c[_i].news[k]);
  }
  ck_assert_int_eq (cow_store_allocate (s, &nc), 0);
  ck_assert_uint_eq (nc, c[_i].want);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* A read-only open of an existing store writes nothing. */
START_TEST (test_readonly_writes_nothing)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_io_mem_counts cnt;
  const uint8_t *data;
  size_t size;
  chunk_t nc;
  uint8_t buf[4096];

  msgs_init (&m);
  image_new_valid (&img, KERNEL_COW_SECTORS * 512, 8);
  put_records (&img, 300, ORIGIN_CHUNKS_4K, false);
  /* The data of record 0's chunk. */
  pattern_fill (img.data + t_data_chunk (8, 0) * 4096, 4096, 9, 0);
  p.readonly = true;
  origin = cow_io_mem_new (NULL, KERNEL_ORIGIN_SECTORS * 512, false);
  cow = cow_io_mem_new (img.data, img.size, false);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  check_lookups (s, 300, ORIGIN_CHUNKS_4K);
  ck_assert_int_eq (cow_snapshot_pread (s, buf, 4096,
                                        old_for (0, ORIGIN_CHUNKS_4K) * 4096),
                    0);
  assert_bytes (buf, img.data + t_data_chunk (8, 0) * 4096, 4096,
                "read-only read of a COW chunk");
  ck_assert_int_eq (cow_store_allocate (s, &nc), -EROFS);
  ck_assert_int_eq (cow_snapshot_pwrite (s, buf, 512, 0, false), -EROFS);
  ck_assert_int_eq (cow_store_commit (s), 0);
  ck_assert_int_eq (cow_store_close (s), 0);
  data = cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (size, img.size);
  ck_assert (memcmp (data, img.data, size) == 0);
  cow_io_mem_counts (cow, &cnt);
  ck_assert_uint_eq (cnt.pwrite, 0);
  ck_assert_uint_eq (cnt.sync, 0);
  ck_assert_uint_eq (cnt.grow, 0);
  ck_assert_uint_eq (cnt.punch, 0);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* A read-only open of a new (zero magic) store writes nothing either. */
START_TEST (test_readonly_new_writes_nothing)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_io_mem_counts cnt;
  uint8_t *garbage = malloc (64 * 4096), buf[4096], want[4096];
  const uint8_t *data;
  size_t size;

  ck_assert_ptr_nonnull (garbage);
  memset (garbage, 0xee, 64 * 4096);
  memset (garbage, 0, 4);
  p.readonly = true;
  origin = origin_new (KERNEL_ORIGIN_SECTORS * 512, 3);
  cow = cow_io_mem_new (garbage, 64 * 4096, false);
  msgs_init (&m);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_snapshot_pread (s, buf, 4096, 8192), 0);
  pattern_fill (want, 4096, 3, 8192);
  assert_bytes (buf, want, 4096, "new read-only store reads the origin");
  ck_assert_int_eq (cow_store_close (s), 0);
  data = cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (size, 64 * 4096);
  ck_assert (memcmp (data, garbage, size) == 0);
  cow_io_mem_counts (cow, &cnt);
  ck_assert_uint_eq (cnt.pwrite + cnt.sync + cnt.grow + cnt.punch, 0);
  cow_io_close (cow);
  cow_io_close (origin);
  free (garbage);
}
END_TEST

/* Magic 0 with garbage after it: a new store, initialised. */
START_TEST (test_zero_magic_garbage)
{
  static const uint32_t cs[] = { 8, 32 };
  const uint64_t cb = t_chunk_bytes (cs[_i]);
  struct msgs m;
  struct cow_store_params p = params_for (&m, cs[_i]);
  struct cow_io *cow, *origin;
  struct cow_store *s;
  uint8_t *garbage = malloc (64 * cb);
  const uint8_t *data;
  size_t size;
  chunk_t nc;

  ck_assert_ptr_nonnull (garbage);
  memset (garbage, 0xee, 64 * cb);
  memset (garbage, 0, 4);
  origin = cow_io_mem_new (NULL, 1 << 24, false);
  cow = cow_io_mem_new (garbage, 64 * cb, false);
  msgs_init (&m);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_uint_eq (m.errors, 0);
  data = cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (size, 64 * cb);
  ck_assert (memcmp (data, "SnAp", 4) == 0);
  ck_assert_uint_eq (get_le32 (data + 4), 1);
  ck_assert_uint_eq (get_le32 (data + 8), 1);
  ck_assert_uint_eq (get_le32 (data + 12), cs[_i]);
  for (uint64_t i = 16; i < 2 * cb; i++)
    ck_assert_msg (data[i] == 0, "byte %" PRIu64 " of the header or area 0 "
                   "is 0x%02x", i, data[i]);
  ck_assert (!cow_store_lookup (s, 0, &nc));
  ck_assert_int_eq (cow_store_allocate (s, &nc), 0);
  ck_assert_uint_eq (nc, 2);
  ck_assert_int_eq (cow_store_close (s), 0);

  /* It reopens as an empty store. */
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_store_allocate (s, &nc), 0);
  ck_assert_uint_eq (nc, 2);
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (cow);
  cow_io_close (origin);
  free (garbage);
}
END_TEST

/* An existing store's chunk size wins over the one asked for. */
START_TEST (test_header_chunk_size_wins)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, 32);
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  chunk_t nc;

  msgs_init (&m);
  image_new_valid (&img, KERNEL_COW_SECTORS * 512, 8);
  image_put_record (&img, 0, 7, 2);
  origin = cow_io_mem_new (NULL, KERNEL_ORIGIN_SECTORS * 512, false);
  cow = cow_io_mem_new (img.data, img.size, false);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_uint_eq (cow_store_chunk_sectors (s), 8);
  ck_assert_uint_eq (m.warnings, 1);
  ck_assert_ptr_nonnull (strstr (m.last_warning, "4096"));
  ck_assert (cow_store_lookup (s, 7, &nc));
  ck_assert_uint_eq (nc, 2);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* Corrupt inputs.  Each builds a 4K store over the kernel's origin. */
struct bad {
  const char *name;
  size_t size;                  /* COW bytes */
  uint32_t magic, valid, version, chunk_field;
  unsigned nrec;                /* records 0..nrec-1 in allocation order */
  struct { uint64_t index, old_chunk, new_chunk; } extra[3];
  unsigned nextra;
  int err;
  const char *text;
};

#define SNAP 0x70416e53
#define COW64 (64 * 4096)

static const struct bad bads[] = {
  { "bad magic", COW64, 0x12345678, 1, 1, 8, 0, {}, 0, -EINVAL,
    "bad magic 0x12345678" },
  { "magic byte-swapped", COW64, 0x536e4170, 1, 1, 8, 0, {}, 0, -EINVAL,
    "bad magic" },
  { "version 2", COW64, SNAP, 1, 2, 8, 0, {}, 0, -EINVAL,
    "unsupported store version 2" },
  { "version 0", COW64, SNAP, 1, 0, 8, 0, {}, 0, -EINVAL,
    "version 0" },
  { "valid=0", COW64, SNAP, 0, 1, 8, 3, {}, 0, -EINVAL, "invalidated" },
  { "valid=2", COW64, SNAP, 2, 1, 8, 0, {}, 0, -EINVAL, "valid=2" },
  { "chunk 12", COW64, SNAP, 1, 1, 12, 0, {}, 0, -EINVAL,
    "12 sectors is not a power of two" },
  { "chunk 0", COW64, SNAP, 1, 1, 0, 0, {}, 0, -EINVAL, "is zero" },
  { "chunk 4096", 4 * 4096 * 512, SNAP, 1, 1, 4096, 0, {}, 0, -EINVAL,
    "snapcow's limit" },
  { "new_chunk on area 0", COW64, SNAP, 1, 1, 8, 3,
    { { 3, 50, 1 } }, 1, -EINVAL,
    "area 0 record 3: new_chunk 1 points at a metadata area" },
  { "new_chunk on area 1", 600 * 4096, SNAP, 1, 1, 8, 3,
    { { 3, 50, 258 } }, 1, -EINVAL,
    "area 0 record 3: new_chunk 258 points at a metadata area" },
  { "new_chunk on area 2, in area 1", 600 * 4096, SNAP, 1, 1, 8, 258,
    { { 258, 1000, 515 } }, 1, -EINVAL,
    "area 1 record 2: new_chunk 515 points at a metadata area" },
  { "new_chunk past the end", COW64, SNAP, 1, 1, 8, 1,
    { { 1, 50, 64 } }, 1, -EINVAL,
    "area 0 record 1: new_chunk 64 is past the end of the store" },
  { "new_chunk huge", COW64, SNAP, 1, 1, 8, 0,
    { { 0, 50, UINT64_C (1) << 62 } }, 1, -EINVAL,
    "area 0 record 0: new_chunk 4611686018427387904 is past the end" },
  { "old_chunk past the origin", COW64, SNAP, 1, 1, 8, 2,
    { { 2, 2058, 10 } }, 1, -EINVAL,
    "area 0 record 2: old_chunk 2058 is past the end of the origin" },
  { "old_chunk max", COW64, SNAP, 1, 1, 8, 0,
    { { 0, UINT64_MAX, 10 } }, 1, -EINVAL,
    "past the end of the origin" },
  { "duplicate old_chunk", COW64, SNAP, 1, 1, 8, 0,
    { { 0, 5, 2 }, { 1, 7, 3 }, { 2, 5, 4 } }, 3, -EINVAL,
    "area 0 record 2: duplicate old_chunk 5" },
  { "duplicate new_chunk", COW64, SNAP, 1, 1, 8, 0,
    { { 0, 5, 2 }, { 1, 6, 3 }, { 2, 7, 2 } }, 3, -EINVAL,
    "new_chunk 2 is also used by area 0 record 0" },
  { "duplicate new_chunk across areas", 600 * 4096, SNAP, 1, 1, 8, 256,
    { { 256, 1500, 100 } }, 1, -EINVAL,
    "new_chunk 100 is also used by" },
  { "full last area, no successor", (256 + 2) * 4096, SNAP, 1, 1, 8, 256,
    {}, 0, -EINVAL, "area 1 (chunk 258) is past the end of the store" },
  { "one chunk only", 4096, SNAP, 1, 1, 8, 0, {}, 0, -EINVAL, "too small" },
  { "a chunk and a half", 4096 + 2048, SNAP, 1, 1, 8, 0, {}, 0, -EINVAL,
    "too small" },
  { "a header only", 16, SNAP, 1, 1, 8, 0, {}, 0, -EINVAL, "too small" },
};

START_TEST (test_bad)
{
  const struct bad *b = &bads[_i];
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s = NULL;
  const uint8_t *data;
  size_t size;
  int r;

  msgs_init (&m);
  image_new (&img, b->size, 8, b->magic, b->valid, b->version,
             b->chunk_field);
  put_records (&img, b->nrec, ORIGIN_CHUNKS_4K, false);
  for (unsigned k = 0; k < b->nextra; k++)
    image_put_record (&img, b->extra[k].index, b->extra[k].old_chunk,
                      b->extra[k].new_chunk);
  origin = cow_io_mem_new (NULL, KERNEL_ORIGIN_SECTORS * 512, false);
  cow = cow_io_mem_new (img.data, img.size, false);
  r = cow_store_open (cow, origin, &p, &s);
  ck_assert_msg (r == b->err, "%s: cow_store_open returned %d, expected %d"
                 " (message: %s)", b->name, r, b->err, m.last_error);
  ck_assert_msg (m.errors == 1, "%s: %u error messages", b->name, m.errors);
  ck_assert_msg (strstr (m.last_error, b->text) != NULL,
                 "%s: message \"%s\" lacks \"%s\"", b->name, m.last_error,
                 b->text);
  data = cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (size, img.size);
  ck_assert_msg (memcmp (data, img.data, size) == 0,
                 "%s: the image was changed", b->name);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* A new store on a fixed-size device too small for a header and an
 * area: -ENOSPC, "too small", nothing written.
 */
START_TEST (test_new_too_small)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct cow_io *cow, *origin;
  struct cow_store *s = NULL;
  const uint8_t *data;
  size_t size;
  int r;

  msgs_init (&m);
  origin = cow_io_mem_new (NULL, KERNEL_ORIGIN_SECTORS * 512, false);
  cow = cow_io_mem_new (NULL, 4096, false);
  r = cow_store_open (cow, origin, &p, &s);
  ck_assert_msg (r == -ENOSPC, "cow_store_open returned %d (message: %s)",
                 r, m.last_error);
  ck_assert_ptr_nonnull (strstr (m.last_error, "too small"));
  data = cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (size, 4096);
  for (size_t i = 0; i < size; i++)
    ck_assert_uint_eq (data[i], 0);
  cow_io_close (cow);
  cow_io_close (origin);
}
END_TEST

/* The origin's last partial chunk is a valid old_chunk. */
START_TEST (test_last_partial_origin_chunk)
{
  struct msgs m;
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  chunk_t nc;

  msgs_init (&m);
  image_new_valid (&img, COW64, 8);
  image_put_record (&img, 0, ORIGIN_CHUNKS_4K - 1, 2);
  s = open_kernel_geometry (&img, &cow, &origin, &m);
  ck_assert (cow_store_lookup (s, ORIGIN_CHUNKS_4K - 1, &nc));
  ck_assert_uint_eq (nc, 2);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* Records after a terminator are ignored. */
START_TEST (test_stray_after_terminator)
{
  struct msgs m;
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  struct cow_usage u;
  chunk_t nc;

  msgs_init (&m);
  image_new_valid (&img, COW64, 8);
  image_put_record (&img, 0, 10, 2);
  image_put_record (&img, 1, 11, 3);
  image_put_record (&img, 3, 13, 60);   /* after the terminator at 2 */
  s = open_kernel_geometry (&img, &cow, &origin, &m);
  ck_assert (cow_store_lookup (s, 11, &nc));
  ck_assert (!cow_store_lookup (s, 13, &nc));
  cow_store_usage (s, &u);
  ck_assert_uint_eq (u.records, 2);
  ck_assert_int_eq (cow_store_allocate (s, &nc), 0);
  ck_assert_uint_eq (nc, 4);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* Appending to a loaded store at an area boundary: n = E-1 (the next
 * record fills area 0, area 1 holds garbage and must be zeroed), E
 * (area 1 is current) and E+1.
 */
START_TEST (test_append_after_load)
{
  static const uint64_t ns[] = { 255, 256, 257 };
  const uint64_t n = ns[_i];
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  uint8_t buf[4096], got[4096];
  const uint8_t *d;
  size_t size;
  chunk_t nc;

  msgs_init (&m);
  image_new_valid (&img, KERNEL_COW_SECTORS * 512, 8);
  put_records (&img, n, ORIGIN_CHUNKS_4K, false);
  if (n < 256)
    memset (img.data + t_area_chunk (8, 1) * 4096, 0xee, 4096);
  s = open_kernel_geometry (&img, &cow, &origin, &m);
  /* Two new chunks (2000 and 2001 are not among the old chunks). */
  for (uint64_t k = 0; k < 2; k++) {
    pattern_fill (buf, 4096, 5, (2000 + k) * 4096);
    ck_assert_int_eq (cow_snapshot_pwrite (s, buf, 4096, (2000 + k) * 4096,
                                           false), 0);
  }
  ck_assert_int_eq (cow_store_close (s), 0);
  /* On disk: records n and n+1 where the format says. */
  d = cow_io_mem_data (cow, &size);
  for (uint64_t k = 0; k <= 2; k++) {
    uint64_t i = n + k;
    const uint8_t *r = d + t_area_chunk (8, i / 256) * 4096 + (i % 256) * 16;

    ck_assert_uint_eq (get_le64 (r), k < 2 ? 2000 + k : 0);
    ck_assert_uint_eq (get_le64 (r + 8), k < 2 ? t_data_chunk (8, i) : 0);
  }
  if (n < 256)
    for (size_t i = 2 * 16; i < 4096; i++)
      ck_assert_uint_eq (d[t_area_chunk (8, 1) * 4096 + i], 0);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  for (uint64_t i = 0; i < n; i++) {
    ck_assert (cow_store_lookup (s, old_for (i, ORIGIN_CHUNKS_4K), &nc));
    ck_assert_uint_eq (nc, t_data_chunk (8, i));
  }
  ck_assert (!cow_store_lookup (s, 2002, &nc));
  for (uint64_t k = 0; k < 2; k++) {
    ck_assert (cow_store_lookup (s, 2000 + k, &nc));
    ck_assert_uint_eq (nc, t_data_chunk (8, n + k));
    ck_assert_int_eq (cow_snapshot_pread (s, got, 4096, (2000 + k) * 4096),
                      0);
    pattern_fill (buf, 4096, 5, (2000 + k) * 4096);
    assert_bytes (got, buf, 4096, "appended chunk");
  }
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* Opened read-only, then made writable: a new store is initialised
 * only then, and an existing one takes writes.
 */
START_TEST (test_set_writable)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct cow_io *cow, *origin;
  struct cow_store *s;
  const uint8_t *d;
  size_t size;
  uint8_t buf[100], got[100];

  msgs_init (&m);
  p.readonly = true;
  origin = cow_io_mem_new (NULL, KERNEL_ORIGIN_SECTORS * 512, false);
  cow = cow_io_mem_new (NULL, 64 * 4096, false);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  d = cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (get_le32 (d), 0);
  ck_assert_int_eq (cow_store_set_writable (s), 0);
  d = cow_io_mem_data (cow, &size);
  ck_assert (memcmp (d, "SnAp", 4) == 0);
  memset (buf, 'w', sizeof buf);
  ck_assert_int_eq (cow_snapshot_pwrite (s, buf, 100, 3 * 4096 + 1, false),
                    0);
  ck_assert_int_eq (cow_store_close (s), 0);
  /* Existing store, read-only then writable. */
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_snapshot_pwrite (s, buf, 1, 0, false), -EROFS);
  ck_assert_int_eq (cow_store_set_writable (s), 0);
  ck_assert_int_eq (cow_snapshot_pwrite (s, buf, 100, 9 * 4096, false), 0);
  ck_assert_int_eq (cow_store_close (s), 0);
  p.readonly = false;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_snapshot_pread (s, got, 100, 3 * 4096 + 1), 0);
  assert_bytes (got, buf, 100, "first write");
  ck_assert_int_eq (cow_snapshot_pread (s, got, 100, 9 * 4096), 0);
  assert_bytes (got, buf, 100, "second write");
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (cow);
  cow_io_close (origin);
}
END_TEST

/* Invalidation rewrites chunk 0 only; the store then refuses to open. */
START_TEST (test_invalidate)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct image img;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  const uint8_t *d;
  size_t size;
  chunk_t nc;

  msgs_init (&m);
  image_new_valid (&img, COW64, 8);
  put_records (&img, 5, ORIGIN_CHUNKS_4K, false);
  memset (img.data + 100, 0x77, 4096 - 100);  /* junk in the header chunk */
  s = open_kernel_geometry (&img, &cow, &origin, &m);
  ck_assert_int_eq (cow_store_invalidate (s), 0);
  ck_assert_int_eq (cow_store_allocate (s, &nc), -EIO);
  cow_store_close (s);
  d = cow_io_mem_data (cow, &size);
  ck_assert (memcmp (d, "SnAp", 4) == 0);
  ck_assert_uint_eq (get_le32 (d + 4), 0);
  ck_assert_uint_eq (get_le32 (d + 8), 1);
  ck_assert_uint_eq (get_le32 (d + 12), 8);
  for (size_t i = 16; i < 4096; i++)
    ck_assert_uint_eq (d[i], 0);
  assert_bytes (d + 4096, img.data + 4096, size - 4096, "after chunk 0");
  m.errors = 0;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), -EINVAL);
  ck_assert_ptr_nonnull (strstr (m.last_error, "invalidated"));
  cow_io_close (cow);
  cow_io_close (origin);
  image_free (&img);
}
END_TEST

/* With no origin, an old_chunk is bounded only by 2^64 bytes: its
 * chunk must lie wholly below (at 4K, old_chunk < 2^52).  UINT64_MAX
 * once passed, its table key old_chunk + 1 wrapping to the empty slot.
 */
#define LIMIT_4K (UINT64_C (1) << 52)

static const struct { uint64_t old_chunk; bool ok; } no_origin[] = {
  { LIMIT_4K - 1, true }, { LIMIT_4K, false },
  { UINT64_MAX - 1, false }, { UINT64_MAX, false },
};

/* Records 0 and 2 are fine; record 1 has the old_chunk of the case,
 * record 3 UINT64_MAX again in the failing cases.
 */
static void
image_no_origin (struct image *img, unsigned c)
{
  image_new_valid (img, COW64, 8);
  image_put_record (img, 0, 7, 2);
  image_put_record (img, 1, no_origin[c].old_chunk, 3);
  image_put_record (img, 2, 9, 4);
  if (!no_origin[c].ok)
    image_put_record (img, 3, UINT64_MAX, 5);
}

START_TEST (test_no_origin_old_chunk_limit)
{
  struct msgs m;
  struct cow_store_params p = params_for (&m, 8);
  struct image img;
  struct cow_io *cow;
  struct cow_store *s = NULL;
  char want[200];
  const uint8_t *data;
  size_t size;
  chunk_t nc;
  int r;

  msgs_init (&m);
  p.readonly = true;
  image_no_origin (&img, _i);
  cow = cow_io_mem_new (img.data, img.size, false);
  r = cow_store_open (cow, NULL, &p, &s);
  if (no_origin[_i].ok) {
    ck_assert_msg (r == 0, "open: %d (%s)", r, m.last_error);
    ck_assert_uint_eq (m.errors, 0);
    ck_assert (cow_store_lookup (s, no_origin[_i].old_chunk, &nc));
    ck_assert_uint_eq (nc, 3);
    ck_assert (cow_store_lookup (s, 9, &nc));
    ck_assert_uint_eq (nc, 4);
    ck_assert (!cow_store_lookup (s, UINT64_MAX, &nc));
    cow_store_close (s);
  }
  else {
    ck_assert_int_eq (r, -EINVAL);
    ck_assert_uint_eq (m.errors, 1);
    snprintf (want, sizeof want, "area 0 record 1: old_chunk %" PRIu64
              " ends past 2^64 bytes: no origin has more than "
              "4503599627370496 chunks of 4096 bytes",
              no_origin[_i].old_chunk);
    ck_assert_msg (strstr (m.last_error, want) != NULL,
                   "message \"%s\" lacks \"%s\"", m.last_error, want);
  }
  data = cow_io_mem_data (cow, &size);
  ck_assert_uint_eq (size, img.size);
  ck_assert (memcmp (data, img.data, size) == 0);
  cow_io_close (cow);
  image_free (&img);
}
END_TEST

/* Collects cow_check's problems. */
struct problems {
  unsigned errors, warnings;
  char text[8][256];
};

static void
problem_fn (void *opaque, enum cow_severity sev, const char *msg)
{
  struct problems *p = opaque;
  unsigned n = p->errors + p->warnings;

  if (n < 8)
    snprintf (p->text[n], sizeof p->text[n], "%s: %s",
              sev == COW_PROBLEM_ERROR ? "error" : "warning", msg);
  if (sev == COW_PROBLEM_ERROR)
    p->errors++;
  else
    p->warnings++;
}

/* cow_check with origin_size 0 (no origin): every record past the limit
 * is one error naming its area and record; nothing else is reported.
 */
START_TEST (test_check_no_origin_old_chunk_limit)
{
  struct problems pr = { 0 };
  struct cow_check_summary sum;
  struct image img;
  struct cow_io *cow;
  char want[2][200];

  image_no_origin (&img, _i);
  cow = cow_io_mem_new (img.data, img.size, false);
  ck_assert_int_eq (cow_check (cow, 0, problem_fn, &pr, &sum), 0);
  ck_assert_uint_eq (sum.records, no_origin[_i].ok ? 3 : 4);
  ck_assert_uint_eq (sum.warnings, 0);
  ck_assert_uint_eq (pr.warnings, 0);
  if (no_origin[_i].ok) {
    ck_assert_msg (sum.errors == 0, "%s", pr.text[0]);
    ck_assert_uint_eq (pr.errors, 0);
  }
  else {
    snprintf (want[0], sizeof want[0], "error: area 0 record 1: old_chunk %"
              PRIu64 " ends past 2^64 bytes: no origin has more than "
              "4503599627370496 chunks of 4096 bytes",
              no_origin[_i].old_chunk);
    snprintf (want[1], sizeof want[1], "error: area 0 record 3: old_chunk %"
              PRIu64 " ends past 2^64 bytes: no origin has more than "
              "4503599627370496 chunks of 4096 bytes", UINT64_MAX);
    ck_assert_uint_eq (sum.errors, 2);
    ck_assert_uint_eq (pr.errors, 2);
    ck_assert_str_eq (pr.text[0], want[0]);
    ck_assert_str_eq (pr.text[1], want[1]);
  }
  cow_io_close (cow);
  image_free (&img);
}
END_TEST

static Suite *
load_suite (void)
{
  Suite *s = suite_create ("load");
  TCase *tc = tcase_create ("good");

  tcase_set_timeout (tc, 60);
  tcase_add_loop_test (tc, test_counts, 0, sizeof counts / sizeof counts[0]);
  tcase_add_loop_test (tc, test_kernel_usage, 0, 2);
  tcase_add_loop_test (tc, test_kernel_usage_new, 0, 3);
  tcase_add_loop_test (tc, test_next_free, 0, 6);
  tcase_add_test (tc, test_readonly_writes_nothing);
  tcase_add_test (tc, test_readonly_new_writes_nothing);
  tcase_add_loop_test (tc, test_zero_magic_garbage, 0, 2);
  tcase_add_test (tc, test_header_chunk_size_wins);
  tcase_add_test (tc, test_last_partial_origin_chunk);
  tcase_add_test (tc, test_stray_after_terminator);
  tcase_add_loop_test (tc, test_append_after_load, 0, 3);
  tcase_add_test (tc, test_set_writable);
  tcase_add_test (tc, test_invalidate);
  suite_add_tcase (s, tc);

  tc = tcase_create ("bad");
  tcase_add_loop_test (tc, test_bad, 0, sizeof bads / sizeof bads[0]);
  tcase_add_test (tc, test_new_too_small);
  tcase_add_loop_test (tc, test_no_origin_old_chunk_limit, 0,
                       sizeof no_origin / sizeof no_origin[0]);
  tcase_add_loop_test (tc, test_check_no_origin_old_chunk_limit, 0,
                       sizeof no_origin / sizeof no_origin[0]);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return run_suite (load_suite ());
}
