/* table.c: the exception table (see table.h for the design).
 *
 * Memory: 8 bytes a slot (packed), and a table sized for the store on
 * load is up to 4/5 full: from 10 bytes a record for random old chunks,
 * from 1.25 for a sequential writer's runs.  Growing makes an array 2/5
 * full, and the replaced arrays stay until the table is freed (or the
 * load ends), as a lookup may still be reading one.  The kernel's hash
 * of struct dm_exception costs 32 bytes a record, or one per run.
 */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "table.h"

struct table_array {
  struct table_array *next_retired;
  uint64_t slots;
  unsigned new_bits;                /* its layout: table.h, new_bits */
  size_t mapped;                    /* bytes mmapped, or 0: calloc */
  _Atomic uint64_t words[];         /* 1 (packed) or 2 (wide) per slot */
};

/* Arrays from this size are mapped on their own and asked for huge
 * pages: every walk of a big table lands on a random page, and with
 * 4K pages each is a TLB miss as well as a cache miss.
 */
#define HUGE_ARRAY_BYTES (UINT64_C (4) << 20)

#define RUN_MASK ((chunk_t) TABLE_RUN_MAX - 1)
#define MIN_SLOTS 1024
/* The fewest key bits a guessed packed layout may leave (table_init). */
#define MIN_GUESSED_KEY_BITS 24
/* The least number of old slots a migration moves per insert or
 * removal (more where the old array is large for its live entries).
 */
#define MIGRATE_STEP 32
/* Wide mode: the value word's low bits hold new_start + 1. */
#define WIDE_VALUE_BITS (64 - TABLE_RUN_BITS)

/* One entry, decoded.  value is new_start + 1, or 0 for a tombstone. */
struct entry {
  chunk_t start;
  uint64_t len;                     /* 1 .. TABLE_RUN_MAX */
  uint64_t value;
};

static unsigned
bits_for (uint64_t v)
{
  return v == 0 ? 0 : 64 - __builtin_clzll (v);
}

/* A group's base slot must depend on every bit of the group number:
 * old chunks at a power-of-two stride (ext4's block groups) share their
 * low bits and would otherwise pile into one probe run.  So: multiply
 * to carry each bit upwards, fold the high half down with a shift,
 * twice.  The constants are odd (so each step is a bijection): the
 * golden ratio's and the square root of two's fraction bits.  The high
 * bits then pick the slot (a multiply-shift, for any array size).
 */
static uint64_t
hash (uint64_t c)
{
  c ^= c >> 32;
  c *= UINT64_C (0x9e3779b97f4a7c15);
  c ^= c >> 29;
  c *= UINT64_C (0x6a09e667f3bcc909);
  c ^= c >> 32;
  return c;
}

static uint64_t
group_base (const struct table_array *a, chunk_t c)
{
  return (uint64_t) (((unsigned __int128) hash (c >> TABLE_RUN_BITS)
                      * a->slots) >> 64);
}

static uint64_t
next_slot (const struct table_array *a, uint64_t i)
{
  return i + 1 == a->slots ? 0 : i + 1;
}

/* An entry's home: its group's base.  (Spreading a group's entries by
 * their offset in it would only add the offset to every hit's walk: a
 * lookup cannot know where a run holding c starts.)
 */
static uint64_t
home_of (const struct table_array *a, chunk_t start)
{
  return group_base (a, start);
}

/* Read slot i; false if it is empty. */
static bool
slot_get (const struct cow_table *t, struct table_array *a, uint64_t i,
          struct entry *e)
{
  uint64_t key, w;

  if (a->new_bits) {
    w = atomic_load_explicit (&a->words[i], memory_order_acquire);
    key = w >> (a->new_bits + TABLE_RUN_BITS);
    e->len = ((w >> a->new_bits) & RUN_MASK) + 1;
    e->value = w & ((UINT64_C (1) << a->new_bits) - 1);
  }
  else {
    /* The key's acquire pairs with slot_fill's release of it, so the
     * value read after is at least the one it was published with.
     */
    key = atomic_load_explicit (&a->words[2 * i], memory_order_acquire);
    if (key == 0)
      return false;
    w = atomic_load_explicit (&a->words[2 * i + 1], memory_order_acquire);
    e->len = (w >> WIDE_VALUE_BITS) + 1;
    e->value = w & ((UINT64_C (1) << WIDE_VALUE_BITS) - 1);
  }
  e->start = key - 1;
  return key != 0;
}

static uint64_t
packed_word (const struct table_array *a, const struct entry *e)
{
  return (e->start + 1) << (a->new_bits + TABLE_RUN_BITS)
    | (e->len - 1) << a->new_bits | e->value;
}

static uint64_t
wide_value (const struct entry *e)
{
  return (e->len - 1) << WIDE_VALUE_BITS | e->value;
}

/* Publish e in empty slot i. */
static void
slot_fill (const struct cow_table *t, struct table_array *a, uint64_t i,
           const struct entry *e)
{
  if (a->new_bits)
    atomic_store_explicit (&a->words[i], packed_word (a, e),
                           memory_order_release);
  else {
    /* The value first, then the key that makes it visible. */
    atomic_store_explicit (&a->words[2 * i + 1], wide_value (e),
                           memory_order_relaxed);
    atomic_store_explicit (&a->words[2 * i], e->start + 1,
                           memory_order_release);
  }
}

/* Give the entry in slot i (same start) a new length and value: one
 * word either way, so a lookup sees the old entry or the new one.
 */
static void
slot_update (const struct cow_table *t, struct table_array *a, uint64_t i,
             const struct entry *e)
{
  if (a->new_bits)
    atomic_store_explicit (&a->words[i], packed_word (a, e),
                           memory_order_release);
  else
    atomic_store_explicit (&a->words[2 * i + 1], wide_value (e),
                           memory_order_release);
}

/* Walk c's group in a: from its home to the first empty slot.  Returns the slot of the live entry holding c (into *out), or
 * UINT64_MAX.  With key, sets *saw if a slot walked holds an entry or
 * tombstone starting at *key: any such slot lies on the walk, since it
 * went to the first empty slot from its home, and nothing is emptied.
 */
static uint64_t
scan (const struct cow_table *t, struct table_array *a, chunk_t c,
      const chunk_t *key, bool *saw, struct entry *out)
{
  chunk_t group = c >> TABLE_RUN_BITS;
  uint64_t i = group_base (a, c), k;
  struct entry e;

  for (k = 0; k < a->slots; k++, i = next_slot (a, i)) {
    if (!slot_get (t, a, i, &e))
      break;
    if (key && e.start == *key)
      *saw = true;
    if (e.value != 0 && e.start >> TABLE_RUN_BITS == group &&
        e.start <= c && c - e.start < e.len) {
      *out = e;
      return i;
    }
  }
  return UINT64_MAX;
}

/* Is there a slot (entry or tombstone) starting at start? */
static bool
has_key (const struct cow_table *t, struct table_array *a, chunk_t start)
{
  uint64_t i = home_of (a, start);
  struct entry e;

  for (uint64_t k = 0; k < a->slots; k++, i = next_slot (a, i)) {
    if (!slot_get (t, a, i, &e))
      return false;
    if (e.start == start)
      return true;
  }
  return false;
}

/* Put e in the first empty slot from its home; returns the slot.  With
 * dedupe, not where a slot already starts at e->start: UINT64_MAX.
 * There is always an empty slot (make_room).
 */
static uint64_t
array_put (const struct cow_table *t, struct table_array *a,
           const struct entry *e, bool dedupe)
{
  uint64_t i = home_of (a, e->start);
  struct entry x;

  for (;; i = next_slot (a, i)) {
    if (!slot_get (t, a, i, &x)) {
      slot_fill (t, a, i, e);
      return i;
    }
    if (dedupe && x.start == e->start)
      return UINT64_MAX;
  }
}

static struct table_array *
array_new (const struct cow_table *t, uint64_t slots)
{
  size_t words = t->new_bits ? slots : 2 * slots;
  size_t bytes = sizeof (struct table_array) + words * sizeof (uint64_t);
  struct table_array *a;

  if (bytes >= HUGE_ARRAY_BYTES) {
    /* Zero-filled, as calloc would give it. */
    a = mmap (NULL, bytes, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
      return NULL;
    madvise (a, bytes, MADV_HUGEPAGE);     /* a hint: may be refused */
    a->mapped = bytes;
  }
  else {
    a = calloc (1, bytes);
    if (a == NULL)
      return NULL;
  }
  a->slots = slots;
  a->new_bits = t->new_bits;
  return a;
}

static void
array_free (struct table_array *a)
{
  if (a && a->mapped)
    munmap (a, a->mapped);
  else
    free (a);
}

/* Slots for entries at a load of num/den, and a few more so that the
 * rounding of max_used leaves room for them all.
 */
static uint64_t
slots_for (uint64_t entries, uint64_t num, uint64_t den)
{
  uint64_t slots = entries / num * den + (entries % num) * den / num + 8;

  return slots < MIN_SLOTS ? MIN_SLOTS : slots;
}

static uint64_t
max_used (const struct table_array *a)
{
  return a->slots / 5 * 4;
}

/* Move up to n slots of the old array into cur; an entry whose key cur
 * already holds was moved before (by a writer that changed it) and is
 * stale.  Tombstones are left behind.
 */
static void
migrate (struct cow_table *t, uint64_t n)
{
  struct table_array *old = atomic_load_explicit (&t->old,
                                                  memory_order_relaxed);
  struct table_array *cur = atomic_load_explicit (&t->cur,
                                                  memory_order_relaxed);
  struct entry e;

  if (old == NULL)
    return;
  for (; n > 0 && t->migrated < old->slots; n--, t->migrated++)
    if (slot_get (t, old, t->migrated, &e) && e.value != 0 &&
        array_put (t, cur, &e, true) != UINT64_MAX)
      t->used++;
  if (t->migrated == old->slots) {
    atomic_store_explicit (&t->old, NULL, memory_order_release);
    old->next_retired = t->retired;
    t->retired = old;
  }
}

/* A new array for the live entries, 2/5 full: published at once (old
 * first, then cur), filled over the next inserts and removals.
 */
static int
start_migration (struct cow_table *t)
{
  struct table_array *cur = atomic_load_explicit (&t->cur,
                                                  memory_order_relaxed);
  uint64_t slots = slots_for (t->entries + 2, 2, 5), room;
  struct table_array *a = array_new (t, slots);

  if (a == NULL)
    return -ENOMEM;
  atomic_store_explicit (&t->old, cur, memory_order_release);
  atomic_store_explicit (&t->cur, a, memory_order_release);
  t->migrated = 0;
  t->used = 0;
  t->removed = 0;
  /* Finish before cur passes its load, at up to two slots per call. */
  room = max_used (a) > t->entries ? max_used (a) - t->entries : 1;
  t->step = cur->slots / (room / 2 + 1) + MIGRATE_STEP;
  return 0;
}

/* Room in cur for n more slots, below its load. */
static int
make_room (struct cow_table *t, uint64_t n)
{
  struct table_array *cur = atomic_load_explicit (&t->cur,
                                                  memory_order_relaxed);

  if (t->used + n <= max_used (cur))
    return 0;
  if (atomic_load_explicit (&t->old, memory_order_relaxed)) {
    migrate (t, UINT64_MAX);
    if (t->used + n <= max_used (cur))
      return 0;
  }
  return start_migration (t);
}

/* The live entry holding c, for a writer: in cur at *slot, or only in
 * the old array (*slot is then UINT64_MAX).
 */
static bool
find_locked (struct cow_table *t, chunk_t c, struct entry *e,
             uint64_t *slot)
{
  struct table_array *cur = atomic_load_explicit (&t->cur,
                                                  memory_order_relaxed);
  struct table_array *old = atomic_load_explicit (&t->old,
                                                  memory_order_relaxed);

  *slot = scan (t, cur, c, NULL, NULL, e);
  if (*slot != UINT64_MAX)
    return true;
  return old && scan (t, old, c, NULL, NULL, e) != UINT64_MAX &&
    !has_key (t, cur, e->start);
}

/* Can array a hold an entry from start whose values go up to value? */
static bool
fits (const struct table_array *a, chunk_t start, uint64_t value)
{
  return a->new_bits == 0 ||
    ((start + 1) >> (64 - TABLE_RUN_BITS - a->new_bits) == 0 &&
     value >> a->new_bits == 0);
}

/* Make the table wide: from now on new arrays are, starting with one
 * that the current entries migrate into as they would for growing.
 */
static int
widen (struct cow_table *t)
{
  unsigned new_bits = t->new_bits;
  int r;

  migrate (t, UINT64_MAX);
  t->new_bits = 0;
  r = start_migration (t);
  if (r < 0)
    t->new_bits = new_bits;
  return r;
}

int
table_init (struct cow_table *t, chunk_t origin_chunks, chunk_t cow_chunks,
            uint64_t expect)
{
  /* old_chunk + 1 <= origin_chunks must fit in the key bits; at least
   * one.
   */
  unsigned old_bits = bits_for (origin_chunks) ?: 1;
  unsigned need_new;
  struct table_array *a;

  /* A run allocates at most one chunk per origin chunk, plus its areas;
   * leave room for twice that beyond the device as it is now.
   */
  need_new = bits_for (2 * (cow_chunks + origin_chunks + 2 * origin_chunks / 16
                            + 16));
  *t = (struct cow_table) { .new_bits = 0, .step = MIGRATE_STEP };
  if (old_bits + TABLE_RUN_BITS + need_new <= 64) {
    t->new_bits = 64 - TABLE_RUN_BITS - old_bits;
    /* Values are new_chunk + 1: 0 marks a tombstone. */
    t->max_new_chunk = (UINT64_C (1) << t->new_bits) - 2;
    t->max_old_chunk = (UINT64_C (1) << old_bits) - 2;
  }
  else {
    t->max_new_chunk = (UINT64_C (1) << WIDE_VALUE_BITS) - 2;
    t->max_old_chunk = UINT64_MAX - 1;
    /* No packing holds every chunk the bounds allow, but a store's
     * records usually stay far below them: a store opened without its
     * origin, where any old chunk below 2^64 bytes is valid, or a COW
     * device far smaller than a big origin.  Keys as wide as the origin
     * needs, or values for twice the device as it is if that is more,
     * if the keys keep some room; the first entry that does not fit
     * turns the table wide (widen).
     */
    unsigned guess = bits_for (2 * cow_chunks + 16);

    need_new = old_bits + TABLE_RUN_BITS < 64
      ? 64 - TABLE_RUN_BITS - old_bits : 0;
    if (need_new < guess)
      need_new = guess;
    if (need_new + TABLE_RUN_BITS + MIN_GUESSED_KEY_BITS <= 64)
      t->new_bits = need_new;
  }
  a = array_new (t, slots_for (expect, 4, 5));
  if (a == NULL)
    return -ENOMEM;
  atomic_store_explicit (&t->cur, a, memory_order_release);
  return 0;
}

int
table_presize_unshared (struct cow_table *t, uint64_t expect)
{
  struct table_array *cur = atomic_load_explicit (&t->cur,
                                                  memory_order_relaxed);
  uint64_t slots = slots_for (expect, 4, 5);
  struct table_array *a;

  if (t->used > 0 || t->old || slots <= cur->slots)
    return 0;
  a = array_new (t, slots);
  if (a == NULL)
    return -ENOMEM;
  atomic_store_explicit (&t->cur, a, memory_order_release);
  array_free (cur);
  return 0;
}

uint64_t
table_entries_for (const struct core_exception *v, size_t n)
{
  uint64_t entries = 0, len = 0;

  for (size_t k = 0; k < n; k++) {
    if (k > 0 && len < TABLE_RUN_MAX &&
        v[k].old_chunk == v[k - 1].old_chunk + 1 &&
        v[k].new_chunk == v[k - 1].new_chunk + 1 &&
        (v[k].old_chunk & RUN_MASK) != 0)
      len++;
    else {
      entries++;
      len = 1;
    }
  }
  return entries;
}

void
table_release_retired_unshared (struct cow_table *t)
{
  struct table_array *a, *next;

  migrate (t, UINT64_MAX);
  for (a = t->retired; a; a = next) {
    next = a->next_retired;
    array_free (a);
  }
  t->retired = NULL;
}

void
table_free (struct cow_table *t)
{
  table_release_retired_unshared (t);
  array_free (atomic_load (&t->cur));
  t->cur = NULL;
}

bool
table_lookup (const struct cow_table *t, chunk_t old_chunk,
              chunk_t *new_chunk)
{
  struct cow_table *mt = (struct cow_table *) t;
  struct table_array *cur = atomic_load_explicit (&mt->cur,
                                                  memory_order_acquire);
  struct table_array *old = atomic_load_explicit (&mt->old,
                                                  memory_order_acquire);
  struct entry e, o;
  bool in_old, saw = false;

  if (old_chunk > t->max_old_chunk)
    return false;
  if (old == NULL || old == cur) {
    if (scan (t, cur, old_chunk, NULL, NULL, &e) == UINT64_MAX)
      return false;
  }
  else {
    /* The old array first: if cur does not yet hold the entry's newer
     * self, then it did not when the old one was read either.
     */
    in_old = scan (t, old, old_chunk, NULL, NULL, &o) != UINT64_MAX;
    if (scan (t, cur, old_chunk, in_old ? &o.start : NULL, &saw, &e)
        == UINT64_MAX) {
      if (!in_old || saw)
        return false;
      e = o;
    }
  }
  *new_chunk = e.value - 1 + (old_chunk - e.start);
  return true;
}

/* One walk of c's group in cur for an insert: the entry a run ending
 * at c - 1 would lengthen (*run, or UINT64_MAX), and the empty slot
 * where a new entry for c goes (returned).
 */
static uint64_t
scan_insert (const struct cow_table *t, struct table_array *a, chunk_t c,
             uint64_t *run, struct entry *e)
{
  chunk_t group = c >> TABLE_RUN_BITS;
  uint64_t i = group_base (a, c);
  struct entry x;

  *run = UINT64_MAX;
  for (;; i = next_slot (a, i)) {
    if (!slot_get (t, a, i, &x))
      return i;
    if (*run == UINT64_MAX && x.value != 0 &&
        x.start >> TABLE_RUN_BITS == group && x.start + x.len == c) {
      *run = i;
      *e = x;
    }
  }
}

void
table_prefetch (const struct cow_table *t, chunk_t old_chunk)
{
  struct table_array *a =
    atomic_load_explicit (&((struct cow_table *) t)->cur,
                          memory_order_relaxed);
  uint64_t i = group_base (a, old_chunk);

  __builtin_prefetch (&a->words[a->new_bits ? i : 2 * i], 1);
}

int
table_insert_locked (struct cow_table *t, chunk_t old_chunk,
                     chunk_t new_chunk)
{
  struct table_array *cur, *old;
  struct entry e;
  uint64_t i, run;
  int r;

  if (new_chunk > t->max_new_chunk || old_chunk > t->max_old_chunk)
    return -EOVERFLOW;
  /* Every chunk is checked, so that the tails a removal makes of a run
   * fit as the run did.
   */
  if (!fits (atomic_load_explicit (&t->cur, memory_order_relaxed),
             old_chunk, new_chunk + 1)) {
    r = widen (t);
    if (r < 0)
      return r;
  }
  r = make_room (t, 1);
  if (r < 0)
    return r;
  migrate (t, t->step);
  cur = atomic_load_explicit (&t->cur, memory_order_relaxed);
  old = atomic_load_explicit (&t->old, memory_order_relaxed);

  /* The next chunk of a run in old and new chunk alike (a sequential
   * writer's) lengthens the run, within its group.
   */
  i = scan_insert (t, cur, old_chunk, &run, &e);
  if ((old_chunk & RUN_MASK) != 0) {
    if (run != UINT64_MAX) {
      if (e.value - 1 + e.len == new_chunk) {
        e.len++;
        slot_update (t, cur, run, &e);
        t->count++;
        return 0;
      }
    }
    else if (old && find_locked (t, old_chunk - 1, &e, &run) &&
             e.start + e.len == old_chunk &&
             e.value - 1 + e.len == new_chunk) {
      /* Only in the old array: the longer run goes into cur. */
      e.len++;
      array_put (t, cur, &e, false);
      t->used++;
      t->count++;
      return 0;
    }
  }
  e = (struct entry) { .start = old_chunk, .len = 1, .value = new_chunk + 1 };
  slot_fill (t, cur, i, &e);
  t->used++;
  t->entries++;
  t->count++;
  return 0;
}

bool
table_remove_locked (struct cow_table *t, chunk_t old_chunk)
{
  struct table_array *cur;
  struct entry e, tail;
  uint64_t i, off;

  if (old_chunk > t->max_old_chunk)
    return false;
  /* A moved entry and a tail may take two slots.  Without memory for a
   * bigger array the current one goes past its load instead; its last
   * fifth is room for that.
   */
  make_room (t, 2);
  migrate (t, t->step);
  cur = atomic_load_explicit (&t->cur, memory_order_relaxed);
  if (!find_locked (t, old_chunk, &e, &i))
    return false;
  assert (t->used + 2 < cur->slots);
  if (i == UINT64_MAX) {
    /* Only in the old array: changes are made to a copy in cur. */
    i = array_put (t, cur, &e, false);
    t->used++;
  }
  off = old_chunk - e.start;
  if (off + 1 < e.len) {
    /* The chunks after it, under their own entry before the old entry
     * stops covering them.
     */
    tail = (struct entry) {
      .start = old_chunk + 1, .len = e.len - off - 1,
      .value = e.value + off + 1,
    };
    array_put (t, cur, &tail, false);
    t->used++;
    t->entries++;
  }
  if (off == 0) {
    e.value = 0;                /* a tombstone */
    t->entries--;
    t->removed++;
  }
  else
    e.len = off;
  slot_update (t, cur, i, &e);
  t->count--;
  return true;
}

/* Bulk loading (table.h).  The appended entries are packed words in
 * the last n slots of the array, from the last slot down (so that they
 * always end at the array's end, far from where the first buckets'
 * entries are laid down).  A bucket is
 * the top TABLE_BULK_BITS bits of the group's hash, which give the home
 * slot's top bits too (group_base scales the hash), so bucket b's homes
 * lie in [b slots / B, (b + 1) slots / B].
 */
/* Words fetched ahead of each bucket's place in bulk_partition. */
#define BULK_AHEAD 24

static unsigned
bulk_bucket (chunk_t start)
{
  return hash (start >> TABLE_RUN_BITS) >> (64 - TABLE_BULK_BITS);
}

/* The entry of a packed word (never empty here). */
static void
word_entry (const struct table_array *a, uint64_t w, struct entry *e)
{
  e->start = (w >> (a->new_bits + TABLE_RUN_BITS)) - 1;
  e->len = ((w >> a->new_bits) & RUN_MASK) + 1;
  e->value = w & ((UINT64_C (1) << a->new_bits) - 1);
}

static uint64_t
word_load (const struct table_array *a, uint64_t i)
{
  return atomic_load_explicit (&((struct table_array *) a)->words[i],
                               memory_order_relaxed);
}

static void
word_store (struct table_array *a, uint64_t i, uint64_t w)
{
  atomic_store_explicit (&a->words[i], w, memory_order_relaxed);
}

int
table_bulk_begin (struct cow_table *t, struct table_bulk *b)
{
  struct table_array *a = atomic_load_explicit (&t->cur,
                                                memory_order_relaxed);

  if (t->used > 0 || t->count > 0 ||
      atomic_load_explicit (&t->old, memory_order_relaxed) ||
      a->new_bits == 0)
    return -ENOTSUP;
  *b = (struct table_bulk) {
    .t = t, .a = a, .cap = max_used (a), .base = a->slots,
  };
  return 0;
}

int
table_bulk_add (struct table_bulk *b, chunk_t old_chunk, chunk_t new_chunk)
{
  struct table_array *a = b->a;
  struct entry e;

  if (new_chunk > b->t->max_new_chunk || old_chunk > b->t->max_old_chunk ||
      !fits (a, old_chunk, new_chunk + 1))
    return -EOVERFLOW;
  /* The next chunk of the previous record's run, in old and new chunk
   * alike and within its group, lengthens its entry (as an insert
   * would; at most TABLE_RUN_MAX, the group's size).
   */
  if (b->n > 0 && (old_chunk & RUN_MASK) != 0) {
    word_entry (a, word_load (a, b->base), &e);
    if (e.start + e.len == old_chunk && e.value - 1 + e.len == new_chunk) {
      e.len++;
      word_store (a, b->base, packed_word (a, &e));
      b->count++;
      return 0;
    }
  }
  if (b->n == b->cap)
    return -ENOSPC;
  e = (struct entry) { .start = old_chunk, .len = 1, .value = new_chunk + 1 };
  word_store (a, --b->base, packed_word (a, &e));
  b->n++;
  b->count++;
  b->buckets[bulk_bucket (old_chunk)]++;
  return 0;
}

void
table_bulk_abort (struct table_bulk *b)
{
  memset ((void *) b->a->words, 0, b->a->slots * sizeof (uint64_t));
  b->n = b->count = 0;
  b->base = b->a->slots;
  memset (b->buckets, 0, sizeof b->buckets);
}

/* Order the appended entries by bucket, in place: each entry is moved
 * into the next free place of its bucket, and the one it displaces
 * goes on to its own (an "American flag" pass).  end[k] is where
 * bucket k ends.
 */
static void
bulk_partition (struct table_bulk *b, const uint64_t *end)
{
  struct table_array *a = b->a;
  uint64_t next[TABLE_BULK_BUCKETS];
  struct entry e;

  for (unsigned k = 0; k < TABLE_BULK_BUCKETS; k++)
    next[k] = k ? end[k - 1] : 0;
  for (unsigned k = 0; k < TABLE_BULK_BUCKETS; k++)
    while (next[k] < end[k]) {
      uint64_t w = word_load (a, b->base + next[k]), x;
      unsigned j;

      word_entry (a, w, &e);
      while ((j = bulk_bucket (e.start)) != k) {
        /* Each bucket's place moves forwards: fetch its line ahead,
         * as no hardware prefetcher follows 256 streams.
         */
        if (next[j] + BULK_AHEAD < end[j])
          __builtin_prefetch (&a->words[b->base + next[j] + BULK_AHEAD], 1);
        x = word_load (a, b->base + next[j]);
        word_store (a, b->base + next[j]++, w);
        w = x;
        word_entry (a, w, &e);
      }
      word_store (a, b->base + next[k]++, w);
    }
}

static int
compare_words (const void *x, const void *y)
{
  uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;

  return a < b ? -1 : a > b;
}

/* Entries sharing a home slot, p[0..n): does any chunk have two?  Only
 * entries of one group can overlap.  p may be reordered (the order of
 * entries with one home does not matter).
 */
static bool
bulk_overlap (const struct table_array *a, uint64_t *p, uint64_t n)
{
  struct entry x, y;
  unsigned mask = 0, bits;
  uint64_t i;

  /* Mostly all of one group (a random store's groups hold several
   * entries each): the chunks taken, one bit each, at once.
   */
  word_entry (a, p[0], &y);
  for (i = 0; i < n; i++) {
    word_entry (a, p[i], &x);
    if (x.start >> TABLE_RUN_BITS != y.start >> TABLE_RUN_BITS)
      break;
    bits = ((1u << x.len) - 1) << (x.start & RUN_MASK);
    if (mask & bits)
      return true;
    mask |= bits;
  }
  if (i == n)
    return false;
  /* Groups whose homes collide: in order of their start (a packed
   * word's top bits), two entries that overlap include two neighbours
   * that do.
   */
  qsort (p, n, sizeof *p, compare_words);
  for (i = 0; i + 1 < n; i++) {
    word_entry (a, p[i], &x);
    word_entry (a, p[i + 1], &y);
    if (y.start < x.start + x.len)
      return true;
  }
  return false;
}

/* Scratch space of table_bulk_end, grown as needed. */
struct bulk_scratch {
  uint64_t *in, *out, *home;    /* cap entries each */
  uint64_t cap;
  uint64_t *count;              /* ncount homes */
  uint64_t ncount;
  uint64_t *spill;              /* entries past the last slot */
  uint64_t nspill, spill_cap;
};

static int
grow (uint64_t **p, uint64_t *cap, uint64_t want)
{
  uint64_t *q;

  if (want <= *cap)
    return 0;
  /* Buckets are of much the same size: an eighth more than this one. */
  want += want / 8;
  q = realloc (*p, want * sizeof *q);
  if (q == NULL)
    return -ENOMEM;
  *p = q;
  *cap = want;
  return 0;
}

static int
scratch_entries (struct bulk_scratch *sc, uint64_t n)
{
  uint64_t c1 = sc->cap, c2 = sc->cap, c3 = sc->cap;

  if (grow (&sc->in, &c1, n) < 0 || grow (&sc->out, &c2, n) < 0 ||
      grow (&sc->home, &c3, n) < 0)
    return -ENOMEM;
  sc->cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
  return 0;
}

/* Lay down the entries of buckets [k, stop) (their words are in
 * in[0..n), homes from home_lo up to below home_hi): a counting sort by
 * home, then each in the first free slot from its home, *next being
 * the first slot after those laid down so far.
 */
static int
bulk_place (struct table_bulk *b, struct bulk_scratch *sc, uint64_t n,
            uint64_t home_lo, uint64_t home_hi, uint64_t *next)
{
  struct table_array *a = b->a;
  uint64_t range = home_hi - home_lo, i, off, begin, pos;
  struct entry e;

  if (range > sc->ncount) {
    free (sc->count);
    sc->count = malloc (range * sizeof *sc->count);
    if (sc->count == NULL) {
      sc->ncount = 0;
      return -ENOMEM;
    }
    sc->ncount = range;
  }
  memset (sc->count, 0, range * sizeof *sc->count);
  for (i = 0; i < n; i++) {
    word_entry (a, sc->in[i], &e);
    off = home_of (a, e.start) - home_lo;
    assert (off < range);
    sc->home[i] = off;
    sc->count[off]++;
  }
  for (off = 0, begin = 0; off < range; off++) {
    uint64_t c = sc->count[off];
    sc->count[off] = begin;
    begin += c;
  }
  for (i = 0; i < n; i++)
    sc->out[sc->count[sc->home[i]]++] = sc->in[i];
  /* count[off] is now where home off's entries end. */
  for (off = 0, begin = 0; off < range; begin = sc->count[off], off++) {
    uint64_t len = sc->count[off] - begin;

    if (len == 0)
      continue;
    if (len > 1 && bulk_overlap (a, sc->out + begin, len))
      return -EEXIST;
    for (i = begin; i < sc->count[off]; i++) {
      pos = home_lo + off > *next ? home_lo + off : *next;
      if (pos >= a->slots) {
        /* Past the last slot: laid down last, as an insert would. */
        if (grow (&sc->spill, &sc->spill_cap, sc->nspill + 1) < 0)
          return -ENOMEM;
        sc->spill[sc->nspill++] = sc->out[i];
      }
      else
        word_store (a, pos, sc->out[i]);
      *next = pos + 1;
    }
  }
  return 0;
}

int
table_bulk_end (struct table_bulk *b)
{
  struct table_array *a = b->a;
  struct cow_table *t = b->t;
  struct bulk_scratch sc = { .in = NULL };
  uint64_t end[TABLE_BULK_BUCKETS], next = 0, sum = 0, S = a->slots;
  unsigned k, stop;
  int r = 0;

  for (k = 0; k < TABLE_BULK_BUCKETS; k++)
    end[k] = sum += b->buckets[k];
  assert (sum == b->n);
  bulk_partition (b, end);
  for (k = 0; k < TABLE_BULK_BUCKETS && r == 0; k = stop) {
    uint64_t lo = k ? end[k - 1] : 0, hi = end[k], n;
    uint64_t home_lo = (uint64_t) ((unsigned __int128) k * S
                                   >> TABLE_BULK_BITS);
    uint64_t home_hi = (uint64_t) ((unsigned __int128) (k + 1) * S
                                   >> TABLE_BULK_BITS) + 1;
    uint64_t first = next > home_hi ? next : home_hi;

    /* The slots this bucket may take must stay below the next bucket's
     * entries, still to be read; where they might not (near the end of
     * the array, whose last slots hold them), take all the rest now.
     */
    stop = k + 1;
    if (stop < TABLE_BULK_BUCKETS && first + (hi - lo) > b->base + hi) {
      stop = TABLE_BULK_BUCKETS;
      hi = b->n;
    }
    if (stop == TABLE_BULK_BUCKETS)
      home_hi = S;
    if (home_hi > S)
      home_hi = S;
    n = hi - lo;
    if (n == 0)
      continue;
    r = scratch_entries (&sc, n);
    if (r < 0)
      break;
    for (uint64_t i = 0; i < n; i++)
      sc.in[i] = word_load (a, b->base + lo + i);
    memset ((void *) (a->words + b->base + lo), 0, n * sizeof (uint64_t));
    r = bulk_place (b, &sc, n, home_lo, home_hi, &next);
  }
  if (r == 0) {
    t->used = t->entries = b->n;
    t->removed = 0;
    t->count = b->count;
    for (uint64_t i = 0; i < sc.nspill; i++) {
      struct entry e;

      word_entry (a, sc.spill[i], &e);
      array_put (t, a, &e, false);
    }
  }
  else {
    table_bulk_abort (b);
    t->used = t->entries = t->count = t->removed = 0;
  }
  free (sc.in);
  free (sc.out);
  free (sc.home);
  free (sc.count);
  free (sc.spill);
  return r;
}

uint64_t
table_max_probe (const struct cow_table *t)
{
  struct table_array *a = atomic_load_explicit (&((struct cow_table *) t)->cur,
                                                memory_order_relaxed);
  uint64_t max = 0, i, len;
  struct entry e;

  for (i = 0; i < a->slots; i++) {
    if (!slot_get (t, a, i, &e) || e.value == 0)
      continue;
    len = (i + a->slots - home_of (a, e.start)) % a->slots + 1;
    if (len > max)
      max = len;
  }
  return max;
}

static uint64_t
array_bytes (const struct table_array *a)
{
  return sizeof *a + a->slots * (a->new_bits ? 8 : 16);
}

uint64_t
table_memory (const struct cow_table *t)
{
  struct cow_table *mt = (struct cow_table *) t;
  const struct table_array *a;
  uint64_t bytes;

  a = atomic_load_explicit (&mt->cur, memory_order_relaxed);
  bytes = array_bytes (a);
  a = atomic_load_explicit (&mt->old, memory_order_relaxed);
  if (a)
    bytes += array_bytes (a);
  for (a = t->retired; a; a = a->next_retired)
    bytes += array_bytes (a);
  return bytes;
}
