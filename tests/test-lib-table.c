/* test-lib-table.c: the exception table at scale.  Millions of records
 * with every lookup checked, lock-free readers racing inserts and
 * growth, the wide layout for geometries too big to pack, probe
 * sequences that stay short for keys at power-of-two strides, and the
 * memory cost per record (printed; the kernel spends 32 bytes).
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "test-lib-util.h"

/* A bijective scramble, so old chunks are spread and distinct. */
static chunk_t
old_of (uint64_t i, chunk_t origin_chunks)
{
  return (i * UINT64_C (2654435761)) % origin_chunks;
}

static void
fill_and_check (chunk_t origin_chunks, chunk_t cow_chunks, uint64_t n,
                bool expect_packed)
{
  struct cow_table t;
  uint64_t with_retired;
  chunk_t nc;

  ck_assert_int_eq (table_init (&t, origin_chunks, cow_chunks, 0), 0);
  for (uint64_t i = 0; i < n; i++)
    ck_assert_int_eq (table_insert_locked (&t, old_of (i, origin_chunks),
                                           2 + i), 0);
  /* A table that cannot pack its bounds packs until an entry does not
   * fit: here, soon.
   */
  ck_assert_int_eq (t.new_bits != 0, expect_packed);
  ck_assert_uint_eq (t.count, n);
  for (uint64_t i = 0; i < n; i++) {
    ck_assert (table_lookup (&t, old_of (i, origin_chunks), &nc));
    ck_assert_uint_eq (nc, 2 + i);
  }
  /* Chunks never inserted are misses. */
  for (uint64_t i = n; i < n + 10000; i++)
    ck_assert (!table_lookup (&t, old_of (i, origin_chunks), &nc));
  with_retired = table_memory (&t);
  table_release_retired_unshared (&t);
  printf ("%s: %" PRIu64 " records, %.1f bytes/record with retired arrays, "
          "%.1f without\n", expect_packed ? "packed" : "wide", n,
          (double) with_retired / n, (double) table_memory (&t) / n);
  table_free (&t);
}

START_TEST (test_millions_packed)
{
  /* 1 TiB origin at 16K chunks. */
  fill_and_check (UINT64_C (1) << 26, UINT64_C (1) << 26, 3000000, true);
}
END_TEST

START_TEST (test_wide)
{
  /* Too many chunks to pack old and new into one word. */
  fill_and_check (UINT64_C (1) << 40, UINT64_C (1) << 40, 200000, false);
}
END_TEST

START_TEST (test_new_chunk_too_big)
{
  struct cow_table t;

  ck_assert_int_eq (table_init (&t, 1000, 1000, 0), 0);
  ck_assert_int_eq (table_insert_locked (&t, 1, t.max_new_chunk), 0);
  ck_assert_int_eq (table_insert_locked (&t, 2, t.max_new_chunk + 1),
                    -EOVERFLOW);
  table_free (&t);
}
END_TEST

/* Old chunks at power-of-two strides (a file system's block groups,
 * written by mkfs on the snapshot) must spread over the table like any
 * others: a hash whose low bits only follow the key's low bits piles
 * them into one run, and every open and lookup turns quadratic.  The
 * probe length is counted, not timed.  With 100,000 keys (in 250,000
 * slots) a good hash makes the longest probe 15 to 23 slots for every
 * case here; 48 leaves a margin.  The old hash, which took the low bits
 * of a product, gave 391 at stride 2^10, 6144 at 2^14 and 512 at 2^20.
 */
#define MAX_PROBE 48
/* The same for a table that may be at its highest load (4/5) after
 * growing and removals: 128 for test_remove's keys.  Tombstones that
 * were never dropped would fill it, and the probes would run to
 * thousands.
 */
#define MAX_PROBE_FULL 192

static const struct { const char *name; uint64_t stride; } strides[] = {
  { "consecutive", 1 }, { "stride 2^4", UINT64_C (1) << 4 },
  { "stride 2^10", UINT64_C (1) << 10 }, { "stride 2^14", UINT64_C (1) << 14 },
  { "stride 2^20", UINT64_C (1) << 20 }, { "stride 2^32", UINT64_C (1) << 32 },
  { "random", 0 },
};

START_TEST (test_strides_probe_short)
{
  const uint64_t n = 100000, stride = strides[_i].stride;
  const chunk_t origin_chunks = stride ? n * stride : UINT64_C (1) << 40;
  uint64_t x = 88172645463325252u, probe;
  struct cow_table t;
  chunk_t nc;

  /* Sized for 2n entries: 250,000 slots, 2/5 full. */
  ck_assert_int_eq (table_init (&t, origin_chunks, n + 2, 2 * n), 0);
  for (uint64_t i = 0; i < n; i++) {
    chunk_t old;

    if (stride)
      old = i * stride;
    else {
      /* xorshift64; a repeat would fail the insert count below. */
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      old = x % origin_chunks;
    }
    if (!stride && table_lookup (&t, old, &nc))
      continue;
    ck_assert_int_eq (table_insert_locked (&t, old, 2 + i), 0);
  }
  ck_assert_uint_ge (t.count, n - 10);
  probe = table_max_probe (&t);
  printf ("%s: %" PRIu64 " keys in %s layout, longest probe %" PRIu64 "\n",
          strides[_i].name, t.count, t.new_bits ? "packed" : "wide", probe);
  ck_assert_msg (probe <= MAX_PROBE, "%s: longest probe %" PRIu64
                 " slots, more than %d", strides[_i].name, probe, MAX_PROBE);
  /* Every key is still found where the probe says. */
  for (uint64_t i = 0; stride && i < n; i++) {
    ck_assert (table_lookup (&t, i * stride, &nc));
    ck_assert_uint_eq (nc, 2 + i);
  }
  table_free (&t);
}
END_TEST

/* An old_chunk whose key (old_chunk + 1) does not fit is refused, not
 * stored: UINT64_MAX would wrap to the key of an empty slot.
 */
START_TEST (test_old_chunk_too_big)
{
  struct cow_table t;
  chunk_t nc;

  /* Packed: 1000 chunks take 10 key bits, so keys up to 1023. */
  ck_assert_int_eq (table_init (&t, 1000, 1000, 0), 0);
  ck_assert_uint_ne (t.new_bits, 0);
  ck_assert_int_eq (table_insert_locked (&t, 1022, 5), 0);
  ck_assert_int_eq (table_insert_locked (&t, 1023, 6), -EOVERFLOW);
  ck_assert_int_eq (table_insert_locked (&t, UINT64_MAX, 7), -EOVERFLOW);
  ck_assert_uint_eq (t.count, 1);
  ck_assert (table_lookup (&t, 1022, &nc));
  ck_assert_uint_eq (nc, 5);
  ck_assert (!table_lookup (&t, 1023, &nc));
  ck_assert (!table_lookup (&t, UINT64_MAX, &nc));
  table_free (&t);

  /* Wide: bounds too big to pack.  The table packs for the device
   * until the first key that does not fit.
   */
  ck_assert_int_eq (table_init (&t, UINT64_C (1) << 52, 1000, 0), 0);
  ck_assert_uint_ne (t.new_bits, 0);
  ck_assert_int_eq (table_insert_locked (&t, UINT64_MAX, 7), -EOVERFLOW);
  ck_assert_int_eq (table_insert_locked (&t, 3, 9), 0);
  ck_assert_uint_ne (t.new_bits, 0);
  ck_assert_int_eq (table_insert_locked (&t, UINT64_MAX - 1, 8), 0);
  ck_assert_uint_eq (t.new_bits, 0);
  table_release_retired_unshared (&t);
  ck_assert (table_lookup (&t, 3, &nc));
  ck_assert_uint_eq (nc, 9);
  ck_assert (table_remove_locked (&t, 3));
  ck_assert_uint_eq (t.count, 1);
  ck_assert (table_lookup (&t, UINT64_MAX - 1, &nc));
  ck_assert_uint_eq (nc, 8);
  ck_assert (!table_lookup (&t, UINT64_MAX, &nc));
  ck_assert_uint_eq (table_max_probe (&t), 1);
  table_free (&t);
}
END_TEST

/* Readers look up records already published while the writer inserts
 * more and the array is replaced under them.
 */
struct race {
  struct cow_table t;
  _Atomic uint64_t published;
  _Atomic bool done;
  _Atomic uint64_t bad;
};

static void *
reader (void *arg)
{
  struct race *r = arg;
  uint64_t x = (uintptr_t) &x;

  while (!atomic_load (&r->done)) {
    uint64_t p = atomic_load_explicit (&r->published, memory_order_acquire);
    chunk_t nc;

    if (p == 0)
      continue;
    x = x * 6364136223846793005u + 1442695040888963407u;
    uint64_t i = (x >> 11) % p;
    if (!table_lookup (&r->t, old_of (i, 1u << 30), &nc) || nc != 2 + i)
      atomic_fetch_add (&r->bad, 1);
  }
  return NULL;
}

START_TEST (test_lockfree_readers)
{
  static struct race r;
  pthread_t th[3];
  const uint64_t n = 1000000;

  ck_assert_int_eq (table_init (&r.t, 1u << 30, 1u << 30, 0), 0);
  for (int k = 0; k < 3; k++)
    pthread_create (&th[k], NULL, reader, &r);
  for (uint64_t i = 0; i < n; i++) {
    ck_assert_int_eq (table_insert_locked (&r.t, old_of (i, 1u << 30),
                                           2 + i), 0);
    atomic_store_explicit (&r.published, i + 1, memory_order_release);
  }
  atomic_store (&r.done, true);
  for (int k = 0; k < 3; k++)
    pthread_join (th[k], NULL);
  ck_assert_uint_eq (atomic_load (&r.bad), 0);
  table_free (&r.t);
}
END_TEST

/* A table whose bounds cannot be packed (a store opened without its
 * origin) packs for the device until an entry does not fit, then
 * migrates to the wide layout while readers go on finding every
 * published entry.
 */
START_TEST (test_widen_lockfree_readers)
{
  static struct race r;
  pthread_t th[2];
  const uint64_t n = 600000;
  chunk_t nc;

  memset (&r, 0, sizeof r);
  ck_assert_int_eq (table_init (&r.t, UINT64_C (1) << 52, 1u << 20, 0), 0);
  ck_assert_uint_ne (r.t.new_bits, 0);
  for (int k = 0; k < 2; k++)
    pthread_create (&th[k], NULL, reader, &r);
  for (uint64_t i = 0; i < n; i++) {
    if (i == n / 2) {
      ck_assert_uint_ne (r.t.new_bits, 0);
      ck_assert_int_eq (table_insert_locked (&r.t, UINT64_C (1) << 50, 1),
                        0);
      ck_assert_uint_eq (r.t.new_bits, 0);
      ck_assert_ptr_nonnull (r.t.old);
    }
    ck_assert_int_eq (table_insert_locked (&r.t, old_of (i, 1u << 30),
                                           2 + i), 0);
    atomic_store_explicit (&r.published, i + 1, memory_order_release);
  }
  atomic_store (&r.done, true);
  for (int k = 0; k < 2; k++)
    pthread_join (th[k], NULL);
  ck_assert_uint_eq (atomic_load (&r.bad), 0);
  ck_assert (table_lookup (&r.t, UINT64_C (1) << 50, &nc));
  ck_assert_uint_eq (nc, 1);
  ck_assert_uint_eq (r.t.count, n + 1);
  table_free (&r.t);
}
END_TEST

/* An origin too big to pack with a new_chunk bound of twice its size
 * (4 TiB at 4K chunks) still packs: its keys take what they need and
 * the values the rest, which a COW device far smaller than the origin
 * never fills.
 */
START_TEST (test_big_origin_packed)
{
  const chunk_t origin_chunks = UINT64_C (1) << 30;
  struct cow_table t;
  chunk_t nc;

  ck_assert_int_eq (table_init (&t, origin_chunks, 1000, 0), 0);
  ck_assert_uint_ne (t.new_bits, 0);
  for (uint64_t i = 0; i < 100000; i++)
    ck_assert_int_eq (table_insert_locked (&t, origin_chunks - 1 - 7 * i,
                                           2 + 1000 * i), 0);
  ck_assert_uint_ne (t.new_bits, 0);
  for (uint64_t i = 0; i < 100000; i++) {
    ck_assert (table_lookup (&t, origin_chunks - 1 - 7 * i, &nc));
    ck_assert_uint_eq (nc, 2 + 1000 * i);
  }
  table_free (&t);
}
END_TEST

/* Removal leaves a tombstone: the removed keys miss, the keys probed
 * past them are still found, a removed key can be inserted again (its
 * tombstone sits before it in the walk), and a rebuild drops the
 * tombstones without losing an entry.
 */
static void
remove_and_check (chunk_t origin_chunks)
{
  const uint64_t n = 20000;
  struct cow_table t;
  chunk_t nc;

  ck_assert_int_eq (table_init (&t, origin_chunks, origin_chunks, 0), 0);
  for (uint64_t i = 0; i < n; i++)
    ck_assert_int_eq (table_insert_locked (&t, old_of (i, origin_chunks),
                                           2 + i), 0);
  for (uint64_t i = 1; i < n; i += 2)
    ck_assert (table_remove_locked (&t, old_of (i, origin_chunks)));
  ck_assert_uint_eq (t.count, n / 2);
  /* A second removal, or of a key never there, finds nothing. */
  ck_assert (!table_remove_locked (&t, old_of (1, origin_chunks)));
  ck_assert (!table_remove_locked (&t, old_of (n + 1, origin_chunks)));
  ck_assert_uint_eq (t.count, n / 2);
  for (uint64_t i = 0; i < n; i++) {
    bool found = table_lookup (&t, old_of (i, origin_chunks), &nc);
    ck_assert_int_eq (found, i % 2 == 0);
    if (found)
      ck_assert_uint_eq (nc, 2 + i);
  }
  /* Insert every fourth removed key again, with a new value. */
  for (uint64_t i = 1; i < n; i += 4)
    ck_assert_int_eq (table_insert_locked (&t, old_of (i, origin_chunks),
                                           7 + i), 0);
  for (uint64_t i = 1; i < n; i += 2) {
    bool found = table_lookup (&t, old_of (i, origin_chunks), &nc);
    ck_assert_int_eq (found, i % 4 == 1);
    if (found)
      ck_assert_uint_eq (nc, 7 + i);
  }
  /* Remove and insert fresh keys until the array is rebuilt several
   * times, tombstones and all.
   */
  for (uint64_t i = n; i < 40 * n; i++) {
    ck_assert_int_eq (table_insert_locked (&t, old_of (i, origin_chunks),
                                           2 + i), 0);
    ck_assert (table_remove_locked (&t, old_of (i - n / 4,
                                                origin_chunks)) ==
               ((i - n / 4) % 4 != 3 || i - n / 4 >= n));
  }
  uint64_t live = 0;
  for (uint64_t i = 0; i < 40 * n; i++) {
    bool first = i < 3 * n / 4 && i % 4 != 3;
    bool want = first || i >= 40 * n - n / 4;
    ck_assert_int_eq (table_lookup (&t, old_of (i, origin_chunks), &nc),
                      want);
    if (want)
      ck_assert_uint_eq (nc, (i % 4 == 1 && first ? 7 : 2) + i);
    live += want;
  }
  ck_assert_uint_eq (t.count, live);
  /* The load is live entries plus tombstones: a table that never
   * holds more than n entries does not grow without bound.
   */
  table_release_retired_unshared (&t);
  ck_assert_uint_le (table_memory (&t), (uint64_t) 2 * 1024 * 1024);
  ck_assert_uint_le (table_max_probe (&t), MAX_PROBE_FULL);
  table_free (&t);
}

START_TEST (test_remove)
{
  remove_and_check (UINT64_C (1) << 30);      /* packed */
  remove_and_check (UINT64_C (1) << 45);      /* wide */
}
END_TEST

/* Readers look up records that stay while the writer removes others
 * around them and inserts enough to rebuild the array.
 */
static void *
kept_reader (void *arg)
{
  struct race *r = arg;
  uint64_t x = (uintptr_t) &x;

  while (!atomic_load (&r->done)) {
    chunk_t nc;

    x = x * 6364136223846793005u + 1442695040888963407u;
    uint64_t i = ((x >> 11) % 100000) * 2;
    if (!table_lookup (&r->t, old_of (i, 1u << 30), &nc) || nc != 2 + i)
      atomic_fetch_add (&r->bad, 1);
  }
  return NULL;
}

START_TEST (test_remove_lockfree_readers)
{
  static struct race r;
  pthread_t th[2];

  ck_assert_int_eq (table_init (&r.t, 1u << 30, 1u << 30, 0), 0);
  /* Even i up to 200,000 stay; odd i come and go. */
  for (uint64_t i = 0; i < 200000; i++)
    ck_assert_int_eq (table_insert_locked (&r.t, old_of (i, 1u << 30),
                                           2 + i), 0);
  for (int k = 0; k < 2; k++)
    pthread_create (&th[k], NULL, kept_reader, &r);
  for (uint64_t i = 1; i < 200000; i += 2)
    ck_assert (table_remove_locked (&r.t, old_of (i, 1u << 30)));
  for (uint64_t i = 200001; i < 2000000; i += 2) {
    ck_assert_int_eq (table_insert_locked (&r.t, old_of (i, 1u << 30),
                                           2 + i), 0);
    if (i > 300000)
      ck_assert (table_remove_locked (&r.t, old_of (i - 100000, 1u << 30)));
  }
  atomic_store (&r.done, true);
  for (int k = 0; k < 2; k++)
    pthread_join (th[k], NULL);
  ck_assert_uint_eq (atomic_load (&r.bad), 0);
  table_free (&r.t);
}
END_TEST

/* Runs: records consecutive in old and new chunk alike (a sequential
 * writer's, with the jumps over metadata areas the allocator makes)
 * share entries.  Sized from a sample as the loader does, a million
 * such records cost at most 2 bytes each; every chunk maps right and
 * the chunks around the runs miss.
 */
START_TEST (test_runs_memory)
{
  const uint64_t n = 1000000, run = 1000, E = 256;
  struct core_exception *v = malloc (n * sizeof *v);
  struct cow_table t;
  double per;
  chunk_t nc;

  ck_assert_ptr_nonnull (v);
  for (uint64_t i = 0; i < n; i++) {
    /* Run r of 1000 chunks at old chunk 3000 * r + 7 (unaligned to the
     * groups), written in a scrambled order of runs.
     */
    uint64_t r = old_of (i / run, n / run * 2);
    v[i].old_chunk = 3000 * r + 7 + i % run;
    v[i].new_chunk = 2 + i + i / E;  /* skipping one area per E */
  }
  ck_assert_int_eq (table_init (&t, 8 * n, 2 * n, 0), 0);
  ck_assert_int_eq (table_presize_unshared (&t, table_entries_for (v, n)),
                    0);
  for (uint64_t i = 0; i < n; i++)
    ck_assert_int_eq (table_insert_locked (&t, v[i].old_chunk,
                                           v[i].new_chunk), 0);
  ck_assert_uint_eq (t.count, n);
  ck_assert_uint_eq (t.entries, table_entries_for (v, n));
  for (uint64_t i = 0; i < n; i++) {
    ck_assert (table_lookup (&t, v[i].old_chunk, &nc));
    ck_assert_uint_eq (nc, v[i].new_chunk);
    if (i % run == 0)
      ck_assert (!table_lookup (&t, v[i].old_chunk - 1, &nc));
    if (i % run == run - 1)
      ck_assert (!table_lookup (&t, v[i].old_chunk + 1, &nc));
  }
  table_release_retired_unshared (&t);
  per = (double) table_memory (&t) / n;
  printf ("runs of %" PRIu64 ": %" PRIu64 " records in %" PRIu64
          " entries, %.2f bytes/record\n", run, n, t.entries, per);
  ck_assert (per <= 2.0);
  table_free (&t);
  free (v);
}
END_TEST

/* A model check: random inserts (half of them lengthening a run) and
 * removals (at a run's start, middle or end) against a plain array,
 * from a small table through many migrations, with every chunk of the
 * range looked up after each batch, some batches ending mid-migration.
 */
static void
model_check (chunk_t origin_chunks)
{
  const uint64_t range = 20000;
  chunk_t *want = calloc (range, sizeof *want);  /* new + 1, 0: none */
  uint64_t x = 88172645463325252u, mapped = 0, next_new = 2;
  bool saw_migration = false;
  struct cow_table t;
  chunk_t nc;

  ck_assert_ptr_nonnull (want);
  ck_assert_int_eq (table_init (&t, origin_chunks, origin_chunks, 0), 0);
  for (int batch = 0; batch < 200; batch++) {
    for (int op = 0; op < 1000; op++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      chunk_t c = (x >> 8) % range;
      /* Grow to about 3/4 of the range, then hover. */
      bool insert = (x & 3) != 0 ? mapped * 4 < range * 3
        : mapped * 2 < range;

      if (insert) {
        /* Lengthen a run: the first unmapped chunk after c. */
        while (c < range && want[c])
          c++;
        if (c == range)
          continue;
        ck_assert_int_eq (table_insert_locked (&t, c, next_new), 0);
        want[c] = next_new + 1;
        mapped++;
        next_new++;
        if ((x & 0x30) == 0)
          next_new += 1 + (x >> 40) % 5;     /* break the run */
      }
      else {
        ck_assert_int_eq (table_remove_locked (&t, c), want[c] != 0);
        mapped -= want[c] != 0;
        want[c] = 0;
      }
    }
    saw_migration |= t.old != NULL;
    ck_assert_uint_eq (t.count, mapped);
    for (chunk_t c = 0; c < range; c++) {
      bool found = table_lookup (&t, c, &nc);
      ck_assert_msg (found == (want[c] != 0), "chunk %" PRIu64 ": %s",
                     c, found ? "found, not mapped" : "mapped, not found");
      if (found)
        ck_assert_uint_eq (nc, want[c] - 1);
    }
  }
  ck_assert (saw_migration);
  table_free (&t);
  free (want);
}

START_TEST (test_runs_model)
{
  model_check (UINT64_C (1) << 20);     /* packed */
  model_check (UINT64_C (1) << 56);     /* wide */
}
END_TEST

/* Readers look up the chunks of runs that stay, while the writer
 * inserts runs, removes chunks from the start, middle and end of other
 * runs in the same groups (splitting them) and the array is migrated
 * under them, again and again.
 */
#define KEPT_RUNS 5000

static chunk_t
kept_chunk (uint64_t k)
{
  /* Chunks 0..3 of group 2k stay: the writer works on 4..7 and on odd
   * groups.
   */
  return 16 * k + k % 4;
}

static void *
run_reader (void *arg)
{
  struct race *r = arg;
  uint64_t x = (uintptr_t) &x;

  while (!atomic_load (&r->done)) {
    chunk_t nc;

    x = x * 6364136223846793005u + 1442695040888963407u;
    uint64_t k = (x >> 11) % KEPT_RUNS;
    if (!table_lookup (&r->t, kept_chunk (k), &nc) ||
        nc != 1000000 + 8 * k + k % 4)
      atomic_fetch_add (&r->bad, 1);
  }
  return NULL;
}

START_TEST (test_runs_lockfree_readers)
{
  static struct race r;
  pthread_t th[2];
  chunk_t nc;

  memset (&r, 0, sizeof r);
  ck_assert_int_eq (table_init (&r.t, 1u << 24, 1u << 24, 0), 0);
  /* Group 2k: chunks 0..7 as one run to new chunks 1000000 + 8k... */
  for (uint64_t k = 0; k < KEPT_RUNS; k++)
    for (uint64_t j = 0; j < 8; j++)
      ck_assert_int_eq (table_insert_locked (&r.t, 16 * k + j,
                                             1000000 + 8 * k + j), 0);
  ck_assert_uint_eq (r.t.entries, KEPT_RUNS);
  for (int k = 0; k < 2; k++)
    pthread_create (&th[k], NULL, run_reader, &r);
  for (int round = 0; round < 3; round++) {
    for (uint64_t k = 0; k < KEPT_RUNS; k++) {
      /* Cut chunks 4..7 of the kept run away, from its end, start of
       * the rest or middle, splitting it, then put them back.
       */
      chunk_t base = 16 * k;
      switch ((k + round) % 3) {
      case 0:
        for (int j = 7; j >= 4; j--)
          ck_assert (table_remove_locked (&r.t, base + j));
        break;
      case 1:
        for (int j = 4; j <= 7; j++)
          ck_assert (table_remove_locked (&r.t, base + j));
        break;
      case 2:
        ck_assert (table_remove_locked (&r.t, base + 5));
        ck_assert (table_remove_locked (&r.t, base + 4));
        ck_assert (table_remove_locked (&r.t, base + 7));
        ck_assert (table_remove_locked (&r.t, base + 6));
        break;
      }
      for (int j = 4; j <= 7; j++)
        ck_assert_int_eq (table_insert_locked (&r.t, base + j,
                                               2000000 + 8 * k + j), 0);
      /* And a run of the odd group, which makes the table grow. */
      for (int j = 0; j < 8; j++)
        ck_assert_int_eq (table_insert_locked
                          (&r.t, base + 8 + j,
                           3000000 + round * 200000 + 8 * k + j), 0);
      for (int j = 0; j < 8; j++)
        ck_assert (table_remove_locked (&r.t, base + 8 + (j * 3) % 8));
    }
  }
  atomic_store (&r.done, true);
  for (int k = 0; k < 2; k++)
    pthread_join (th[k], NULL);
  ck_assert_uint_eq (atomic_load (&r.bad), 0);
  for (uint64_t k = 0; k < KEPT_RUNS; k++)
    for (uint64_t j = 0; j < 8; j++) {
      ck_assert (table_lookup (&r.t, 16 * k + j, &nc));
      ck_assert_uint_eq (nc, (j < 4 ? 1000000 : 2000000) + 8 * k + j);
      ck_assert (!table_lookup (&r.t, 16 * k + 8 + j, &nc));
    }
  table_free (&r.t);
}
END_TEST

/* Bulk loading (table_bulk_*): records as a store holds them, appended
 * and laid down at once, must map exactly what inserts in the same
 * order would, take as many entries (a run lengthened only by the next
 * record, as table_entries_for counts), keep probes about as long as
 * those inserts, and leave a table that inserts and removals go on
 * working in.
 */
static uint64_t
next_rand (uint64_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* n records: distinct old chunks below origin_chunks, new chunks 2,
 * 3, ... in order; with run > 1, runs of up to `run` consecutive old
 * chunks (some broken, some in reverse order), else scattered.
 */
static struct core_exception *
bulk_records (uint64_t n, chunk_t origin_chunks, uint64_t run, uint64_t seed)
{
  struct core_exception *v = malloc (n * sizeof *v);
  uint64_t x = seed | 1, i = 0;

  ck_assert_ptr_nonnull (v);
  while (i < n) {
    /* Distinct units of `run` chunks, at scrambled places. */
    uint64_t unit = (i / run * UINT64_C (2654435761) + seed) %
      (origin_chunks / run);
    uint64_t len = run, r = next_rand (&x) % 8;

    if (run > 1 && r == 0)
      len = 1 + next_rand (&x) % run;      /* a shorter run */
    for (uint64_t j = 0; j < run && i < n; j++, i++) {
      /* r == 1: the run backwards, which no entry can lengthen. */
      uint64_t k = run > 1 && r == 1 ? run - 1 - j : j;
      v[i].old_chunk = unit * run + (k < len ? k : k);
      v[i].new_chunk = 2 + i + (k >= len);  /* a break in new chunks */
    }
  }
  return v;
}

static void
bulk_check (uint64_t n, chunk_t origin_chunks, uint64_t run, uint64_t seed)
{
  struct core_exception *v = bulk_records (n, origin_chunks, run, seed);
  struct table_bulk b;
  struct cow_table t, u;
  uint64_t x = seed;
  uint8_t *mapped;
  chunk_t nc;

  /* Sized as a loader does, from the entries the records take. */
  ck_assert_int_eq (table_init (&t, origin_chunks, 2 * n + 16,
                                table_entries_for (v, n)), 0);
  ck_assert_int_eq (table_bulk_begin (&t, &b), 0);
  for (uint64_t i = 0; i < n; i++)
    ck_assert_int_eq (table_bulk_add (&b, v[i].old_chunk, v[i].new_chunk), 0);
  ck_assert_int_eq (table_bulk_end (&b), 0);
  ck_assert_uint_eq (t.count, n);
  ck_assert_uint_eq (t.entries, table_entries_for (v, n));
  /* Laid down in home order, the longest walk is about as long as
   * with inserts in store order (often much shorter: each cluster is
   * in home order), never far longer.
   */
  ck_assert_int_eq (table_init (&u, origin_chunks, 2 * n + 16,
                                table_entries_for (v, n)), 0);
  for (uint64_t i = 0; i < n; i++)
    ck_assert_int_eq (table_insert_locked (&u, v[i].old_chunk,
                                           v[i].new_chunk), 0);
  ck_assert_uint_le (table_max_probe (&t), table_max_probe (&u) + MAX_PROBE);
  table_free (&u);
  for (uint64_t i = 0; i < n; i++) {
    ck_assert (table_lookup (&t, v[i].old_chunk, &nc));
    ck_assert_uint_eq (nc, v[i].new_chunk);
  }
  /* Chunks never added are misses. */
  mapped = calloc (origin_chunks / 8 + 1, 1);
  ck_assert_ptr_nonnull (mapped);
  for (uint64_t i = 0; i < n; i++)
    mapped[v[i].old_chunk / 8] |= 1 << v[i].old_chunk % 8;
  for (uint64_t i = 0; i < 20000; i++) {
    chunk_t c = next_rand (&x) % origin_chunks;

    if (!(mapped[c / 8] >> c % 8 & 1))
      ck_assert (!table_lookup (&t, c, &nc));
  }
  free (mapped);
  /* The table goes on: remove every third record, then put it back
   * elsewhere.
   */
  for (uint64_t i = 0; i < n; i += 3)
    ck_assert (table_remove_locked (&t, v[i].old_chunk));
  for (uint64_t i = 0; i < n; i += 3)
    ck_assert_int_eq (table_insert_locked (&t, v[i].old_chunk,
                                           3 * n + i), 0);
  for (uint64_t i = 0; i < n; i++) {
    ck_assert (table_lookup (&t, v[i].old_chunk, &nc));
    ck_assert_uint_eq (nc, i % 3 == 0 ? 3 * n + i : v[i].new_chunk);
  }
  ck_assert_uint_eq (t.count, n);
  table_free (&t);
  free (v);
}

START_TEST (test_bulk_model)
{
  /* Small tables (1024 slots: entries near the end wrap to the start),
   * then bigger ones, random and in runs.
   */
  for (uint64_t seed = 1; seed <= 40; seed++) {
    bulk_check (800, 5000, 1, seed);
    bulk_check (700, 100000, 1, seed);
    bulk_check (1500, 8000, 8, seed);
    bulk_check (1000, 1u << 20, 5, seed);
  }
  bulk_check (300000, 1u << 24, 1, 7);
  bulk_check (300000, 1u << 24, 1000, 7);
  bulk_check (300000, 400000, 1, 9);       /* dense: many collisions */
}
END_TEST

/* A chunk mapped twice, the same or inside an earlier run: -EEXIST,
 * and the table is empty again.
 */
START_TEST (test_bulk_duplicate)
{
  static const struct { chunk_t old, new_chunk; } cases[][4] = {
    { { 10, 100 }, { 500, 101 }, { 10, 102 }, { 900, 103 } },
    { { 16, 100 }, { 17, 101 }, { 18, 102 }, { 17, 103 } },
    { { 16, 100 }, { 17, 101 }, { 900, 102 }, { 16, 103 } },
    { { 21, 100 }, { 22, 101 }, { 20, 102 }, { 21, 103 } },
  };
  struct table_bulk b;
  struct cow_table t;
  chunk_t nc;

  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    ck_assert_int_eq (table_init (&t, 1000, 1000, 4), 0);
    ck_assert_int_eq (table_bulk_begin (&t, &b), 0);
    for (int i = 0; i < 4; i++)
      ck_assert_int_eq (table_bulk_add (&b, cases[k][i].old,
                                        cases[k][i].new_chunk), 0);
    ck_assert_int_eq (table_bulk_end (&b), -EEXIST);
    ck_assert_uint_eq (t.count, 0);
    ck_assert_uint_eq (t.used, 0);
    for (int i = 0; i < 4; i++)
      ck_assert (!table_lookup (&t, cases[k][i].old, &nc));
    /* A second try, one by one, as the loader's. */
    ck_assert_int_eq (table_insert_locked (&t, 10, 100), 0);
    ck_assert (table_lookup (&t, 10, &nc));
    ck_assert_uint_eq (nc, 100);
    table_free (&t);
  }
  /* In a small, dense table many groups share a home slot with others:
   * a chunk added again is found there too.
   */
  for (uint64_t seed = 1; seed <= 200; seed++) {
    struct core_exception *v = bulk_records (800, 5000, 1, seed);

    ck_assert_int_eq (table_init (&t, 5000, 10000, 801), 0);
    ck_assert_int_eq (table_bulk_begin (&t, &b), 0);
    for (int i = 0; i < 800; i++)
      ck_assert_int_eq (table_bulk_add (&b, v[i].old_chunk,
                                        v[i].new_chunk), 0);
    ck_assert_int_eq (table_bulk_add (&b, v[seed * 7 % 800].old_chunk,
                                      9000), 0);
    ck_assert_int_eq (table_bulk_end (&b), -EEXIST);
    ck_assert_uint_eq (t.count, 0);
    table_free (&t);
    free (v);
  }
}
END_TEST

/* More entries than the array's load: -ENOSPC, but the next chunk of a
 * run still lengthens the last entry; what was added is laid down and
 * the rest inserts one by one, growing the table.
 */
START_TEST (test_bulk_full)
{
  const uint64_t n = 5000;
  struct core_exception *v = bulk_records (n, 1u << 20, 1, 3);
  struct table_bulk b;
  struct cow_table t;
  uint64_t i, added;
  chunk_t nc;
  int r = 0;

  ck_assert_int_eq (table_init (&t, 1u << 20, 1u << 20, 100), 0);
  ck_assert_int_eq (table_bulk_begin (&t, &b), 0);
  for (i = 0; i < n; i++) {
    r = table_bulk_add (&b, v[i].old_chunk, v[i].new_chunk);
    if (r < 0)
      break;
  }
  ck_assert_int_eq (r, -ENOSPC);
  added = i;
  ck_assert_uint_eq (added, b.cap);
  /* A run's next chunk needs no entry (v[added - 1] is alone in its
   * group's first slot only if its chunk is not the group's last).
   */
  if ((v[added - 1].old_chunk & (TABLE_RUN_MAX - 1)) != TABLE_RUN_MAX - 1 &&
      !table_lookup (&t, v[added - 1].old_chunk + 1, &nc)) {
    bool taken = false;
    for (uint64_t j = 0; j < n; j++)
      taken |= v[j].old_chunk == v[added - 1].old_chunk + 1;
    if (!taken) {
      ck_assert_int_eq (table_bulk_add (&b, v[added - 1].old_chunk + 1,
                                        v[added - 1].new_chunk + 1), 0);
      ck_assert_uint_eq (b.n, b.cap);
    }
  }
  ck_assert_int_eq (table_bulk_end (&b), 0);
  for (i = added; i < n; i++)
    ck_assert_int_eq (table_insert_locked (&t, v[i].old_chunk,
                                           v[i].new_chunk), 0);
  for (i = 0; i < n; i++) {
    ck_assert (table_lookup (&t, v[i].old_chunk, &nc));
    ck_assert_uint_eq (nc, v[i].new_chunk);
  }
  table_free (&t);
  free (v);
}
END_TEST

/* Only an empty, packed table loads in bulk. */
START_TEST (test_bulk_refused)
{
  struct table_bulk b;
  struct cow_table t;

  ck_assert_int_eq (table_init (&t, 1000, 1000, 0), 0);
  ck_assert_int_eq (table_insert_locked (&t, 1, 2), 0);
  ck_assert_int_eq (table_bulk_begin (&t, &b), -ENOTSUP);
  table_free (&t);
  ck_assert_int_eq (table_init (&t, UINT64_C (1) << 62,
                                UINT64_C (1) << 62, 0), 0);
  if (t.new_bits == 0)
    ck_assert_int_eq (table_bulk_begin (&t, &b), -ENOTSUP);
  else {
    /* A guessed packing: an entry past it is refused. */
    ck_assert_int_eq (table_bulk_begin (&t, &b), 0);
    ck_assert_int_eq (table_bulk_add (&b, UINT64_C (1) << 61, 2),
                      -EOVERFLOW);
    table_bulk_abort (&b);
  }
  table_free (&t);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("table");
  TCase *tc = tcase_create ("table");

  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_millions_packed);
  tcase_add_test (tc, test_wide);
  tcase_add_test (tc, test_new_chunk_too_big);
  tcase_add_test (tc, test_old_chunk_too_big);
  tcase_add_test (tc, test_lockfree_readers);
  tcase_add_test (tc, test_remove);
  tcase_add_test (tc, test_remove_lockfree_readers);
  tcase_add_test (tc, test_runs_memory);
  tcase_add_test (tc, test_runs_model);
  tcase_add_test (tc, test_runs_lockfree_readers);
  tcase_add_test (tc, test_widen_lockfree_readers);
  tcase_add_test (tc, test_big_origin_packed);
  tcase_add_test (tc, test_bulk_model);
  tcase_add_test (tc, test_bulk_duplicate);
  tcase_add_test (tc, test_bulk_full);
  tcase_add_test (tc, test_bulk_refused);
  tcase_add_loop_test (tc, test_strides_probe_short, 0,
                       sizeof strides / sizeof strides[0]);
  suite_add_tcase (s, tc);
  return run_suite (s);
}
