/* table.c: the exception table (see table.h for the design).
 *
 * Memory: at 8 bytes a slot and a load between 3/8 and 3/4, a record
 * costs 11 to 21 bytes, plus at most as much again in retired arrays;
 * the kernel's hash of struct dm_exception costs 32.
 */
#include <config.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "table.h"

struct table_array {
  struct table_array *next_retired;
  uint64_t slots;                   /* a power of two */
  _Atomic uint64_t words[];         /* 1 (packed) or 2 (wide) per slot */
};

#define MIN_SLOTS 1024

static unsigned
bits_for (uint64_t v)
{
  return v == 0 ? 0 : 64 - __builtin_clzll (v);
}

/* The home slot is the hash's low bits (& mask), so every low bit must
 * depend on every bit of the chunk.  A multiply alone does not do that:
 * bit k of a product only sees bits 0..k of the key, and old chunks at
 * a power-of-two stride (ext4's block groups) would share their low
 * bits and pile into one probe run.  So: multiply to carry each bit
 * upwards, fold the high half down with a shift, twice.  The constants
 * are odd (so each step is a bijection and distinct chunks never
 * collide in the full 64 bits): the golden ratio's and the square root
 * of two's fraction bits.
 */
static uint64_t
hash (chunk_t c)
{
  c ^= c >> 32;
  c *= UINT64_C (0x9e3779b97f4a7c15);
  c ^= c >> 29;
  c *= UINT64_C (0x6a09e667f3bcc909);
  c ^= c >> 32;
  return c;
}

static struct table_array *
array_new (const struct cow_table *t, uint64_t slots)
{
  size_t words = t->new_bits ? slots : 2 * slots;
  struct table_array *a;

  a = calloc (1, sizeof *a + words * sizeof (uint64_t));
  if (a == NULL)
    return NULL;
  a->slots = slots;
  return a;
}

static void
array_put (const struct cow_table *t, struct table_array *a,
           chunk_t old_chunk, chunk_t new_chunk)
{
  uint64_t mask = a->slots - 1;
  uint64_t key = old_chunk + 1;
  uint64_t i;

  for (i = hash (old_chunk) & mask;; i = (i + 1) & mask) {
    if (t->new_bits) {
      if (atomic_load_explicit (&a->words[i], memory_order_relaxed) == 0) {
        atomic_store_explicit (&a->words[i],
                               key << t->new_bits | (new_chunk + 1),
                               memory_order_release);
        return;
      }
    }
    else if (atomic_load_explicit (&a->words[2 * i], memory_order_relaxed)
             == 0) {
      /* The value first, then the key that makes it visible. */
      atomic_store_explicit (&a->words[2 * i + 1], new_chunk + 1,
                             memory_order_relaxed);
      atomic_store_explicit (&a->words[2 * i], key, memory_order_release);
      return;
    }
  }
}

int
table_init (struct cow_table *t, chunk_t origin_chunks, chunk_t cow_chunks,
            uint64_t expect)
{
  /* old_chunk + 1 <= origin_chunks must fit in the key bits; at least
   * one, so that a shift by new_bits is always defined.
   */
  unsigned old_bits = bits_for (origin_chunks) ?: 1;
  unsigned need_new;
  uint64_t slots = MIN_SLOTS;
  struct table_array *a;

  /* A run allocates at most one chunk per origin chunk, plus its areas;
   * leave room for twice that beyond the device as it is now.
   */
  need_new = bits_for (2 * (cow_chunks + origin_chunks + 2 * origin_chunks / 16
                            + 16));
  *t = (struct cow_table) { .new_bits = 0 };
  if (old_bits + need_new <= 64) {
    t->new_bits = 64 - old_bits;
    /* Values are new_chunk + 1: 0 marks a tombstone (table.h). */
    t->max_new_chunk = (UINT64_C (1) << t->new_bits) - 2;
    t->max_old_chunk = (UINT64_C (1) << old_bits) - 2;
  }
  else {
    t->max_new_chunk = UINT64_MAX - 1;
    t->max_old_chunk = UINT64_MAX - 1;
  }

  while (slots / 4 * 3 < expect && slots < (UINT64_C (1) << 62))
    slots *= 2;
  a = array_new (t, slots);
  if (a == NULL)
    return -ENOMEM;
  atomic_store_explicit (&t->cur, a, memory_order_release);
  return 0;
}

void
table_release_retired_unshared (struct cow_table *t)
{
  struct table_array *a, *next;

  for (a = t->retired; a; a = next) {
    next = a->next_retired;
    free (a);
  }
  t->retired = NULL;
}

void
table_free (struct cow_table *t)
{
  table_release_retired_unshared (t);
  free (atomic_load (&t->cur));
  t->cur = NULL;
}

bool
table_lookup (const struct cow_table *t, chunk_t old_chunk,
              chunk_t *new_chunk)
{
  const struct table_array *a =
    atomic_load_explicit (&((struct cow_table *) t)->cur,
                          memory_order_acquire);
  uint64_t mask = a->slots - 1;
  uint64_t key = old_chunk + 1;
  uint64_t i, w, v;

  /* A tombstone of this key (value 0) does not end the walk: the key
   * may have been inserted again further on.
   */
  for (i = hash (old_chunk) & mask;; i = (i + 1) & mask) {
    if (t->new_bits) {
      w = atomic_load_explicit (&((struct table_array *) a)->words[i],
                                memory_order_acquire);
      if (w == 0)
        return false;
      v = w & (((uint64_t) 1 << t->new_bits) - 1);
      if (w >> t->new_bits == key && v != 0) {
        *new_chunk = v - 1;
        return true;
      }
    }
    else {
      w = atomic_load_explicit (&((struct table_array *) a)->words[2 * i],
                                memory_order_acquire);
      if (w == 0)
        return false;
      if (w == key) {
        v = atomic_load_explicit
          (&((struct table_array *) a)->words[2 * i + 1],
           memory_order_relaxed);
        if (v != 0) {
          *new_chunk = v - 1;
          return true;
        }
      }
    }
  }
}

/* Rebuild the array without its tombstones: build the new one aside,
 * publish it, retire the old one (lookups may still be walking it).
 * Double it unless tombstones were most of the load.
 */
static int
grow_locked (struct cow_table *t)
{
  struct table_array *old = atomic_load_explicit (&t->cur,
                                                  memory_order_relaxed);
  uint64_t slots = old->slots;
  struct table_array *a;
  uint64_t i;

  if (t->count + 1 > slots / 8 * 3)
    slots *= 2;
  a = array_new (t, slots);
  if (a == NULL)
    return -ENOMEM;
  for (i = 0; i < old->slots; i++) {
    uint64_t w, key, value;
    if (t->new_bits) {
      w = atomic_load_explicit (&old->words[i], memory_order_relaxed);
      key = w >> t->new_bits;
      value = w & (((uint64_t) 1 << t->new_bits) - 1);
    }
    else {
      key = atomic_load_explicit (&old->words[2 * i], memory_order_relaxed);
      value = atomic_load_explicit (&old->words[2 * i + 1],
                                    memory_order_relaxed);
    }
    if (key == 0 || value == 0)
      continue;
    array_put (t, a, key - 1, value - 1);
  }
  atomic_store_explicit (&t->cur, a, memory_order_release);
  old->next_retired = t->retired;
  t->retired = old;
  t->removed = 0;
  return 0;
}

int
table_insert_locked (struct cow_table *t, chunk_t old_chunk,
                     chunk_t new_chunk)
{
  struct table_array *a = atomic_load_explicit (&t->cur,
                                                memory_order_relaxed);
  int r;

  if (new_chunk > t->max_new_chunk || old_chunk > t->max_old_chunk)
    return -EOVERFLOW;
  if (t->count + t->removed + 1 > a->slots / 4 * 3) {
    r = grow_locked (t);
    if (r < 0)
      return r;
    a = atomic_load_explicit (&t->cur, memory_order_relaxed);
  }
  array_put (t, a, old_chunk, new_chunk);
  t->count++;
  return 0;
}

bool
table_remove_locked (struct cow_table *t, chunk_t old_chunk)
{
  struct table_array *a = atomic_load_explicit (&t->cur,
                                                memory_order_relaxed);
  uint64_t mask = a->slots - 1;
  uint64_t key = old_chunk + 1;
  uint64_t i, w;

  if (old_chunk > t->max_old_chunk)
    return false;
  for (i = hash (old_chunk) & mask;; i = (i + 1) & mask) {
    if (t->new_bits) {
      w = atomic_load_explicit (&a->words[i], memory_order_relaxed);
      if (w == 0)
        return false;
      if (w >> t->new_bits == key &&
          (w & (((uint64_t) 1 << t->new_bits) - 1)) != 0) {
        atomic_store_explicit (&a->words[i], key << t->new_bits,
                               memory_order_release);
        break;
      }
    }
    else {
      w = atomic_load_explicit (&a->words[2 * i], memory_order_relaxed);
      if (w == 0)
        return false;
      if (w == key &&
          atomic_load_explicit (&a->words[2 * i + 1],
                                memory_order_relaxed) != 0) {
        atomic_store_explicit (&a->words[2 * i + 1], 0,
                               memory_order_release);
        break;
      }
    }
  }
  t->count--;
  t->removed++;
  return true;
}

uint64_t
table_max_probe (const struct cow_table *t)
{
  const struct table_array *a =
    atomic_load_explicit (&((struct cow_table *) t)->cur,
                          memory_order_relaxed);
  uint64_t mask = a->slots - 1, max = 0, i, key, len;

  for (i = 0; i < a->slots; i++) {
    uint64_t value;

    if (t->new_bits) {
      uint64_t w = atomic_load_explicit (&((struct table_array *) a)->words[i],
                                         memory_order_relaxed);
      key = w >> t->new_bits;
      value = w & (((uint64_t) 1 << t->new_bits) - 1);
    }
    else {
      key = atomic_load_explicit (&((struct table_array *) a)->words[2 * i],
                                  memory_order_relaxed);
      value = atomic_load_explicit
        (&((struct table_array *) a)->words[2 * i + 1], memory_order_relaxed);
    }
    if (key == 0 || value == 0)
      continue;
    /* Slots looked at by a lookup of this key, from its home slot. */
    len = ((i - hash (key - 1)) & mask) + 1;
    if (len > max)
      max = len;
  }
  return max;
}

uint64_t
table_memory (const struct cow_table *t)
{
  const struct table_array *a;
  uint64_t per = t->new_bits ? 8 : 16, bytes;

  a = atomic_load_explicit (&((struct cow_table *) t)->cur,
                            memory_order_relaxed);
  bytes = sizeof *a + a->slots * per;
  for (a = t->retired; a; a = a->next_retired)
    bytes += sizeof *a + a->slots * per;
  return bytes;
}
