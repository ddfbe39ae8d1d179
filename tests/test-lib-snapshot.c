/* test-lib-snapshot.c: cow_snapshot_pread/pwrite/zero/extents on memory
 * backends against a byte model of the snapshot: writes and zeroes
 * straddling chunks, whole and partial chunks, mapped and unmapped, an
 * origin with a last partial chunk, several metadata areas, a capped
 * store that fills, and threads writing disjoint bytes of the same new
 * chunks.  The origin must stay byte-identical, and every store is
 * closed and reopened and compared byte for byte again.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "recording-io.h"
#include "test-lib-util.h"

#define ORIGIN_SEED 1

struct fix {
  struct msgs m;
  struct cow_store_params p;
  struct cow_io *cow, *origin;
  struct cow_store *s;
  uint32_t cs;
  uint64_t cb, size;
  uint8_t *model;               /* what the snapshot must read as */
  uint8_t *origin_copy;
};

/* size: origin bytes.  cow_size 0: a growable COW starting empty. */
static void
fix_open (struct fix *f, uint32_t cs, uint64_t size, uint64_t max_size,
          size_t cow_size)
{
  memset (f, 0, sizeof *f);
  msgs_init (&f->m);
  f->p = params_for (&f->m, cs);
  f->p.max_size = max_size;
  f->cs = cs;
  f->cb = t_chunk_bytes (cs);
  f->size = size;
  f->origin = origin_new (size, ORIGIN_SEED);
  f->model = malloc (size);
  f->origin_copy = malloc (size);
  ck_assert (f->model && f->origin_copy);
  pattern_fill (f->model, size, ORIGIN_SEED, 0);
  memcpy (f->origin_copy, f->model, size);
  f->cow = cow_io_mem_new (NULL, cow_size, cow_size == 0);
  ck_assert_int_eq (cow_store_open (f->cow, f->origin, &f->p, &f->s), 0);
}

static void
verify (struct fix *f, const char *what)
{
  uint8_t *buf = malloc (f->size);
  const uint8_t *o;
  size_t osize;

  ck_assert_ptr_nonnull (buf);
  memset (buf, 0x55, f->size);
  ck_assert_int_eq (cow_snapshot_pread (f->s, buf, f->size, 0), 0);
  assert_bytes (buf, f->model, f->size, what);
  /* Again in odd pieces. */
  memset (buf, 0x55, f->size);
  for (uint64_t off = 0; off < f->size; off += 1531) {
    uint64_t n = f->size - off < 1531 ? f->size - off : 1531;
    ck_assert_int_eq (cow_snapshot_pread (f->s, buf + off, n, off), 0);
  }
  assert_bytes (buf, f->model, f->size, what);
  free (buf);
  o = cow_io_mem_data (f->origin, &osize);
  ck_assert_uint_eq (osize, f->size);
  assert_bytes (o, f->origin_copy, f->size, "the origin");
}

/* Close (which commits), reopen over the same image, compare. */
static void
reopen (struct fix *f)
{
  ck_assert_int_eq (cow_store_close (f->s), 0);
  f->s = NULL;
  ck_assert_int_eq (cow_store_open (f->cow, f->origin, &f->p, &f->s), 0);
  ck_assert_uint_eq (f->m.errors, 0);
  verify (f, "after reopen");
}

static void
fix_close (struct fix *f)
{
  if (f->s)
    ck_assert_int_eq (cow_store_close (f->s), 0);
  cow_io_close (f->cow);
  cow_io_close (f->origin);
  free (f->model);
  free (f->origin_copy);
}

static void
sw (struct fix *f, uint64_t off, uint64_t len, uint32_t seed)
{
  uint8_t *buf = malloc (len);

  ck_assert_ptr_nonnull (buf);
  pattern_fill (buf, len, seed, off);
  ck_assert_msg (cow_snapshot_pwrite (f->s, buf, len, off, false) == 0,
                 "write of %" PRIu64 " at %" PRIu64 ": %s", len, off,
                 f->m.last_error);
  memcpy (f->model + off, buf, len);
  free (buf);
}

static void
sz (struct fix *f, uint64_t off, uint64_t len)
{
  ck_assert_msg (cow_snapshot_zero (f->s, len, off, false, false) == 0,
                 "zero of %" PRIu64 " at %" PRIu64 ": %s", len, off,
                 f->m.last_error);
  memset (f->model + off, 0, len);
}

static unsigned
origin_reads (struct fix *f)
{
  struct cow_io_mem_counts c;

  cow_io_mem_counts (f->origin, &c);
  return c.pread;
}

static const uint32_t sizes[] = { 8, 32, 128 };

START_TEST (test_straddle)
{
  struct fix f;
  uint64_t cb;

  fix_open (&f, sizes[_i], 64 * t_chunk_bytes (sizes[_i]), 0, 0);
  cb = f.cb;
  sw (&f, cb - 1, 2, 2);                /* two chunks, one byte each */
  verify (&f, "1");
  sw (&f, 3 * cb - 100, 200, 3);
  sw (&f, 5 * cb + 7, cb, 4);           /* partial + partial */
  sw (&f, 10 * cb, cb, 5);              /* whole, new */
  sw (&f, 12 * cb - 1, 2 * cb + 2, 6);  /* partial, whole, partial */
  verify (&f, "2");
  /* Over mapped and unmapped chunks at once: 9 no, 10 yes, 11 yes,
   * 12 yes, 13 yes, 14 yes, 15 no.
   */
  sw (&f, 9 * cb + 3, 6 * cb + 5, 7);
  sw (&f, 0, 1, 8);
  sw (&f, 63 * cb + cb - 1, 1, 9);      /* the last byte */
  sw (&f, 20 * cb, 4 * cb, 10);         /* whole chunks, new */
  sw (&f, 20 * cb + 512, 512, 11);      /* into a mapped chunk */
  verify (&f, "3");
  reopen (&f);
  /* Writes after a reopen go to the same chunks. */
  sw (&f, 10 * cb + 17, 33, 12);
  sw (&f, 30 * cb - 5, 10, 13);
  verify (&f, "4");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* A whole-chunk write to a new chunk never reads the origin; a partial
 * one reads it once.
 */
START_TEST (test_whole_chunk_no_origin_read)
{
  struct fix f;
  unsigned before;

  fix_open (&f, sizes[_i], 32 * t_chunk_bytes (sizes[_i]) + 1000, 0, 0);
  before = origin_reads (&f);
  sw (&f, 4 * f.cb, f.cb, 2);
  sw (&f, 8 * f.cb, 3 * f.cb, 3);
  sw (&f, 32 * f.cb, 1000, 4);          /* the whole last partial chunk */
  sz (&f, 16 * f.cb, 2 * f.cb);         /* whole chunks of zeroes */
  ck_assert_uint_eq (origin_reads (&f), before);
  sw (&f, 20 * f.cb + 1, f.cb - 1, 5);
  ck_assert_uint_eq (origin_reads (&f), before + 1);
  verify (&f, "whole chunks");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* An origin whose size is not a multiple of the chunk size. */
START_TEST (test_partial_last_chunk)
{
  static const uint64_t tails[] = { 1, 511, 512, 1000, 4095 };
  struct fix f;
  uint64_t last, tail = tails[_i % 5];
  uint8_t buf[16];

  fix_open (&f, sizes[_i / 5], 20 * t_chunk_bytes (sizes[_i / 5]) + tail,
            0, 0);
  last = 20 * f.cb;
  ck_assert_uint_eq (cow_store_origin_size (f.s), last + tail);
  sw (&f, last, 1, 2);
  if (tail > 10)
    sw (&f, last + tail - 10, 10, 3);
  sw (&f, last - 100, 100 + tail, 4);    /* into the last chunk */
  verify (&f, "last chunk");
  reopen (&f);
  sz (&f, last, tail);
  sw (&f, last + tail - 1, 1, 5);
  verify (&f, "last chunk zeroed");
  /* Past the end. */
  ck_assert_int_eq (cow_snapshot_pread (f.s, buf, 2, last + tail - 1),
                    -EINVAL);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, 1, last + tail, false),
                    -EINVAL);
  ck_assert_int_eq (cow_snapshot_zero (f.s, 1, last + tail, false, false),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (f.m.last_error, "past the end"));
  f.m.errors = 0;
  verify (&f, "after refused requests");
  reopen (&f);
  fix_close (&f);
}
END_TEST

START_TEST (test_zero)
{
  struct fix f;
  uint64_t cb;

  fix_open (&f, sizes[_i], 40 * t_chunk_bytes (sizes[_i]) + 300, 0, 0);
  cb = f.cb;
  sw (&f, 2 * cb, 4 * cb, 2);           /* chunks 2..5 mapped */
  sz (&f, 0, 10);                       /* partial, unmapped */
  sz (&f, cb - 3, 6);                   /* straddles 0 and 1, unmapped */
  sz (&f, 7 * cb, cb);                  /* whole, unmapped */
  sz (&f, 2 * cb + 100, 200);           /* partial, mapped */
  sz (&f, 3 * cb, cb);                  /* whole, mapped */
  sz (&f, 5 * cb - 50, 2 * cb + 100);   /* mapped, unmapped whole, partial */
  verify (&f, "zeroes");
  sw (&f, 3 * cb + 10, 10, 3);          /* write into a zeroed chunk */
  sw (&f, 7 * cb + cb / 2, 1, 4);
  sz (&f, 39 * cb, cb + 300);           /* the end */
  sz (&f, 10 * cb + 1, 5 * cb);         /* a long one */
  verify (&f, "zeroes 2");
  reopen (&f);
  sz (&f, 0, f.size);                   /* everything */
  verify (&f, "all zero");
  reopen (&f);
  fix_close (&f);
}
END_TEST

static unsigned
cow_count (struct fix *f, bool punches)
{
  struct cow_io_mem_counts c;

  cow_io_mem_counts (f->cow, &c);
  return punches ? c.punch : c.pwrite;
}

static uint64_t
records (struct fix *f)
{
  struct cow_usage u;

  cow_store_usage (f->s, &u);
  return u.records;
}

static void
st (struct fix *f, uint64_t off, uint64_t len)
{
  ck_assert_msg (cow_snapshot_trim (f->s, len, off, false) == 0,
                 "trim of %" PRIu64 " at %" PRIu64 ": %s", len, off,
                 f->m.last_error);
}

/* Trim, as the kernel's discard_zeroes_cow: nothing for chunks without
 * an exception (no record, no write; the origin still shows), a punch
 * for those with one (zeroes, the record kept).
 */
START_TEST (test_trim)
{
  struct fix f;
  uint64_t cb;
  unsigned writes, punches;

  fix_open (&f, sizes[_i], 40 * t_chunk_bytes (sizes[_i]) + 300, 0, 0);
  cb = f.cb;
  sw (&f, 2 * cb, 4 * cb, 2);           /* chunks 2..5 mapped */
  sw (&f, 40 * cb + 10, 20, 3);         /* the last partial chunk */
  ck_assert_uint_eq (records (&f), 5);
  writes = cow_count (&f, false);
  punches = cow_count (&f, true);
  st (&f, 0, f.size);                   /* a whole never-written region */
  st (&f, 7 * cb + 5, 3 * cb);
  memset (f.model + 2 * cb, 0, 4 * cb);
  memset (f.model + 40 * cb, 0, 300);
  verify (&f, "trim everything");
  ck_assert_uint_eq (records (&f), 5);
  /* Chunks 2..5 are contiguous in the store: one punch, and one for
   * the last chunk; nothing written.
   */
  ck_assert_uint_eq (cow_count (&f, false), writes);
  ck_assert_uint_eq (cow_count (&f, true), punches + 2);
  sw (&f, 3 * cb + 7, 100, 4);          /* write into a trimmed chunk */
  sw (&f, 11 * cb, cb, 5);
  st (&f, 11 * cb + 100, 50);           /* part of a mapped chunk */
  memset (f.model + 11 * cb + 100, 0, 50);
  st (&f, 12 * cb + 100, 50);           /* part of an unmapped one */
  ck_assert_uint_eq (records (&f), 6);
  verify (&f, "partial trims");
  ck_assert_int_eq (cow_snapshot_trim (f.s, 1, f.size, false), -EINVAL);
  f.m.errors = 0;
  reopen (&f);
  ck_assert_uint_eq (records (&f), 6);
  fix_close (&f);
}
END_TEST

/* A fast zero fails with -ENOTSUP, having done nothing, where it would
 * copy part of a chunk from the origin; elsewhere it zeroes.
 */
START_TEST (test_fast_zero)
{
  struct fix f;
  uint64_t cb;
  unsigned writes;

  fix_open (&f, 8, 20 * 4096, 0, 0);
  cb = f.cb;
  sw (&f, 2 * cb, 2 * cb, 2);           /* chunks 2, 3 mapped */
  writes = cow_count (&f, false);
  ck_assert_int_eq (cow_snapshot_zero (f.s, 10, 5 * cb + 1, false, true),
                    -ENOTSUP);
  /* Mapped then partial unmapped: refused before the mapped part. */
  ck_assert_int_eq (cow_snapshot_zero (f.s, 2 * cb + 10, 2 * cb, false,
                                       true), -ENOTSUP);
  ck_assert_uint_eq (cow_count (&f, false), writes);
  ck_assert_uint_eq (records (&f), 2);
  ck_assert_uint_eq (f.m.errors, 0);
  verify (&f, "refused fast zeroes");
  /* Parts of mapped chunks and whole unmapped ones need no copy. */
  ck_assert_int_eq (cow_snapshot_zero (f.s, 100, 2 * cb + 7, false, true), 0);
  memset (f.model + 2 * cb + 7, 0, 100);
  ck_assert_int_eq (cow_snapshot_zero (f.s, 3 * cb, 3 * cb, false, true), 0);
  memset (f.model + 3 * cb, 0, 3 * cb);
  ck_assert_uint_eq (records (&f), 4);
  verify (&f, "fast zeroes");
  /* Without the flag the copy is made. */
  sz (&f, 9 * cb + 1, 10);
  ck_assert_uint_eq (records (&f), 5);
  verify (&f, "slow zero");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* cow_snapshot_cache prefetches each run where it lives. */
START_TEST (test_cache)
{
  struct fix f;
  struct cow_io *rc, *ro;
  struct cow_store *s;
  struct rec_op *ops;
  size_t n;
  uint64_t cb;

  fix_open (&f, 8, 20 * 4096, 0, 0);
  cb = f.cb;
  sw (&f, 4 * cb, 2 * cb, 2);           /* chunks 4, 5 -> 2, 3 */
  ck_assert_int_eq (cow_store_close (f.s), 0);
  f.s = NULL;
  rc = recording_io_new (f.cow);
  ro = recording_io_new (f.origin);
  ck_assert_int_eq (cow_store_open (rc, ro, &f.p, &s), 0);
  /* No cache op anywhere: nothing to do. */
  ck_assert_int_eq (cow_snapshot_cache (s, 10 * cb, 0), 0);
  recording_io_set_cache (rc);
  recording_io_set_cache (ro);
  recording_io_clear (rc);
  recording_io_clear (ro);
  ck_assert_int_eq (cow_snapshot_cache (s, 5 * cb, 2 * cb + 100), 0);
  n = recording_io_log (ro, &ops);
  ck_assert_uint_eq (n, 2);
  ck_assert (ops[0].kind == REC_CACHE && ops[0].offset == 2 * cb + 100 &&
             ops[0].length == 2 * cb - 100);
  ck_assert (ops[1].kind == REC_CACHE && ops[1].offset == 6 * cb &&
             ops[1].length == cb + 100);
  free (ops);
  n = recording_io_log (rc, &ops);
  ck_assert_uint_eq (n, 1);
  ck_assert (ops[0].kind == REC_CACHE && ops[0].offset == 2 * cb &&
             ops[0].length == 2 * cb);
  free (ops);
  ck_assert_int_eq (cow_snapshot_cache (s, 1, f.size), -EINVAL);
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (rc);
  cow_io_close (ro);
  fix_close (&f);
}
END_TEST

/* Enough chunks for several metadata areas at 4K (E = 256). */
START_TEST (test_many_areas)
{
  const uint64_t n = 3 * 256 + 10;
  struct fix f;
  struct cow_usage u;
  chunk_t nc;

  fix_open (&f, 8, (n + 20) * 4096 + 100, 0, 0);
  /* Reverse order, whole and partial chunks, a commit now and then. */
  for (uint64_t k = 0; k < n; k++) {
    uint64_t c = n - 1 - k;
    if (k % 3 == 0)
      sw (&f, c * 4096, 4096, 2);
    else
      sw (&f, c * 4096 + k % 4000, 50, 3);
    if (k % 100 == 99)
      ck_assert_int_eq (cow_store_commit (f.s), 0);
  }
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, n);
  ck_assert (cow_store_lookup (f.s, n - 1, &nc));
  ck_assert_uint_eq (nc, 2);
  ck_assert (cow_store_lookup (f.s, 0, &nc));
  ck_assert_uint_eq (nc, t_data_chunk (8, n - 1));
  ck_assert (!cow_store_lookup (f.s, n, &nc));
  verify (&f, "many areas");
  reopen (&f);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, n);
  ck_assert_uint_eq (u.pending, 0);
  ck_assert_uint_eq (u.current_area, 3);
  ck_assert_uint_eq (u.allocated_sectors, t_data_chunk (8, n) * 8);
  ck_assert_uint_eq (u.metadata_sectors, 5 * 8);
  fix_close (&f);
}
END_TEST

/* A store capped by max_size: -ENOSPC when full, still readable and
 * writable where mapped, and reopens.
 */
START_TEST (test_capped)
{
  const uint64_t cap_chunks = 40;
  struct fix f;
  unsigned ok = 0;
  uint8_t buf[4096];
  struct cow_usage u;
  size_t size;

  fix_open (&f, 8, 100 * 4096, cap_chunks * 4096, 0);
  for (uint64_t c = 0; c < 100; c++) {
    int r;

    pattern_fill (buf, 4096, 2, c * 4096);
    r = cow_snapshot_pwrite (f.s, buf, 4096, c * 4096, false);
    if (r == -ENOSPC)
      break;
    ck_assert_int_eq (r, 0);
    memcpy (f.model + c * 4096, buf, 4096);
    ok++;
  }
  /* Chunks 2..39 hold data. */
  ck_assert_uint_eq (ok, cap_chunks - 2);
  ck_assert_ptr_nonnull (strstr (f.m.last_error, "full"));
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, 10, 99 * 4096, false),
                    -ENOSPC);
  ck_assert_int_eq (cow_snapshot_zero (f.s, 10, 99 * 4096, false, false),
                    -ENOSPC);
  /* One message for the store becoming full, not one per request. */
  ck_assert_uint_eq (f.m.errors, 1);
  cow_io_mem_data (f.cow, &size);
  ck_assert_uint_le (size, cap_chunks * 4096);
  /* Mapped chunks still take writes. */
  sw (&f, 5 * 4096 + 7, 100, 3);
  ck_assert_int_eq (cow_store_commit (f.s), 0);
  verify (&f, "full store");
  f.m.errors = 0;
  reopen (&f);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, cap_chunks - 2);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, 10, 99 * 4096, false),
                    -ENOSPC);
  f.m.errors = 0;
  verify (&f, "full store reopened");
  fix_close (&f);
}
END_TEST

/* A fixed-size COW device (not growable) that fills: -ENOSPC, like a
 * block device.
 */
START_TEST (test_fixed_size_full)
{
  const uint64_t dev_chunks = 40;
  struct fix f;
  unsigned ok = 0;
  uint8_t buf[4096];
  int r = 0;

  fix_open (&f, 8, 100 * 4096, 0, dev_chunks * 4096);
  for (uint64_t c = 0; c < 100; c++) {
    pattern_fill (buf, 4096, 2, c * 4096);
    r = cow_snapshot_pwrite (f.s, buf, 4096, c * 4096, false);
    if (r < 0)
      break;
    memcpy (f.model + c * 4096, buf, 4096);
    ok++;
  }
  ck_assert_msg (r == -ENOSPC, "a full fixed-size store returned %d (%s), "
                 "expected -ENOSPC", r, f.m.last_error);
  ck_assert_uint_eq (ok, dev_chunks - 2);
  f.m.errors = 0;
  verify (&f, "full fixed store");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* With fua the record is committed on return. */
START_TEST (test_fua)
{
  struct fix f;
  struct cow_usage u;
  uint8_t buf[100];

  fix_open (&f, 8, 16 * 4096, 0, 0);
  memset (buf, 'f', sizeof buf);
  ck_assert_int_eq (cow_snapshot_pwrite (f.s, buf, 100, 4096 + 5, true), 0);
  memcpy (f.model + 4096 + 5, buf, 100);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, 1);
  ck_assert_uint_eq (u.pending, 0);
  ck_assert_int_eq (cow_snapshot_zero (f.s, 4096, 3 * 4096, true, false), 0);
  memset (f.model + 3 * 4096, 0, 4096);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.pending, 0);
  verify (&f, "fua");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* Extents: consecutive from the offset, each all mapped or all not. */
struct ext {
  uint64_t off[256], len[256];
  bool zero[256];
  unsigned n;
};

static int
add_extent (void *opaque, uint64_t offset, uint64_t length, bool is_zero)
{
  struct ext *e = opaque;

  ck_assert_uint_lt (e->n, 256);
  e->off[e->n] = offset;
  e->len[e->n] = length;
  e->zero[e->n] = is_zero;
  e->n++;
  return 0;
}

START_TEST (test_extents)
{
  static const struct { uint64_t off, count; } reqs[] = {
    { 0, 0 }, { 5, 100 }, { 4096 - 1, 2 }, { 3 * 4096 + 7, 10 * 4096 },
  };
  struct fix f;

  fix_open (&f, 8, 32 * 4096 + 100, 0, 0);
  sw (&f, 2 * 4096, 3 * 4096, 2);
  sw (&f, 8 * 4096 + 1, 1, 3);
  sw (&f, 32 * 4096, 100, 4);
  for (size_t k = 0; k < 5; k++) {
    struct ext e = { .n = 0 };
    uint64_t off = k < 4 ? reqs[k].off : 0;
    uint64_t count = k == 0 || k == 4 ? f.size : reqs[k].count;
    uint64_t at = off;

    ck_assert_int_eq (cow_snapshot_extents (f.s, count, off, add_extent, &e),
                      0);
    ck_assert_uint_ge (e.n, 1);
    for (unsigned i = 0; i < e.n; i++) {
      chunk_t nc;
      bool m0 = cow_store_lookup (f.s, e.off[i] / 4096, &nc);

      ck_assert_uint_eq (e.off[i], at);
      ck_assert_uint_gt (e.len[i], 0);
      ck_assert (!e.zero[i]);         /* no extent op: all data */
      for (uint64_t c = e.off[i] / 4096;
           c <= (e.off[i] + e.len[i] - 1) / 4096; c++)
        ck_assert (cow_store_lookup (f.s, c, &nc) == m0);
      at += e.len[i];
    }
    ck_assert_uint_gt (at, off);
    ck_assert_uint_le (at, off + count);
  }
  ck_assert_int_eq (cow_snapshot_extents (f.s, 1, f.size, add_extent,
                                          &(struct ext) { .n = 0 }),
                    -EINVAL);
  f.m.errors = 0;
  fix_close (&f);
}
END_TEST

/* Threads writing byte-disjoint pieces of the same new chunks. */
#define THREADS 8
#define CHUNKS 24

struct worker {
  struct fix *f;
  unsigned id;
  int err;
};

static void *
work (void *arg)
{
  struct worker *w = arg;
  const uint64_t cb = w->f->cb, seg = cb / THREADS;
  uint8_t *buf = malloc (seg);

  for (unsigned round = 0; round < 3 && w->err == 0; round++)
    for (uint64_t c = 0; c < CHUNKS; c++) {
      /* Thread t owns bytes [t*seg, (t+1)*seg) of every chunk; round r
       * writes a third of it.
       */
      uint64_t off = c * cb + w->id * seg + round * (seg / 3);
      uint64_t len = round < 2 ? seg / 3 : seg - 2 * (seg / 3);
      int r;

      pattern_fill (buf, len, 20 + w->id, off);
      r = cow_snapshot_pwrite (w->f->s, buf, len, off, c % 5 == 0);
      if (r < 0) {
        w->err = r;
        break;
      }
    }
  free (buf);
  return NULL;
}

START_TEST (test_concurrent)
{
  struct fix f;
  pthread_t th[THREADS];
  struct worker w[THREADS];
  struct cow_usage u;

  fix_open (&f, sizes[_i], (CHUNKS + 4) * t_chunk_bytes (sizes[_i]), 0, 0);
  for (unsigned t = 0; t < THREADS; t++) {
    w[t] = (struct worker) { .f = &f, .id = t };
    ck_assert_int_eq (pthread_create (&th[t], NULL, work, &w[t]), 0);
  }
  for (unsigned t = 0; t < THREADS; t++) {
    pthread_join (th[t], NULL);
    ck_assert_int_eq (w[t].err, 0);
  }
  for (uint64_t c = 0; c < CHUNKS; c++)
    for (unsigned t = 0; t < THREADS; t++) {
      uint64_t seg = f.cb / THREADS, off = c * f.cb + t * seg;
      pattern_fill (f.model + off, seg, 20 + t, off);
    }
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, CHUNKS);         /* one copy per chunk */
  ck_assert_uint_eq (u.allocated_sectors, (2 + CHUNKS) * f.cs);
  verify (&f, "concurrent writes");
  reopen (&f);
  fix_close (&f);
}
END_TEST

static Suite *
snapshot_suite (void)
{
  Suite *s = suite_create ("snapshot");
  TCase *tc = tcase_create ("data");

  tcase_set_timeout (tc, 60);
  tcase_add_loop_test (tc, test_straddle, 0, 3);
  tcase_add_loop_test (tc, test_whole_chunk_no_origin_read, 0, 3);
  tcase_add_loop_test (tc, test_partial_last_chunk, 0, 15);
  tcase_add_loop_test (tc, test_zero, 0, 3);
  tcase_add_loop_test (tc, test_trim, 0, 3);
  tcase_add_test (tc, test_fast_zero);
  tcase_add_test (tc, test_cache);
  tcase_add_test (tc, test_many_areas);
  tcase_add_test (tc, test_fua);
  tcase_add_test (tc, test_extents);
  suite_add_tcase (s, tc);

  tc = tcase_create ("full");
  tcase_add_test (tc, test_capped);
  tcase_add_test (tc, test_fixed_size_full);
  suite_add_tcase (s, tc);

  tc = tcase_create ("threads");
  tcase_set_timeout (tc, 60);
  tcase_add_loop_test (tc, test_concurrent, 0, 3);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return run_suite (snapshot_suite ());
}
