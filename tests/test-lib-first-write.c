/* test-lib-first-write.c: how a write copies a chunk without an
 * exception (snapshot.c, copy_run), on memory backends wrapped in
 * recording ones.  The origin is read only for the head and the tail of
 * the chunk that the client does not supply, never where the origin is
 * a hole or the chunk was cloned; each chunk is written with one call
 * (vectored where it has pieces), a run of new chunks contiguous in the
 * store with one call; and the snapshot reads byte for byte as a model,
 * before and after a reopen, and after a power loss in the commit.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "recording-io.h"
#include "test-lib-util.h"

#define ORIGIN_SEED 3

struct fix {
  struct msgs m;
  struct cow_store_params p;
  struct cow_io *origin_mem, *cow_mem; /* the backends */
  struct cow_io *origin, *cow;         /* recording wrappers over them */
  struct cow_store *s;
  uint32_t cs;
  uint64_t cb, size;
  uint8_t *model;
};

enum { WITH_EXTENTS = 1, WITH_CLONE = 2, CLONE_FAILS = 4, NO_PWRITEV = 8 };

/* An origin of size bytes of pattern, zeroes in [hole, hole_end). */
static void
fix_open (struct fix *f, uint32_t cs, uint64_t size, uint64_t hole,
          uint64_t hole_end, unsigned flags)
{
  memset (f, 0, sizeof *f);
  msgs_init (&f->m);
  f->p = params_for (&f->m, cs);
  f->p.reflink = (flags & WITH_CLONE) != 0;
  f->cs = cs;
  f->cb = t_chunk_bytes (cs);
  f->size = size;
  f->model = malloc (size);
  ck_assert_ptr_nonnull (f->model);
  pattern_fill (f->model, size, ORIGIN_SEED, 0);
  memset (f->model + hole, 0, hole_end - hole);
  f->origin_mem = cow_io_mem_new (f->model, size, false);
  f->cow_mem = cow_io_mem_new (NULL, 0, true);
  ck_assert (f->origin_mem && f->cow_mem);
  if (flags & WITH_EXTENTS)
    cow_io_mem_set_extents (f->origin_mem);
  if (flags & WITH_CLONE)
    cow_io_mem_set_clone (f->cow_mem, flags & CLONE_FAILS ? EOPNOTSUPP : 0);
  /* io-mem's ops are its own, per backend: take pwritev away. */
  if (flags & NO_PWRITEV)
    ((struct cow_io_ops *) f->cow_mem->ops)->pwritev = NULL;
  f->origin = recording_io_new (f->origin_mem);
  f->cow = recording_io_new (f->cow_mem);
  ck_assert (f->origin && f->cow);
  ck_assert_int_eq (cow_store_open (f->cow, f->origin, &f->p, &f->s), 0);
  recording_io_clear (f->origin);
  recording_io_clear (f->cow);
}

static void
verify (struct fix *f, const char *what)
{
  uint8_t *buf = malloc (f->size);

  ck_assert_ptr_nonnull (buf);
  memset (buf, 0x55, f->size);
  ck_assert_int_eq (cow_snapshot_pread (f->s, buf, f->size, 0), 0);
  assert_bytes (buf, f->model, f->size, what);
  free (buf);
}

static void
reopen (struct fix *f)
{
  ck_assert_int_eq (cow_store_close (f->s), 0);
  ck_assert_int_eq (cow_store_open (f->cow, f->origin, &f->p, &f->s), 0);
  ck_assert_uint_eq (f->m.errors, 0);
  verify (f, "after reopen");
}

static void
fix_close (struct fix *f)
{
  if (f->s)
    cow_store_close (f->s);
  cow_io_close (f->cow);
  cow_io_close (f->origin);
  cow_io_close (f->cow_mem);
  cow_io_close (f->origin_mem);
  free (f->model);
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

/* The ops of kind in a recording backend's log, into v (at most max). */
static size_t
ops_of (struct cow_io *rec, enum rec_kind kind, struct rec_op *v, size_t max)
{
  struct rec_op *ops;
  size_t n = recording_io_log (rec, &ops), k = 0;

  for (size_t i = 0; i < n; i++)
    if (ops[i].kind == kind) {
      ck_assert_uint_lt (k, max);
      v[k++] = ops[i];
    }
  free (ops);
  return k;
}

/* Data writes to the COW store, plain or vectored: everything written
 * outside the metadata areas and the header.
 */
static size_t
data_writes (struct fix *f, struct rec_op *v, size_t max)
{
  struct rec_op *ops;
  size_t n = recording_io_log (f->cow, &ops), k = 0;
  uint32_t E = t_per_area (f->cs);

  for (size_t i = 0; i < n; i++) {
    uint64_t c = ops[i].offset / f->cb;

    if ((ops[i].kind == REC_PWRITE || ops[i].kind == REC_PWRITEV) &&
        c != 0 && (c - 1) % (E + 1) != 0) {
      ck_assert_uint_lt (k, max);
      v[k++] = ops[i];
    }
  }
  free (ops);
  return k;
}

static const uint32_t sizes[] = { 8, 32, 128 };

/* One new chunk each: head only, tail only, both, whole.  The origin
 * is read exactly where the client does not write, the chunk written
 * with one call, all of it.
 */
START_TEST (test_head_tail)
{
  struct fix f;
  struct {
    uint64_t in, n;
  } cases[4];
  struct rec_op r[8], w[8];
  uint64_t cb;

  fix_open (&f, sizes[_i], 16 * t_chunk_bytes (sizes[_i]), 0, 0, 0);
  cb = f.cb;
  cases[0].in = 700; cases[0].n = cb - 700;     /* head only */
  cases[1].in = 0; cases[1].n = 1000;           /* tail only */
  cases[2].in = 513; cases[2].n = cb - 1100;    /* both */
  cases[3].in = 0; cases[3].n = cb;             /* whole */
  for (int k = 0; k < 4; k++) {
    uint64_t c = 3 + 2 * k, at = c * cb + cases[k].in;
    uint64_t end = at + cases[k].n;
    size_t nr, nw;

    recording_io_clear (f.origin);
    recording_io_clear (f.cow);
    sw (&f, at, cases[k].n, 10 + k);
    nr = ops_of (f.origin, REC_PREAD, r, 8);
    ck_assert_uint_eq (nr, (cases[k].in > 0) + (end < (c + 1) * cb));
    for (size_t i = 0; i < nr; i++) {
      /* A read of the head or the tail, never of the client's bytes. */
      if (r[i].offset == c * cb)
        ck_assert_uint_eq (r[i].length, cases[k].in);
      else {
        ck_assert_uint_eq (r[i].offset, end);
        ck_assert_uint_eq (r[i].length, (c + 1) * cb - end);
      }
    }
    nw = data_writes (&f, w, 8);
    ck_assert_uint_eq (nw, 1);
    ck_assert_int_eq (w[0].kind, k == 3 ? REC_PWRITE : REC_PWRITEV);
    ck_assert_uint_eq (w[0].offset, t_data_chunk (f.cs, k) * cb);
    ck_assert_uint_eq (w[0].length, cb);
    ck_assert_uint_eq (recording_io_count (f.cow, REC_PUNCH), 0);
    verify (&f, "head and tail");
  }
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* The last chunk of an origin that ends inside it: only its bytes in
 * the origin are read and written, alone or with the chunk before.
 */
START_TEST (test_last_partial_chunk)
{
  static const uint64_t tails[] = { 1000, 4095 };
  struct fix f;
  struct rec_op r[4], w[4];
  uint64_t last, tail = tails[_i % 2];
  uint32_t cs = sizes[_i / 2];

  fix_open (&f, cs, 10 * t_chunk_bytes (cs) + tail, 0, 0, 0);
  last = 10 * f.cb;
  sw (&f, last + 100, 50, 2);
  ck_assert_uint_eq (ops_of (f.origin, REC_PREAD, r, 4), 2);
  ck_assert_uint_eq (r[0].offset, last);
  ck_assert_uint_eq (r[0].length, 100);
  ck_assert_uint_eq (r[1].offset, last + 150);
  ck_assert_uint_eq (r[1].length, tail - 150);
  ck_assert_uint_eq (data_writes (&f, w, 4), 1);
  ck_assert_int_eq (w[0].kind, REC_PWRITEV);
  ck_assert_uint_eq (w[0].length, tail);
  verify (&f, "last chunk");
  reopen (&f);
  fix_close (&f);

  /* From the chunk before to near the end: two chunks, one write. */
  fix_open (&f, cs, 10 * t_chunk_bytes (cs) + tail, 0, 0, 0);
  last = 10 * f.cb;
  sw (&f, last - 300, 300 + tail - 10, 3);
  ck_assert_uint_eq (ops_of (f.origin, REC_PREAD, r, 4), 2);
  ck_assert_uint_eq (r[0].offset, 9 * f.cb);
  ck_assert_uint_eq (r[0].length, f.cb - 300);
  ck_assert_uint_eq (r[1].offset, last + tail - 10);
  ck_assert_uint_eq (r[1].length, 10);
  ck_assert_uint_eq (data_writes (&f, w, 4), 1);
  ck_assert_uint_eq (w[0].length, f.cb + tail);
  verify (&f, "into the last chunk");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* Zeroing part of a new chunk: the origin around it, zeroes from the
 * zero chunk, one vectored write.
 */
START_TEST (test_zero_fill)
{
  struct fix f;
  struct rec_op r[4], w[4];
  uint64_t cb;

  fix_open (&f, sizes[_i], 8 * t_chunk_bytes (sizes[_i]) + 600, 0, 0, 0);
  cb = f.cb;
  ck_assert_int_eq (cow_snapshot_zero (f.s, 1024, 2 * cb + 512, false,
                                       false), 0);
  memset (f.model + 2 * cb + 512, 0, 1024);
  ck_assert_uint_eq (ops_of (f.origin, REC_PREAD, r, 4), 2);
  ck_assert_uint_eq (r[0].length + r[1].length, cb - 1024);
  ck_assert_uint_eq (data_writes (&f, w, 4), 1);
  ck_assert_int_eq (w[0].kind, REC_PWRITEV);
  ck_assert_uint_eq (w[0].length, cb);
  /* The last partial chunk, and a zero that straddles two chunks. */
  ck_assert_int_eq (cow_snapshot_zero (f.s, 100, 8 * cb + 200, false,
                                       false), 0);
  memset (f.model + 8 * cb + 200, 0, 100);
  ck_assert_int_eq (cow_snapshot_zero (f.s, 300, 5 * cb - 100, false,
                                       false), 0);
  memset (f.model + 5 * cb - 100, 0, 300);
  verify (&f, "zeroes");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* Where the origin is a hole, nothing is read: the rest of the chunk is
 * written as zeroes in the same vectored write, and reads as zeroes
 * although the store's chunk held stray bytes (as a chunk past
 * next_free may after a crash).
 */
START_TEST (test_hole_origin)
{
  struct fix f;
  struct rec_op w[8];
  uint64_t cb;
  uint8_t *stray;

  fix_open (&f, sizes[_i], 16 * t_chunk_bytes (sizes[_i]) + 700,
            4 * t_chunk_bytes (sizes[_i]),
            16 * t_chunk_bytes (sizes[_i]) + 700, WITH_EXTENTS);
  cb = f.cb;
  stray = malloc (cb);
  ck_assert_ptr_nonnull (stray);
  memset (stray, 0xa5, cb);
  for (int i = 0; i < 6; i++)
    ck_assert_int_eq (cow_io_pwrite (f.cow_mem, stray, cb,
                                     t_data_chunk (f.cs, i) * cb), 0);
  free (stray);
  recording_io_clear (f.cow);

  sw (&f, 5 * cb + 100, 200, 2);               /* both sides */
  sw (&f, 7 * cb, 300, 3);                      /* tail only */
  sw (&f, 9 * cb - 10, 2 * cb + 20, 4);         /* four chunks */
  sw (&f, 16 * cb + 10, 20, 5);                 /* the last partial one */
  ck_assert_uint_eq (recording_io_count (f.origin, REC_PREAD), 0);
  ck_assert_uint_eq (recording_io_count (f.cow, REC_PUNCH), 0);
  /* One vectored write per chunk or run: zeroes around the client's
   * bytes.
   */
  ck_assert_uint_eq (data_writes (&f, w, 8), 4);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq (w[i].kind, REC_PWRITEV);
  ck_assert_uint_eq (w[0].length, cb);
  ck_assert_uint_eq (w[1].length, cb);
  ck_assert_uint_eq (w[2].length, 4 * cb);
  ck_assert_uint_eq (w[3].length, 700);
  verify (&f, "over a hole");
  /* Data next to the hole is still read. */
  recording_io_clear (f.origin);
  sw (&f, 3 * cb + 100, 100, 6);
  ck_assert_uint_eq (recording_io_count (f.origin, REC_PREAD), 2);
  verify (&f, "next to the hole");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* A write over many new chunks: allocated at once, written with one
 * call per run contiguous in the store (two where the run steps over a
 * metadata area), the origin read for the first chunk's head and the
 * last one's tail only.
 */
START_TEST (test_many_chunks)
{
  struct fix f;
  struct rec_op r[4], w[8];
  struct cow_usage u;
  uint64_t cb;
  uint32_t E;

  fix_open (&f, sizes[_i], 700 * t_chunk_bytes (sizes[_i]), 0, 0, 0);
  cb = f.cb;
  E = t_per_area (f.cs);
  sw (&f, 2 * cb + 100, 5 * cb, 2);             /* chunks 2..7 */
  ck_assert_uint_eq (ops_of (f.origin, REC_PREAD, r, 4), 2);
  ck_assert_uint_eq (r[0].offset, 2 * cb);
  ck_assert_uint_eq (r[0].length, 100);
  ck_assert_uint_eq (r[1].offset, 7 * cb + 100);
  ck_assert_uint_eq (r[1].length, cb - 100);
  ck_assert_uint_eq (data_writes (&f, w, 8), 1);
  ck_assert_int_eq (w[0].kind, REC_PWRITEV);
  ck_assert_uint_eq (w[0].offset, t_data_chunk (f.cs, 0) * cb);
  ck_assert_uint_eq (w[0].length, 6 * cb);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, 6);
  verify (&f, "six chunks");

  /* Fill the first area but for two records, then six chunks over the
   * area boundary: two writes.
   */
  if (E - 8 <= 600) {
    for (uint64_t c = 10; c < 10 + E - 8; c++)
      sw (&f, c * cb, cb, 3);
    recording_io_clear (f.cow);
    recording_io_clear (f.origin);
    sw (&f, (10 + E) * cb + 1, 6 * cb - 2, 4);
    ck_assert_uint_eq (data_writes (&f, w, 8), 2);
    ck_assert_uint_eq (w[0].offset, t_data_chunk (f.cs, E - 2) * cb);
    ck_assert_uint_eq (w[0].length, 2 * cb);
    ck_assert_uint_eq (w[1].offset, t_data_chunk (f.cs, E) * cb);
    ck_assert_uint_eq (w[1].length, 4 * cb);
    ck_assert_uint_eq (ops_of (f.origin, REC_PREAD, r, 4), 2);
    verify (&f, "over an area");
  }
  /* More than one batch of chunks in one write. */
  sw (&f, 600 * cb - 5, 99 * cb, 5);
  verify (&f, "a long write");
  reopen (&f);
  cow_store_usage (f.s, &u);
  ck_assert_uint_eq (u.records, 6 + (E - 8 <= 600 ? E - 8 + 6 : 0) + 100);
  fix_close (&f);
}
END_TEST

/* A store that can share the origin's blocks (and is asked to:
 * params.reflink) clones whole chunks and
 * then writes only the client's bytes; the last partial chunk is copied.
 * Where cloning fails, the chunk is copied and cloning is not tried
 * again.
 */
START_TEST (test_clone)
{
  struct fix f;
  struct rec_op w[8], cl[8];
  struct cow_io_mem_counts c;
  uint64_t cb;

  fix_open (&f, sizes[_i], 12 * t_chunk_bytes (sizes[_i]) + 1000, 0, 0,
            WITH_CLONE);
  cb = f.cb;
  sw (&f, 2 * cb + 300, 100, 2);
  sw (&f, 4 * cb - 50, 100, 3);                 /* two chunks */
  sw (&f, 6 * cb, cb, 4);                       /* whole: no clone */
  ck_assert_uint_eq (recording_io_count (f.origin, REC_PREAD), 0);
  ck_assert_uint_eq (ops_of (f.cow, REC_CLONE, cl, 8), 3);
  for (int i = 0; i < 3; i++) {
    ck_assert_uint_eq (cl[i].offset, t_data_chunk (f.cs, i) * cb);
    ck_assert_uint_eq (cl[i].length, cb);
  }
  ck_assert_uint_eq (data_writes (&f, w, 8), 3);
  ck_assert_uint_eq (w[0].offset, t_data_chunk (f.cs, 0) * cb + 300);
  ck_assert_uint_eq (w[0].length, 100);
  ck_assert_uint_eq (w[1].offset, t_data_chunk (f.cs, 1) * cb + cb - 50);
  ck_assert_uint_eq (w[1].length, 100);
  ck_assert_uint_eq (w[2].length, cb);
  verify (&f, "cloned");
  /* The last partial chunk is copied. */
  recording_io_clear (f.origin);
  sw (&f, 12 * cb + 10, 10, 5);
  ck_assert_uint_eq (recording_io_count (f.cow, REC_CLONE), 3);
  ck_assert_uint_eq (recording_io_count (f.origin, REC_PREAD), 2);
  verify (&f, "last chunk copied");
  reopen (&f);
  fix_close (&f);

  fix_open (&f, sizes[_i], 12 * t_chunk_bytes (sizes[_i]), 0, 0,
            WITH_CLONE | CLONE_FAILS);
  cb = f.cb;
  sw (&f, 2 * cb + 300, 100, 2);
  sw (&f, 5 * cb + 300, 100, 3);
  cow_io_mem_counts (f.cow_mem, &c);
  ck_assert_uint_eq (c.clone, 1);
  ck_assert_uint_eq (recording_io_count (f.origin, REC_PREAD), 4);
  ck_assert_uint_eq (f.m.errors, 0);
  verify (&f, "clone failed");
  reopen (&f);
  fix_close (&f);

  /* Without params.reflink, a backend that could clone is not asked. */
  fix_open (&f, sizes[_i], 12 * t_chunk_bytes (sizes[_i]), 0, 0,
            WITH_CLONE);
  ck_assert_int_eq (cow_store_close (f.s), 0);
  f.p.reflink = false;
  ck_assert_int_eq (cow_store_open (f.cow, f.origin, &f.p, &f.s), 0);
  recording_io_clear (f.origin);
  sw (&f, 2 * f.cb + 300, 100, 2);
  cow_io_mem_counts (f.cow_mem, &c);
  ck_assert_uint_eq (c.clone, 0);
  ck_assert_uint_eq (recording_io_count (f.origin, REC_PREAD), 2);
  verify (&f, "reflink off");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* A store without pwritev gathers the pieces into one write. */
START_TEST (test_no_pwritev)
{
  struct fix f;
  struct rec_op w[4];

  fix_open (&f, 8, 16 * 4096, 0, 0, NO_PWRITEV);
  sw (&f, 3 * 4096 + 100, 1000, 2);
  sw (&f, 5 * 4096 + 100, 3 * 4096, 3);
  ck_assert_uint_eq (data_writes (&f, w, 4), 2);
  ck_assert_int_eq (w[0].kind, REC_PWRITE);
  ck_assert_uint_eq (w[0].length, 4096);
  ck_assert_int_eq (w[1].kind, REC_PWRITE);
  ck_assert_uint_eq (w[1].length, 4 * 4096);
  verify (&f, "gathered");
  reopen (&f);
  fix_close (&f);
}
END_TEST

/* Power loss after the data of partial first writes was synced and
 * while their records were being written: each write reads either as
 * written or as the origin, and the rest of its chunks as the origin.
 */
START_TEST (test_power_loss)
{
  const uint32_t cs = 16;
  const uint64_t cb = t_chunk_bytes (cs), size = 64 * cb;

  for (uint64_t seed = 1; seed <= 40; seed++) {
    struct msgs m;
    struct cow_store_params p;
    struct cow_io *origin, *cow, *after;
    struct cow_store *s;
    uint8_t *want = malloc (size), *got = malloc (size), *buf = malloc (cb);
    const uint8_t *img;
    size_t img_size;
    struct cow_io_mem_counts c;
    static const uint64_t at[][2] = {
      { 1, 100 }, { 3, 7000 }, { 8, 0 }, { 12, 4000 },
    };

    ck_assert (want && got && buf);
    msgs_init (&m);
    p = params_for (&m, cs);
    pattern_fill (want, size, ORIGIN_SEED, 0);
    origin = cow_io_mem_new (want, size, false);
    cow = cow_io_mem_new (NULL, 0, true);
    ck_assert_int_eq (cow_io_mem_track_power_loss (cow), 0);
    ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
    /* Committed first: these survive. */
    pattern_fill (buf, 1000, 50, 0);
    ck_assert_int_eq (cow_snapshot_pwrite (s, buf, 1000, 20 * cb + 10,
                                           false), 0);
    ck_assert_int_eq (cow_store_commit (s), 0);
    memcpy (want + 20 * cb + 10, buf, 1000);
    /* Then partial writes whose commit loses power in its second sync. */
    for (size_t k = 0; k < 4; k++) {
      pattern_fill (buf, cb, 60 + k, 0);
      ck_assert_int_eq (cow_snapshot_pwrite (s, buf, cb,
                                             at[k][0] * cb + at[k][1],
                                             false), 0);
    }
    cow_io_mem_counts (cow, &c);
    ck_assert_uint_gt (c.pwritev, 0);
    cow_io_mem_fail (cow, "sync", 2, EIO, true);
    cow_store_commit (s);
    ck_assert_int_eq (cow_io_mem_power_loss_random (cow, seed, NULL), 0);
    img = cow_io_mem_data (cow, &img_size);
    after = cow_io_mem_new (img, img_size, true);
    cow_store_close (s);
    cow_io_close (cow);

    p = params_for (&m, cs);
    ck_assert_int_eq (cow_store_open (after, origin, &p, &s), 0);
    ck_assert_int_eq (cow_snapshot_pread (s, got, size, 0), 0);
    for (size_t k = 0; k < 4; k++) {
      uint64_t off = at[k][0] * cb + at[k][1];

      pattern_fill (buf, cb, 60 + k, 0);
      /* Each chunk's piece as written, or as the origin (the two
       * records of one write may land apart).
       */
      for (uint64_t done = 0; done < cb; ) {
        uint64_t n = cb - (off + done) % cb;

        if (n > cb - done)
          n = cb - done;
        if (memcmp (got + off + done, buf + done, n) == 0)
          memcpy (want + off + done, buf + done, n);
        done += n;
      }
    }
    assert_bytes (got, want, size, "after power loss");
    cow_store_close (s);
    cow_io_close (after);
    cow_io_close (origin);
    free (want);
    free (got);
    free (buf);
  }
}
END_TEST

static Suite *
first_write_suite (void)
{
  Suite *s = suite_create ("first write");
  TCase *tc = tcase_create ("copy");

  tcase_add_loop_test (tc, test_head_tail, 0, 3);
  tcase_add_loop_test (tc, test_last_partial_chunk, 0, 6);
  tcase_add_loop_test (tc, test_zero_fill, 0, 3);
  tcase_add_loop_test (tc, test_hole_origin, 0, 3);
  tcase_add_loop_test (tc, test_many_chunks, 0, 3);
  tcase_add_loop_test (tc, test_clone, 0, 3);
  tcase_add_test (tc, test_no_pwritev);
  tcase_add_test (tc, test_power_loss);
  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return run_suite (first_write_suite ());
}
