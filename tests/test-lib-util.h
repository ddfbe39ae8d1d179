/* test-lib-util.h: helpers shared by the Check tests of lib/: a message
 * catcher for params.message, little-endian encoders written from
 * cow-format.md (independent of lib/format.c), a hand-built store image,
 * and byte patterns.
 */
#ifndef TEST_LIB_UTIL_H
#define TEST_LIB_UTIL_H

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "snapcow.h"
#include "io-mem.h"

/* Run a suite; the process's exit status. */
extern int run_suite (Suite *s);

/* Collects the messages handed to params.message. */
struct msgs {
  pthread_mutex_t lock;
  unsigned errors, warnings;
  char last_error[512];
  char last_warning[512];
};

extern void msgs_init (struct msgs *m);
extern void msgs_fn (void *opaque, enum cow_msg_level level, const char *msg);
/* Params for a store that reports into m. */
extern struct cow_store_params params_for (struct msgs *m,
                                           uint32_t chunk_sectors);

/* Little-endian, byte by byte. */
extern void put_le32 (uint8_t *p, uint32_t v);
extern void put_le64 (uint8_t *p, uint64_t v);
extern uint32_t get_le32 (const uint8_t *p);
extern uint64_t get_le64 (const uint8_t *p);

/* Geometry, from cow-format.md. */
static inline uint64_t
t_chunk_bytes (uint32_t chunk_sectors)
{
  return (uint64_t) chunk_sectors * 512;
}

static inline uint32_t
t_per_area (uint32_t chunk_sectors)
{
  return chunk_sectors * 512 / 16;
}

static inline uint64_t
t_area_chunk (uint32_t chunk_sectors, uint64_t area)
{
  return 1 + area * ((uint64_t) t_per_area (chunk_sectors) + 1);
}

/* The i-th data chunk (0-based) in allocation order. */
static inline uint64_t
t_data_chunk (uint32_t chunk_sectors, uint64_t i)
{
  uint64_t E = t_per_area (chunk_sectors);

  return 2 + i + i / E;
}

/* A store image in memory, built by hand. */
struct image {
  uint8_t *data;
  size_t size;
  uint32_t chunk_sectors;
};

/* size bytes of zeroes with a header (magic, valid, version, chunk). */
extern void image_new (struct image *img, size_t size, uint32_t chunk_sectors,
                       uint32_t magic, uint32_t valid, uint32_t version,
                       uint32_t chunk_field);
/* The usual valid version-1 header. */
extern void image_new_valid (struct image *img, size_t size,
                             uint32_t chunk_sectors);
/* Write record `index` (over all areas: area index / E, slot index % E). */
extern void image_put_record (struct image *img, uint64_t index,
                              uint64_t old_chunk, uint64_t new_chunk);
extern void image_free (struct image *img);

/* Deterministic bytes: pattern (seed, offset) is the same whoever asks. */
extern uint8_t pattern_byte (uint32_t seed, uint64_t offset);
extern void pattern_fill (void *buf, size_t count, uint32_t seed,
                          uint64_t offset);

/* A mem backend holding an origin of size bytes of pattern seed. */
extern struct cow_io *origin_new (size_t size, uint32_t seed);

/* Compare and name the first difference. */
extern void assert_bytes (const void *got, const void *want, size_t count,
                          const char *what);

#endif /* TEST_LIB_UTIL_H */
