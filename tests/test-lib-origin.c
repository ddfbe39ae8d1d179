/* test-lib-origin.c: origin mode (lib/origin*.c) on memory backends.
 *
 * - the origin with 0, 1 and 3 stores (4K, 16K, 64K chunks) under a
 *   seeded random workload of unaligned origin writes, zeroes and
 *   trims and snapshot writes and zeroes, checked byte for byte against
 *   a model, during the run and after reopening every store: each
 *   snapshot keeps its point in time plus what was written to it, the
 *   origin takes every change, the last partial chunk included;
 * - a full store: by default invalidated on disk, said once, origin
 *   writes go on; with fail_write_when_full the origin write fails with
 *   ENOSPC, leaves the origin untouched, and the snapshot stays whole;
 * - trim on a snapshot releases chunks: no data space, never copied;
 * - a snapshot write's record still pending when an origin write comes:
 *   after power loss the snapshot never shows the new origin data;
 * - power loss at every write and sync of a sequence of origin writes
 *   over two stores (any subset of the unsynced writes lands, torn or
 *   not): each reopened snapshot still shows its point in time.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define MAX_STORES 3
#define SEED_PIT 7              /* the origin's bytes at the point in time */

static uint64_t rng;

/* cow_origin_params.defer_writes for every origin a test opens: the
 * tests run once with each (the "deferred" test case sets it).
 */
static bool defer_writes;

static void
set_deferred (void)
{
  defer_writes = true;
}

static uint64_t
next_rand (void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void
quiet (void *opaque __attribute__ ((unused)),
       enum cow_msg_level level __attribute__ ((unused)),
       const char *msg __attribute__ ((unused)))
{
}

/* An origin with its stores, and what each view should hold. */
struct rig {
  size_t n;
  uint64_t size;
  struct msgs m;
  struct cow_io *origin;
  struct cow_io *cow[MAX_STORES];
  struct cow_store *s[MAX_STORES];
  struct cow_origin *o;
  uint8_t *want_origin;
  uint8_t *want_snap[MAX_STORES];
};

static void
open_stores (struct rig *r, const uint32_t *chunk_sectors)
{
  for (size_t i = 0; i < r->n; i++) {
    struct cow_store_params p = params_for (&r->m, chunk_sectors[i]);

    p.live_origin = true;
    ck_assert_int_eq (cow_store_open (r->cow[i], r->origin, &p, &r->s[i]),
                      0);
  }
}

static void
open_origin (struct rig *r, bool fail_write_when_full)
{
  struct cow_origin_params op = {
    .fail_write_when_full = fail_write_when_full,
    .defer_writes = defer_writes,
    .message = msgs_fn, .message_opaque = &r->m,
  };

  ck_assert_int_eq (cow_origin_open (r->origin, r->s, r->n, &op, &r->o), 0);
}

/* cow_bytes 0: growable stores. */
static void
rig_new (struct rig *r, size_t n, const uint32_t *chunk_sectors,
         uint64_t size, uint64_t cow_bytes)
{
  memset (r, 0, sizeof *r);
  msgs_init (&r->m);
  r->n = n;
  r->size = size;
  r->origin = origin_new (size, SEED_PIT);
  r->want_origin = malloc (size);
  ck_assert_ptr_nonnull (r->want_origin);
  pattern_fill (r->want_origin, size, SEED_PIT, 0);
  for (size_t i = 0; i < n; i++) {
    r->cow[i] = cow_io_mem_new (NULL, cow_bytes, cow_bytes == 0);
    r->want_snap[i] = malloc (size);
    ck_assert_ptr_nonnull (r->want_snap[i]);
    memcpy (r->want_snap[i], r->want_origin, size);
  }
  open_stores (r, chunk_sectors);
  open_origin (r, false);
}

static void
rig_close_views (struct rig *r)
{
  cow_origin_close (r->o);
  r->o = NULL;
  for (size_t i = 0; i < r->n; i++) {
    if (r->s[i])
      cow_store_close (r->s[i]);
    r->s[i] = NULL;
  }
}

static void
rig_free (struct rig *r)
{
  rig_close_views (r);
  for (size_t i = 0; i < r->n; i++) {
    cow_io_close (r->cow[i]);
    free (r->want_snap[i]);
  }
  cow_io_close (r->origin);
  free (r->want_origin);
}

static void
check_views (struct rig *r, const char *when)
{
  uint8_t *buf = malloc (r->size);
  char what[128];

  ck_assert_ptr_nonnull (buf);
  ck_assert_int_eq (cow_origin_pread (r->o, buf, r->size, 0), 0);
  snprintf (what, sizeof what, "%s: origin", when);
  assert_bytes (buf, r->want_origin, r->size, what);
  for (size_t i = 0; i < r->n; i++) {
    ck_assert_int_eq (cow_snapshot_pread (r->s[i], buf, r->size, 0), 0);
    snprintf (what, sizeof what, "%s: snapshot %zu", when, i);
    assert_bytes (buf, r->want_snap[i], r->size, what);
  }
  free (buf);
}

/* A random range: any byte offset, 1 byte to 192K, sometimes at the
 * very end of the origin.
 */
static void
random_range (const struct rig *r, uint64_t *offset, uint32_t *count)
{
  uint64_t len = 1 + next_rand () % (192 * 1024);

  if (next_rand () % 8 == 0)
    len = 1 + next_rand () % 512;
  if (len > r->size)
    len = r->size;
  *offset = next_rand () % 6 == 0 ? r->size - len
    : next_rand () % (r->size - len + 1);
  *count = len;
}

static void
random_step (struct rig *r, uint8_t *buf)
{
  uint64_t offset;
  uint32_t count;
  unsigned what = next_rand () % 10;
  size_t i = r->n ? next_rand () % r->n : 0;

  random_range (r, &offset, &count);
  pattern_fill (buf, count, next_rand (), 0);
  if (what < 5 || (r->n == 0 && what >= 7)) {
    ck_assert_int_eq (cow_origin_pwrite (r->o, buf, count, offset,
                                         next_rand () % 4 == 0), 0);
    memcpy (r->want_origin + offset, buf, count);
  }
  else if (what == 5) {
    ck_assert_int_eq (cow_origin_zero (r->o, count, offset, false, false),
                      0);
    memset (r->want_origin + offset, 0, count);
  }
  else if (what == 6) {
    /* The memory backend punches: a trimmed range reads as zeroes. */
    ck_assert_int_eq (cow_origin_trim (r->o, count, offset, false), 0);
    memset (r->want_origin + offset, 0, count);
  }
  else if (what < 9) {
    ck_assert_int_eq (cow_snapshot_pwrite (r->s[i], buf, count, offset,
                                           false), 0);
    memcpy (r->want_snap[i] + offset, buf, count);
  }
  else {
    ck_assert_int_eq (cow_snapshot_zero (r->s[i], count, offset, false,
                                         false), 0);
    memset (r->want_snap[i] + offset, 0, count);
  }
}

static const struct {
  size_t n;
  uint32_t chunk_sectors[MAX_STORES];
} configs[] = {
  { 0, { 0 } },
  { 1, { 8 } },
  { 1, { 32 } },
  { 1, { 128 } },
  { 3, { 8, 32, 128 } },
  { 3, { 128, 8, 32 } },
};

/* 1 MiB and 3 sectors: a last partial chunk at every chunk size. */
#define BYTES_SIZE ((1u << 20) + 1536)

START_TEST (test_bytes)
{
  struct rig r;
  uint8_t *buf = malloc (192 * 1024);
  char when[64];

  ck_assert_ptr_nonnull (buf);
  rng = 0x9e3779b97f4a7c15u + _i;
  rig_new (&r, configs[_i].n, configs[_i].chunk_sectors, BYTES_SIZE, 0);
  check_views (&r, "at first");
  for (unsigned k = 0; k < 300; k++) {
    random_step (&r, buf);
    if (k % 25 == 24) {
      snprintf (when, sizeof when, "config %d step %u", _i, k);
      check_views (&r, when);
    }
  }
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  check_views (&r, "after flush");
  rig_close_views (&r);
  open_stores (&r, configs[_i].chunk_sectors);
  open_origin (&r, false);
  check_views (&r, "reopened");
  ck_assert_uint_eq (r.m.errors, 0);
  rig_free (&r);
  free (buf);
}
END_TEST

/* The exact cases the random run may miss: one byte at the very end,
 * the last partial chunk whole, and a write over every chunk.
 */
START_TEST (test_edges)
{
  static const uint32_t cs[] = { 8, 32, 128 };
  struct rig r;
  uint8_t *buf = malloc (BYTES_SIZE);
  struct cow_usage u;

  ck_assert_ptr_nonnull (buf);
  rig_new (&r, 3, cs, BYTES_SIZE, 0);
  ck_assert_int_eq (cow_origin_pwrite (r.o, "Z", 1, BYTES_SIZE - 1, false),
                    0);
  r.want_origin[BYTES_SIZE - 1] = 'Z';
  check_views (&r, "last byte");
  memset (buf, 'q', 1536);
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 1536, 1u << 20, true), 0);
  memset (r.want_origin + (1u << 20), 'q', 1536);
  check_views (&r, "last partial chunk");
  /* One record per store for the last chunk, copied once.  (A deferred
   * write returned before its commit.)
   */
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  for (size_t i = 0; i < 3; i++) {
    cow_store_usage (r.s[i], &u);
    ck_assert_uint_eq (u.records, 1);
    ck_assert_uint_eq (u.pending, 0);
  }
  memset (buf, 'w', BYTES_SIZE);
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, BYTES_SIZE, 0, false), 0);
  memset (r.want_origin, 'w', BYTES_SIZE);
  check_views (&r, "everything");
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  for (size_t i = 0; i < 3; i++) {
    uint64_t chunk = cs[i] * 512u;

    cow_store_usage (r.s[i], &u);
    ck_assert_uint_eq (u.records, (BYTES_SIZE + chunk - 1) / chunk);
    ck_assert_uint_eq (u.pending, 0);
  }
  rig_free (&r);
  free (buf);
}
END_TEST

struct extent_log {
  unsigned n;
  uint64_t offset, length;
  bool zero;
};

static int
add_extent (void *opaque, uint64_t offset, uint64_t length, bool is_zero)
{
  struct extent_log *log = opaque;

  log->n++;
  log->offset = offset;
  log->length = length;
  log->zero = is_zero;
  return 0;
}

START_TEST (test_passthrough)
{
  struct rig r;
  struct cow_io_mem_counts c;

  rig_new (&r, 0, NULL, 64 * 1024, 0);
  ck_assert_int_eq (cow_origin_pwrite (r.o, "abc", 3, 4095, true), 0);
  memcpy (r.want_origin + 4095, "abc", 3);
  check_views (&r, "pass-through");
  cow_io_mem_counts (r.origin, &c);
  ck_assert_uint_eq (c.sync, 1);  /* FUA */
  ck_assert_int_eq (cow_origin_pwrite (r.o, "abc", 3, 64 * 1024 - 2, false),
                    -EINVAL);
  /* The memory backend has no block status: all data, in one extent. */
  {
    struct extent_log log = { 0 };

    ck_assert_int_eq (cow_origin_extents (r.o, 5000, 100, add_extent, &log),
                      0);
    ck_assert_uint_eq (log.n, 1);
    ck_assert_uint_eq (log.offset, 100);
    ck_assert_uint_eq (log.length, 5000);
    ck_assert (!log.zero);
  }
  ck_assert_int_eq (cow_origin_cache (r.o, 5000, 100), 0);
  rig_free (&r);
}
END_TEST

/* Fast zero refuses where a copy is needed, and works once copied. */
START_TEST (test_fast_zero)
{
  static const uint32_t cs[] = { 8 };
  struct rig r;

  rig_new (&r, 1, cs, 64 * 1024, 0);
  ck_assert_int_eq (cow_origin_zero (r.o, 4096, 8192, false, true), -ENOTSUP);
  check_views (&r, "refused fast zero");
  ck_assert_int_eq (cow_origin_zero (r.o, 4096, 8192, false, false), 0);
  memset (r.want_origin + 8192, 0, 4096);
  check_views (&r, "zero");
  ck_assert_int_eq (cow_origin_pwrite (r.o, "x", 1, 16384, false), 0);
  r.want_origin[16384] = 'x';
  ck_assert_int_eq (cow_origin_zero (r.o, 4096, 16384, false, true), 0);
  memset (r.want_origin + 16384, 0, 4096);
  check_views (&r, "fast zero");
  rig_free (&r);
}
END_TEST

/* A store that origin mode cannot use is refused at open; a read-only
 * store makes the origin read-only until it is made writable.
 */
START_TEST (test_refuse)
{
  struct msgs m;
  struct cow_io *origin = origin_new (64 * 1024, 1);
  struct cow_io *cow = cow_io_mem_new (NULL, 0, true);
  struct cow_store *s;
  struct cow_origin *o;
  struct cow_store_params p;
  struct cow_origin_params op = { .message = msgs_fn, .message_opaque = &m,
                                  .defer_writes = defer_writes };

  msgs_init (&m);
  p = params_for (&m, 8);
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_origin_open (origin, &s, 1, &op, &o), -EINVAL);
  ck_assert (strstr (m.last_error, "live_origin") != NULL);
  cow_store_close (s);

  p.live_origin = true;
  p.invalidate_on_overflow = true;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_origin_open (origin, &s, 1, &op, &o), -EINVAL);
  ck_assert (strstr (m.last_error, "on-full=") != NULL);
  cow_store_close (s);

  p.invalidate_on_overflow = false;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  {
    struct cow_store *two[2] = { s, s };

    ck_assert_int_eq (cow_origin_open (origin, two, 2, &op, &o), -EINVAL);
    ck_assert (strstr (m.last_error, "the same store") != NULL);
  }
  cow_store_close (s);

  p.readonly = true;
  ck_assert_int_eq (cow_store_open (cow, origin, &p, &s), 0);
  ck_assert_int_eq (cow_origin_open (origin, &s, 1, &op, &o), 0);
  ck_assert_int_eq (cow_origin_pwrite (o, "x", 1, 0, false), -EROFS);
  ck_assert_int_eq (cow_origin_zero (o, 1, 0, false, false), -EROFS);
  ck_assert_int_eq (cow_origin_trim (o, 1, 0, false), -EROFS);
  /* Made writable later, as a server does when a client may write: the
   * origin follows, and copies.
   */
  ck_assert_int_eq (cow_store_set_writable (s), 0);
  ck_assert_int_eq (cow_origin_pwrite (o, "x", 1, 0, false), 0);
  {
    uint8_t got[2], want[2];

    pattern_fill (want, 2, 1, 0);
    ck_assert_int_eq (cow_snapshot_pread (s, got, 2, 0), 0);
    assert_bytes (got, want, 2, "snapshot");
    ck_assert_int_eq (cow_origin_pread (o, got, 2, 0), 0);
    want[0] = 'x';
    assert_bytes (got, want, 2, "origin");
  }
  cow_origin_close (o);
  cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
}
END_TEST

/* A fixed store of header, area and 6 data chunks, next to a growable
 * one: the 7th chunk that needs copying finds the first one full.
 */
#define FULL_CHUNKS 8

static void
full_rig (struct rig *r, bool fail_write)
{
  static const uint32_t cs[] = { 8, 8 };

  memset (r, 0, sizeof *r);
  msgs_init (&r->m);
  r->n = 2;
  r->size = 64 * 4096;
  r->origin = origin_new (r->size, SEED_PIT);
  r->want_origin = malloc (r->size);
  pattern_fill (r->want_origin, r->size, SEED_PIT, 0);
  r->cow[0] = cow_io_mem_new (NULL, FULL_CHUNKS * 4096, false);
  r->cow[1] = cow_io_mem_new (NULL, 0, true);
  for (size_t i = 0; i < 2; i++) {
    r->want_snap[i] = malloc (r->size);
    memcpy (r->want_snap[i], r->want_origin, r->size);
  }
  open_stores (r, cs);
  open_origin (r, fail_write);
}

START_TEST (test_full_invalidate)
{
  struct rig r;
  uint8_t buf[4096];
  unsigned errors;
  const uint8_t *d;
  size_t size;

  full_rig (&r, false);
  memset (buf, 'o', sizeof buf);
  for (unsigned c = 0; c < 5; c++) {
    ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 100, c * 4096 + 7, false),
                      0);
    memcpy (r.want_origin + c * 4096 + 7, buf, 100);
  }
  check_views (&r, "before full");
  ck_assert_uint_eq (r.m.errors, 0);
  /* Chunks 5, 6 and 7 in one write: room in store 0 for chunk 5 only,
   * whose copy is then of no use.
   */
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 4096, 5 * 4096 + 2048,
                                       false), 0);
  memcpy (r.want_origin + 5 * 4096 + 2048, buf, 4096);
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 4096, 6 * 4096 + 2048,
                                       false), 0);
  memcpy (r.want_origin + 6 * 4096 + 2048, buf, 4096);
  ck_assert (strstr (r.m.last_error, "the COW store is full (8 chunks of "
                     "4096 bytes): origin writes go on and invalidate this "
                     "snapshot (on-full=invalidate)") != NULL);
  errors = r.m.errors;
  /* Said once: later origin writes go on without a word. */
  for (unsigned c = 8; c < 12; c++) {
    ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 1, c * 4096, false), 0);
    r.want_origin[c * 4096] = 'o';
  }
  ck_assert_uint_eq (r.m.errors, errors);
  /* Store 0's snapshot fails every request; store 1 keeps its view. */
  ck_assert_int_eq (cow_snapshot_pread (r.s[0], buf, 1, 0), -EIO);
  {
    uint8_t *all = malloc (r.size);
    ck_assert_int_eq (cow_origin_pread (r.o, all, r.size, 0), 0);
    assert_bytes (all, r.want_origin, r.size, "origin");
    ck_assert_int_eq (cow_snapshot_pread (r.s[1], all, r.size, 0), 0);
    assert_bytes (all, r.want_snap[1], r.size, "snapshot 1");
    free (all);
  }
  /* On disk: header valid=0. */
  d = cow_io_mem_data (r.cow[0], &size);
  ck_assert (memcmp (d, "SnAp", 4) == 0);
  ck_assert_int_eq (d[4] | d[5] | d[6] | d[7], 0);
  rig_free (&r);
}
END_TEST

START_TEST (test_full_fail_write)
{
  struct rig r;
  uint8_t buf[4096];
  unsigned errors;
  struct cow_usage u;

  full_rig (&r, true);
  memset (buf, 'o', sizeof buf);
  for (unsigned c = 0; c < 6; c++) {
    ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 100, c * 4096 + 7, false),
                      0);
    memcpy (r.want_origin + c * 4096 + 7, buf, 100);
  }
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 4096, 6 * 4096 + 2048,
                                       false), -ENOSPC);
  ck_assert (strstr (r.m.last_error, "on-full=fail-write") != NULL);
  errors = r.m.errors;
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 1, 9 * 4096, false),
                    -ENOSPC);
  ck_assert_uint_eq (r.m.errors, errors);
  /* The origin did not change there, and every snapshot is whole. */
  check_views (&r, "after ENOSPC");
  cow_store_usage (r.s[0], &u);
  ck_assert (u.valid);
  /* Writes to chunks that are copied already still go through. */
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 4096, 0, false), 0);
  memcpy (r.want_origin, buf, 4096);
  check_views (&r, "copied chunk");
  rig_close_views (&r);
  {
    static const uint32_t cs[] = { 8, 8 };
    open_stores (&r, cs);
    open_origin (&r, true);
  }
  check_views (&r, "reopened");
  rig_free (&r);
}
END_TEST

/* A store whose commit failed (an I/O error on its sync) has failed
 * for good: every origin write fails with EIO from then on, said once,
 * and the origin never changes under it.  An origin read error while
 * copying fails the write too, with nothing written.
 */
START_TEST (test_failed_store)
{
  static const uint32_t cs[] = { 8, 32 };
  struct rig r;
  unsigned errors;

  rig_new (&r, 2, cs, 256 * 1024, 0);
  ck_assert_int_eq (cow_origin_pwrite (r.o, "a", 1, 0, false), 0);
  r.want_origin[0] = 'a';

  cow_io_mem_fail (r.origin, "pread", 1, EIO, false);
  ck_assert_int_eq (cow_origin_pwrite (r.o, "b", 1, 65536, false), -EIO);
  ck_assert (strstr (r.m.last_error, "cannot read the origin") != NULL);
  check_views (&r, "after a failed origin read");

  cow_io_mem_fail (r.cow[1], "sync", 1, EIO, false);
  if (!defer_writes)
    ck_assert_int_eq (cow_origin_pwrite (r.o, "c", 1, 131072, false), -EIO);
  else {
    /* Queued: the failure comes back from the flush.  The write stays
     * visible in the origin's view but never reaches the origin.
     */
    const uint8_t *d;
    size_t size;

    ck_assert_int_eq (cow_origin_pwrite (r.o, "c", 1, 131072, false), 0);
    ck_assert_int_eq (cow_origin_flush (r.o), -EIO);
    ck_assert_int_eq (cow_origin_flush (r.o), -EIO);
    d = cow_io_mem_data (r.origin, &size);
    ck_assert_int_eq (d[131072], r.want_origin[131072]);
    r.want_origin[131072] = 'c';
  }
  errors = r.m.errors;
  /* Chunk 0 is copied in both stores, yet the write fails. */
  ck_assert_int_eq (cow_origin_pwrite (r.o, "d", 1, 1, false), -EIO);
  ck_assert (strstr (r.m.last_error, "origin writes fail from now on")
             != NULL);
  ck_assert_uint_eq (r.m.errors, errors + 1);
  ck_assert_int_eq (cow_origin_pwrite (r.o, "d", 1, 1, false), -EIO);
  ck_assert_uint_eq (r.m.errors, errors + 1);
  check_views (&r, "after a failed store");
  rig_free (&r);
}
END_TEST

/* The filesystem under a store is full when a copy is written (ENOSPC
 * from the write itself, not from the store's own size): the on-full
 * policy applies as for a full store.
 */
START_TEST (test_copy_enospc)
{
  static const uint32_t cs[] = { 8 };

  for (int fail_write = 0; fail_write <= 1; fail_write++) {
    struct rig r;

    rig_new (&r, 1, cs, 64 * 1024, 0);
    cow_origin_close (r.o);
    open_origin (&r, fail_write);
    cow_io_mem_fail (r.cow[0], "pwrite", 1, ENOSPC, false);
    if (fail_write) {
      ck_assert_int_eq (cow_origin_pwrite (r.o, "x", 1, 5000, false),
                        -ENOSPC);
      check_views (&r, "refused");
      ck_assert_int_eq (cow_origin_pwrite (r.o, "x", 1, 5000, false), 0);
      r.want_origin[5000] = 'x';
      check_views (&r, "room again");
    }
    else {
      uint8_t b;

      ck_assert_int_eq (cow_origin_pwrite (r.o, "x", 1, 5000, false), 0);
      ck_assert (strstr (r.m.last_error, "No space left on device: origin "
                         "writes go on and invalidate this snapshot") != NULL);
      ck_assert_int_eq (cow_snapshot_pread (r.s[0], &b, 1, 0), -EIO);
    }
    rig_free (&r);
  }
}
END_TEST

/* Trim on a snapshot in origin mode releases whole chunks. */
START_TEST (test_trim_release)
{
  static const uint32_t cs[] = { 8 };
  char path[] = "/tmp/snapcow-origin-trim.XXXXXX";
  int fd = mkstemp (path);
  struct rig r;
  struct cow_store_params p;
  struct cow_usage u, u2;
  struct stat st0, st1;
  uint8_t *buf;
  const uint64_t size = 4u << 20;

  ck_assert_int_ge (fd, 0);
  unlink (path);
  /* A real file, so "takes no space" is st_blocks. */
  memset (&r, 0, sizeof r);
  msgs_init (&r.m);
  r.n = 1;
  r.size = size;
  r.origin = origin_new (size, SEED_PIT);
  r.want_origin = malloc (size);
  r.want_snap[0] = malloc (size);
  buf = malloc (size);
  pattern_fill (r.want_origin, size, SEED_PIT, 0);
  memcpy (r.want_snap[0], r.want_origin, size);
  r.cow[0] = cow_io_fd_new (fd);
  p = params_for (&r.m, cs[0]);
  p.live_origin = true;
  ck_assert_int_eq (cow_store_open (r.cow[0], r.origin, &p, &r.s[0]), 0);
  open_origin (&r, false);

  /* Copy chunk 0 by an origin write, then trim the first 2 MiB and a
   * part of a chunk after it.
   */
  memset (buf, 'o', 4096);
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 10, 0, true), 0);
  memcpy (r.want_origin, buf, 10);
  ck_assert_int_eq (cow_origin_flush (r.o), 0);
  ck_assert_int_eq (fstat (fd, &st0), 0);
  cow_store_usage (r.s[0], &u);
  ck_assert_uint_eq (u.records, 1);
  ck_assert_int_eq (cow_snapshot_trim (r.s[0], (2u << 20) + 1000, 0, true),
                    0);
  memset (r.want_snap[0], 0, 2u << 20);    /* released: reads as zeroes */
  cow_store_usage (r.s[0], &u);
  ck_assert_uint_eq (u.records, 512);      /* 2 MiB of 4K chunks */
  ck_assert_uint_eq (u.pending, 0);        /* FUA */
  ck_assert_int_eq (fstat (fd, &st1), 0);
  /* Two more areas, and at most the 16 chunks reserved ahead (alloc.c):
   * the released chunks themselves are punched.
   */
  ck_assert_int_le (st1.st_blocks * 512, st0.st_blocks * 512 + 32 * 4096);
  check_views (&r, "trimmed");

  /* Origin writes over the released range copy nothing. */
  memset (buf, 'p', size);
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 2u << 20, 0, true), 0);
  memset (r.want_origin, 'p', 2u << 20);
  cow_store_usage (r.s[0], &u2);
  ck_assert_uint_eq (u2.records, u.records);
  ck_assert_uint_eq (u2.allocated_sectors, u.allocated_sectors);
  check_views (&r, "written after trim");
  /* The partly trimmed chunk after the range is copied as usual. */
  ck_assert_int_eq (cow_origin_pwrite (r.o, buf, 1, 2u << 20, true), 0);
  r.want_origin[2u << 20] = 'p';
  cow_store_usage (r.s[0], &u2);
  ck_assert_uint_eq (u2.records, u.records + 1);
  check_views (&r, "partial chunk");
  rig_close_views (&r);
  open_stores (&r, cs);
  open_origin (&r, false);
  check_views (&r, "reopened");
  ck_assert_uint_eq (r.m.errors, 0);
  rig_free (&r);
  free (buf);
}
END_TEST

/* A snapshot write leaves its record pending; an origin write to the
 * same chunk must not reach the origin before that record is durable,
 * or a crash would leave the snapshot reading the new origin data.
 */
START_TEST (test_pending_record)
{
  static const uint32_t cs[] = { 8 };
  struct rig r;
  uint8_t got[4096], want[4096];

  rig_new (&r, 1, cs, 64 * 1024, 0);
  ck_assert_int_eq (cow_io_mem_track_power_loss (r.cow[0]), 0);
  ck_assert_int_eq (cow_io_mem_track_power_loss (r.origin), 0);
  ck_assert_int_eq (cow_snapshot_pwrite (r.s[0], "snap", 4, 8192 + 100,
                                         false), 0);
  memset (got, 'N', sizeof got);
  ck_assert_int_eq (cow_origin_pwrite (r.o, got, 4096, 8192, true), 0);
  /* Power loss now: what was not synced is gone. */
  ck_assert_int_eq (cow_io_mem_power_loss (r.cow[0]), 0);
  ck_assert_int_eq (cow_io_mem_power_loss (r.origin), 0);
  cow_origin_close (r.o);
  r.o = NULL;
  /* Closing would commit: drop the store without it, as a crash does. */
  cow_io_mem_fail (r.cow[0], "pwrite", 1, EIO, true);
  cow_io_mem_fail (r.cow[0], "sync", 1, EIO, true);
  cow_store_close (r.s[0]);
  r.s[0] = NULL;
  cow_io_mem_fail (r.cow[0], "pwrite", 0, 0, false);
  cow_io_mem_fail (r.cow[0], "sync", 0, 0, false);
  open_stores (&r, cs);
  open_origin (&r, false);
  ck_assert_int_eq (cow_origin_pread (r.o, got, 4096, 8192), 0);
  memset (want, 'N', sizeof want);
  assert_bytes (got, want, 4096, "origin");
  ck_assert_int_eq (cow_snapshot_pread (r.s[0], got, 4096, 8192), 0);
  pattern_fill (want, 4096, SEED_PIT, 8192);
  memcpy (want + 100, "snap", 4);
  assert_bytes (got, want, 4096, "snapshot");
  rig_free (&r);
}
END_TEST

/* Power loss: a backend that stops at the nth write, punch, grow or
 * sync across all backends, as a machine that lost power there; the
 * memory backends underneath then keep any subset of what was not
 * synced.
 */
static atomic_long ops_left;

struct dying {
  struct cow_io io;
  struct cow_io *inner;
};

#define DYING(io) ((struct dying *) (io))

static bool
alive (void)
{
  return atomic_fetch_sub (&ops_left, 1) > 0;
}

static int
d_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  return cow_io_pread (DYING (io)->inner, buf, count, offset);
}

static int
d_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  return alive () ? cow_io_pwrite (DYING (io)->inner, buf, count, offset)
    : -EIO;
}

static int
d_sync (struct cow_io *io)
{
  return alive () ? cow_io_sync (DYING (io)->inner) : -EIO;
}

static int
d_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (DYING (io)->inner, size);
}

static int
d_grow (struct cow_io *io, uint64_t size)
{
  struct cow_io *in = DYING (io)->inner;

  return alive () ? in->ops->grow (in, size) : -EIO;
}

static int
d_punch (struct cow_io *io, uint64_t offset, uint64_t count)
{
  struct cow_io *in = DYING (io)->inner;

  return alive () ? in->ops->punch (in, offset, count) : -EIO;
}

static void
d_close (struct cow_io *io)
{
  free (io);
}

static const struct cow_io_ops dying_ops = {
  .name = "dying",
  .pread = d_pread, .pwrite = d_pwrite, .sync = d_sync,
  .get_size = d_get_size, .grow = d_grow, .punch = d_punch,
  .close = d_close,
};

static struct cow_io *
dying_new (struct cow_io *inner)
{
  struct dying *d = calloc (1, sizeof *d);

  ck_assert_ptr_nonnull (d);
  d->io.ops = &dying_ops;
  d->inner = inner;
  return &d->io;
}

#define PL_SIZE (256 * 1024)

/* One run: the workload with the power going after `budget` ops (or
 * never, for a negative budget); returns how many ops it made.
 */
static long
power_loss_run (long budget, uint64_t seed)
{
  static const uint32_t cs[] = { 8, 32 };
  struct cow_io *origin = origin_new (PL_SIZE, SEED_PIT);
  struct cow_io *cow[2], *dcow[2], *dorigin = dying_new (origin);
  struct cow_store *s[2];
  struct cow_origin *o;
  struct cow_origin_params op = { .message = quiet,
                                  .defer_writes = defer_writes };
  struct cow_store_params p = { .message = quiet, .live_origin = true };
  uint8_t *pit = malloc (PL_SIZE), *got = malloc (PL_SIZE);
  uint8_t *w0 = malloc (PL_SIZE), *w1 = malloc (PL_SIZE);
  uint8_t *w2 = malloc (PL_SIZE);
  uint8_t snapw[500];
  long used;

  pattern_fill (pit, PL_SIZE, SEED_PIT, 0);
  pattern_fill (w0, PL_SIZE, 100, 0);
  pattern_fill (w1, PL_SIZE, 101, 0);
  pattern_fill (w2, PL_SIZE, 102, 0);
  pattern_fill (snapw, sizeof snapw, 103, 0);
  atomic_store (&ops_left, LONG_MAX);
  for (int i = 0; i < 2; i++) {
    cow[i] = cow_io_mem_new (NULL, 0, true);
    dcow[i] = dying_new (cow[i]);
    p.chunk_sectors = cs[i];
    ck_assert_int_eq (cow_store_open (dcow[i], dorigin, &p, &s[i]), 0);
  }
  ck_assert_int_eq (cow_origin_open (dorigin, s, 2, &op, &o), 0);
  /* Durable before the crash window: one copy in each store. */
  ck_assert_int_eq (cow_origin_pwrite (o, w0 + 8192, 4096, 8192, false), 0);
  ck_assert_int_eq (cow_origin_flush (o), 0);
  /* A snapshot write whose record is still pending. */
  ck_assert_int_eq (cow_snapshot_pwrite (s[0], snapw, sizeof snapw,
                                         20480 + 100, false), 0);

  ck_assert_int_eq (cow_io_mem_track_power_loss (origin), 0);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq (cow_io_mem_track_power_loss (cow[i]), 0);
  atomic_store (&ops_left, budget < 0 ? LONG_MAX : budget);
  /* Over the pending record only, in store 0. */
  cow_origin_pwrite (o, w1 + 20480 + 50, 950, 20480 + 50, false);
  cow_origin_pwrite (o, w1 + 16384, 24576, 16384, true);
  cow_origin_pwrite (o, w2 + 1000, 8000, 1000, false);
  cow_origin_zero (o, 65536, 65536 + 512, false, false);
  cow_origin_pwrite (o, w2 + 200000, 30000, 200000, false);
  cow_origin_flush (o);
  used = LONG_MAX - atomic_load (&ops_left);
  if (budget >= 0)
    used = budget - atomic_load (&ops_left);
  atomic_store (&ops_left, 0);  /* the machine is off */

  cow_origin_close (o);
  for (int i = 0; i < 2; i++)
    cow_store_close (s[i]);
  ck_assert_int_eq (cow_io_mem_power_loss_random (origin, seed, NULL), 0);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq (cow_io_mem_power_loss_random (cow[i], seed + i + 1,
                                                    NULL), 0);

  /* Each snapshot still shows its point in time (store 0: and maybe
   * the pending write), whatever reached the origin.
   */
  for (int i = 0; i < 2; i++) {
    char what[64];

    p.chunk_sectors = cs[i];
    ck_assert_int_eq (cow_store_open (cow[i], origin, &p, &s[i]), 0);
    ck_assert_int_eq (cow_snapshot_pread (s[i], got, PL_SIZE, 0), 0);
    if (i == 0) {
      for (size_t k = 0; k < sizeof snapw; k++)
        if (got[20480 + 100 + k] == snapw[k])
          got[20480 + 100 + k] = pit[20480 + 100 + k];
    }
    snprintf (what, sizeof what, "budget %ld seed %" PRIu64 " snapshot %d",
              budget, seed, i);
    assert_bytes (got, pit, PL_SIZE, what);
    cow_store_close (s[i]);
  }
  /* The origin: each byte old, or from a write of the window. */
  {
    const uint8_t *d;
    size_t size;

    d = cow_io_mem_data (origin, &size);
    ck_assert_uint_eq (size, PL_SIZE);
    for (size_t k = 0; k < PL_SIZE; k++) {
      bool ok = d[k] == (k >= 8192 && k < 12288 ? w0[k] : pit[k]) ||
        d[k] == w1[k] || d[k] == w2[k] || d[k] == 0;

      if (!ok)
        ck_abort_msg ("budget %ld: origin byte %zu is 0x%02x", budget, k,
                      d[k]);
    }
  }
  for (int i = 0; i < 2; i++) {
    cow_io_close (dcow[i]);
    cow_io_close (cow[i]);
  }
  cow_io_close (dorigin);
  cow_io_close (origin);
  free (pit);
  free (got);
  free (w0);
  free (w1);
  free (w2);
  return used;
}

START_TEST (test_power_loss)
{
  long total = power_loss_run (-1, 1);

  ck_assert_int_gt (total, 10);
  for (long budget = 0; budget <= total; budget++)
    for (uint64_t seed = 1; seed <= 6; seed++)
      power_loss_run (budget, seed * 1000 + budget);
}
END_TEST

/* Power loss in random workloads over three stores of 4K, 16K and 64K
 * chunks: sector-aligned origin writes and zeroes, snapshot writes,
 * flushes and commits, in a random order, with the power going after a
 * random number of writes and syncs.  Every sector that a workload
 * writes is stamped (who, which write, which sector); after the crash
 * each snapshot sector must hold its point-in-time data or a stamp of
 * a write to that very snapshot and sector: never origin data.
 */
#define RPL_SIZE (512 * 1024)
#define RPL_SECTORS (RPL_SIZE / 512)
#define RPL_OPS 24
#define RPL_RUNS 150

struct rpl_write {
  int view;                     /* -1 the origin, else the store */
  uint64_t first, n;
};

static void
rpl_stamp (uint8_t *sector, uint64_t id, uint64_t sec)
{
  for (int k = 0; k < 512; k += 16) {
    memcpy (sector + k, &id, 8);
    memcpy (sector + k + 8, &sec, 8);
  }
}

static void
power_loss_random_run (uint64_t seed)
{
  static const uint32_t cs[] = { 8, 32, 128 };
  struct cow_io *origin = origin_new (RPL_SIZE, SEED_PIT);
  struct cow_io *cow[3], *dcow[3], *dorigin = dying_new (origin);
  struct cow_store *s[3];
  struct cow_origin *o;
  struct cow_origin_params op = { .message = quiet,
                                  .defer_writes = defer_writes };
  struct cow_store_params p = { .message = quiet, .live_origin = true };
  struct rpl_write log[RPL_OPS];
  uint8_t *pit = malloc (RPL_SIZE), *buf = malloc (RPL_SIZE);
  long budget;

  rng = seed * 0x9e3779b97f4a7c15u + 1;
  pattern_fill (pit, RPL_SIZE, SEED_PIT, 0);
  atomic_store (&ops_left, LONG_MAX);
  for (int i = 0; i < 3; i++) {
    cow[i] = cow_io_mem_new (NULL, 0, true);
    dcow[i] = dying_new (cow[i]);
    p.chunk_sectors = cs[i];
    ck_assert_int_eq (cow_store_open (dcow[i], dorigin, &p, &s[i]), 0);
  }
  ck_assert_int_eq (cow_origin_open (dorigin, s, 3, &op, &o), 0);
  ck_assert_int_eq (cow_io_mem_track_power_loss (origin), 0);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq (cow_io_mem_track_power_loss (cow[i]), 0);
  budget = next_rand () % 120;
  atomic_store (&ops_left, budget);

  for (unsigned k = 0; k < RPL_OPS; k++) {
    unsigned what = next_rand () % 16;
    struct rpl_write *wr = &log[k];
    uint64_t id = k + 1;

    wr->n = 1 + next_rand () % 160;
    wr->first = next_rand () % (RPL_SECTORS - wr->n + 1);
    wr->view = what < 8 ? -1 : (int) (next_rand () % 3);
    for (uint64_t j = 0; j < wr->n; j++)
      rpl_stamp (buf + j * 512, id, wr->first + j);
    if (what < 6)
      cow_origin_pwrite (o, buf, wr->n * 512, wr->first * 512,
                         next_rand () % 4 == 0);
    else if (what < 8)
      cow_origin_zero (o, wr->n * 512, wr->first * 512, false, false);
    else if (what < 14)
      cow_snapshot_pwrite (s[wr->view], buf, wr->n * 512, wr->first * 512,
                           false);
    else if (what == 14)
      cow_origin_flush (o);
    else
      cow_store_commit (s[wr->view]);
  }
  atomic_store (&ops_left, 0);  /* the power goes, if it had not */
  cow_origin_close (o);
  for (int i = 0; i < 3; i++)
    cow_store_close (s[i]);
  ck_assert_int_eq (cow_io_mem_power_loss_random (origin, seed, NULL), 0);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq (cow_io_mem_power_loss_random (cow[i], seed + i + 1,
                                                    NULL), 0);

  for (int i = 0; i < 3; i++) {
    p.chunk_sectors = cs[i];
    ck_assert_int_eq (cow_store_open (cow[i], origin, &p, &s[i]), 0);
    ck_assert_int_eq (cow_snapshot_pread (s[i], buf, RPL_SIZE, 0), 0);
    for (uint64_t sec = 0; sec < RPL_SECTORS; sec++) {
      const uint8_t *got = buf + sec * 512;
      uint8_t want[512];
      uint64_t id;
      bool ok = memcmp (got, pit + sec * 512, 512) == 0;

      memcpy (&id, got, 8);
      if (!ok && id >= 1 && id <= RPL_OPS) {
        const struct rpl_write *wr = &log[id - 1];

        rpl_stamp (want, id, sec);
        ok = wr->view == i && sec >= wr->first && sec < wr->first + wr->n
          && memcmp (got, want, 512) == 0;
      }
      if (!ok)
        ck_abort_msg ("seed %" PRIu64 " budget %ld: snapshot %d sector %"
                      PRIu64 " holds neither its point in time nor its "
                      "own write (id %" PRIu64 ")", seed, budget, i, sec,
                      id);
    }
    cow_store_close (s[i]);
  }
  for (int i = 0; i < 3; i++) {
    cow_io_close (dcow[i]);
    cow_io_close (cow[i]);
  }
  cow_io_close (dorigin);
  cow_io_close (origin);
  free (pit);
  free (buf);
}

START_TEST (test_power_loss_random)
{
  for (uint64_t seed = 1; seed <= RPL_RUNS; seed++)
    power_loss_random_run (seed);
}
END_TEST

/* Every test, with origin writes synchronous (the kernel's way) and
 * deferred until their copies are committed (origin-defer.c).
 */
static TCase *
origin_tcase (const char *name, bool deferred)
{
  TCase *tc = tcase_create (name);

  if (deferred)
    tcase_add_unchecked_fixture (tc, set_deferred, NULL);
  tcase_set_timeout (tc, 120);
  tcase_add_loop_test (tc, test_bytes, 0,
                       sizeof configs / sizeof configs[0]);
  tcase_add_test (tc, test_edges);
  tcase_add_test (tc, test_passthrough);
  tcase_add_test (tc, test_fast_zero);
  tcase_add_test (tc, test_refuse);
  tcase_add_test (tc, test_full_invalidate);
  tcase_add_test (tc, test_full_fail_write);
  tcase_add_test (tc, test_failed_store);
  tcase_add_test (tc, test_copy_enospc);
  tcase_add_test (tc, test_trim_release);
  tcase_add_test (tc, test_pending_record);
  tcase_add_test (tc, test_power_loss);
  tcase_add_test (tc, test_power_loss_random);
  return tc;
}

int
main (void)
{
  Suite *s = suite_create ("origin");

  suite_add_tcase (s, origin_tcase ("synchronous", false));
  suite_add_tcase (s, origin_tcase ("deferred", true));
  return run_suite (s);
}
