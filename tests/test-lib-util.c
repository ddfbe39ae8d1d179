/* test-lib-util.c: helpers shared by the Check tests of lib/ (see
 * test-lib-util.h).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "test-lib-util.h"

void
msgs_init (struct msgs *m)
{
  memset (m, 0, sizeof *m);
  pthread_mutex_init (&m->lock, NULL);
}

void
msgs_fn (void *opaque, enum cow_msg_level level, const char *msg)
{
  struct msgs *m = opaque;

  pthread_mutex_lock (&m->lock);
  if (level == COW_MSG_ERROR) {
    m->errors++;
    snprintf (m->last_error, sizeof m->last_error, "%s", msg);
  }
  else if (level == COW_MSG_WARNING) {
    m->warnings++;
    snprintf (m->last_warning, sizeof m->last_warning, "%s", msg);
  }
  pthread_mutex_unlock (&m->lock);
}

struct cow_store_params
params_for (struct msgs *m, uint32_t chunk_sectors)
{
  struct cow_store_params p = {
    .chunk_sectors = chunk_sectors,
    .message = msgs_fn,
    .message_opaque = m,
  };
  return p;
}

void
put_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = v >> (8 * i);
}

void
put_le64 (uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = v >> (8 * i);
}

uint32_t
get_le32 (const uint8_t *p)
{
  uint32_t v = 0;

  for (int i = 3; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

uint64_t
get_le64 (const uint8_t *p)
{
  uint64_t v = 0;

  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

void
image_new (struct image *img, size_t size, uint32_t chunk_sectors,
           uint32_t magic, uint32_t valid, uint32_t version,
           uint32_t chunk_field)
{
  img->data = calloc (1, size ? size : 1);
  ck_assert_ptr_nonnull (img->data);
  img->size = size;
  img->chunk_sectors = chunk_sectors;
  if (size >= 16) {
    put_le32 (img->data, magic);
    put_le32 (img->data + 4, valid);
    put_le32 (img->data + 8, version);
    put_le32 (img->data + 12, chunk_field);
  }
}

void
image_new_valid (struct image *img, size_t size, uint32_t chunk_sectors)
{
  image_new (img, size, chunk_sectors, 0x70416e53, 1, 1, chunk_sectors);
}

void
image_put_record (struct image *img, uint64_t index, uint64_t old_chunk,
                  uint64_t new_chunk)
{
  uint64_t E = t_per_area (img->chunk_sectors);
  uint64_t area = index / E, slot = index % E;
  uint64_t at = t_area_chunk (img->chunk_sectors, area)
    * t_chunk_bytes (img->chunk_sectors) + slot * 16;

  ck_assert_uint_le (at + 16, img->size);
  put_le64 (img->data + at, old_chunk);
  put_le64 (img->data + at + 8, new_chunk);
}

void
image_free (struct image *img)
{
  free (img->data);
  img->data = NULL;
}

uint8_t
pattern_byte (uint32_t seed, uint64_t offset)
{
  uint64_t x = (offset + 1) * UINT64_C (0x9e3779b97f4a7c15) + seed * 7919u;

  x ^= x >> 31;
  x *= UINT64_C (0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  return x;
}

void
pattern_fill (void *buf, size_t count, uint32_t seed, uint64_t offset)
{
  uint8_t *p = buf;

  for (size_t i = 0; i < count; i++)
    p[i] = pattern_byte (seed, offset + i);
}

struct cow_io *
origin_new (size_t size, uint32_t seed)
{
  uint8_t *buf = malloc (size);
  struct cow_io *io;

  ck_assert_ptr_nonnull (buf);
  pattern_fill (buf, size, seed, 0);
  io = cow_io_mem_new (buf, size, false);
  free (buf);
  ck_assert_ptr_nonnull (io);
  return io;
}

void
assert_bytes (const void *got, const void *want, size_t count,
              const char *what)
{
  const uint8_t *g = got, *w = want;

  for (size_t i = 0; i < count; i++)
    if (g[i] != w[i])
      ck_abort_msg ("%s: byte %zu is 0x%02x, expected 0x%02x",
                    what, i, g[i], w[i]);
}

int
run_suite (Suite *s)
{
  SRunner *sr = srunner_create (s);
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
