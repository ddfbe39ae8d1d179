/* test-lib-format.c: the geometry helpers of lib/format.h at and around
 * every area boundary (4K, 16K and 64K chunks), the exact little-endian
 * bytes of the header and exception encoders and decoders, and
 * cow_check_chunk_sectors.  Expected values come from cow-format.md.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "format.h"
#include "test-lib-util.h"

static const uint32_t sizes[] = { 8, 32, 128 };     /* 4K, 16K, 64K */
static const uint32_t per_area[] = { 256, 1024, 4096 };

/* Is chunk an area or the header?  By search, not by modulo. */
static bool
model_is_metadata (uint64_t E, uint64_t chunk)
{
  if (chunk == 0)
    return true;
  if (chunk < 1)
    return false;
  return (chunk - 1) % (E + 1) == 0;
}

START_TEST (test_exceptions_per_area)
{
  ck_assert_uint_eq (cow_exceptions_per_area (sizes[_i]), per_area[_i]);
  ck_assert_uint_eq (cow_exceptions_per_area (1), 32);
  ck_assert_uint_eq (cow_exceptions_per_area (2048), 65536);
}
END_TEST

/* Areas 0..7 and far ones: the location and every chunk around it. */
START_TEST (test_area_boundaries)
{
  const uint32_t E = per_area[_i];
  const uint64_t areas[] = { 0, 1, 2, 3, 4, 5, 6, 7, 1000, 123456789,
                             UINT64_C (1) << 40 };

  for (size_t k = 0; k < sizeof areas / sizeof areas[0]; k++) {
    uint64_t a = areas[k];
    uint64_t loc = 1 + a * ((uint64_t) E + 1);

    ck_assert_uint_eq (cow_area_location (E, a), loc);
    /* The area itself. */
    ck_assert (cow_is_metadata_chunk (E, loc));
    ck_assert_uint_eq (cow_skip_metadata (E, loc), loc + 1);
    /* The chunk before: the header for area 0, else the last data
     * chunk of the previous area.
     */
    ck_assert (cow_is_metadata_chunk (E, loc - 1) == (a == 0));
    if (a > 0)
      ck_assert_uint_eq (cow_skip_metadata (E, loc - 1), loc - 1);
    /* The first data chunks after it. */
    for (uint64_t d = 1; d <= 3; d++) {
      ck_assert (!cow_is_metadata_chunk (E, loc + d));
      ck_assert_uint_eq (cow_skip_metadata (E, loc + d), loc + d);
    }
    /* The last data chunks of the area and the next area. */
    for (uint64_t d = E - 2; d <= E; d++) {
      ck_assert (!cow_is_metadata_chunk (E, loc + d));
      ck_assert_uint_eq (cow_skip_metadata (E, loc + d), loc + d);
    }
    ck_assert (cow_is_metadata_chunk (E, loc + E + 1));
    ck_assert_uint_eq (cow_area_location (E, a + 1), loc + E + 1);
    ck_assert_uint_eq (cow_skip_metadata (E, loc + E + 1), loc + E + 2);
  }
}
END_TEST

/* Every chunk of the first seven areas against the model. */
START_TEST (test_metadata_walk)
{
  const uint32_t E = per_area[_i];
  uint64_t area = 0;

  for (uint64_t c = 0; c < 6 * ((uint64_t) E + 1) + 2; c++) {
    bool m = model_is_metadata (E, c);

    ck_assert_msg (cow_is_metadata_chunk (E, c) == m,
                   "E=%u chunk %" PRIu64, E, c);
    ck_assert_uint_eq (cow_skip_metadata (E, c), c > 0 && m ? c + 1 : c);
    if (c > 0 && m) {
      ck_assert_uint_eq (cow_area_location (E, area), c);
      area++;
    }
  }
  ck_assert_uint_eq (area, 7);         /* areas 0..6 */
}
END_TEST

/* Allocation as in cow-format.md: start at 2, move on by one, step
 * over areas.  The k-th chunk handed out is 2 + k + k / E.
 */
START_TEST (test_allocation_sequence)
{
  const uint32_t E = per_area[_i];
  uint64_t next = 2;

  for (uint64_t k = 0; k < 5 * (uint64_t) E + 3; k++) {
    ck_assert_uint_eq (next, 2 + k + k / E);
    ck_assert (!cow_is_metadata_chunk (E, next));
    next = cow_skip_metadata (E, next + 1);
  }
}
END_TEST

START_TEST (test_encode_header)
{
  uint8_t buf[32];
  struct core_header h = { .magic = COW_SNAP_MAGIC, .valid = 1,
                           .version = 1, .chunk_sectors = 32 };
  const uint8_t want[16] = {
    'S', 'n', 'A', 'p', 1, 0, 0, 0, 1, 0, 0, 0, 32, 0, 0, 0,
  };
  struct core_header d;

  memset (buf, 0xaa, sizeof buf);
  cow_encode_header (buf, &h);
  assert_bytes (buf, want, 16, "header");
  for (int i = 16; i < 32; i++)
    ck_assert_uint_eq (buf[i], 0xaa);

  /* Distinct bytes in every field. */
  h = (struct core_header) { 0x04030201, 0x08070605, 0x0c0b0a09,
                             0x100f0e0d };
  cow_encode_header (buf, &h);
  for (int i = 0; i < 16; i++)
    ck_assert_uint_eq (buf[i], i + 1);

  /* Decode from an unaligned buffer. */
  memset (buf, 0, sizeof buf);
  buf[1] = 'S'; buf[2] = 'n'; buf[3] = 'A'; buf[4] = 'p';
  buf[5] = 0; buf[9] = 1; buf[13] = 0x00; buf[14] = 0x08;
  cow_decode_header (buf + 1, &d);
  ck_assert_uint_eq (d.magic, 0x70416e53);
  ck_assert_uint_eq (d.valid, 0);
  ck_assert_uint_eq (d.version, 1);
  ck_assert_uint_eq (d.chunk_sectors, 0x800);
}
END_TEST

START_TEST (test_encode_exception)
{
  const uint32_t E = 256;
  uint8_t *area = malloc (4096 + 1);
  struct core_exception e = { UINT64_C (0x0807060504030201),
                              UINT64_C (0x100f0e0d0c0b0a09) };
  struct core_exception d;

  ck_assert_ptr_nonnull (area);
  memset (area, 0xaa, 4096 + 1);
  cow_encode_exception (area, 0, &e);
  for (int i = 0; i < 16; i++)
    ck_assert_uint_eq (area[i], i + 1);
  ck_assert_uint_eq (area[16], 0xaa);

  /* The last slot of the area: bytes 4080..4095, nothing after. */
  e = (struct core_exception) { 7, 258 };
  cow_encode_exception (area, E - 1, &e);
  ck_assert_uint_eq (area[4079], 0xaa);
  ck_assert_uint_eq (area[4080], 7);
  for (int i = 4081; i < 4088; i++)
    ck_assert_uint_eq (area[i], 0);
  ck_assert_uint_eq (area[4088], 2);
  ck_assert_uint_eq (area[4089], 1);
  for (int i = 4090; i < 4096; i++)
    ck_assert_uint_eq (area[i], 0);
  ck_assert_uint_eq (area[4096], 0xaa);

  /* Decode what we wrote by hand, at slot 3 of an unaligned area. */
  put_le64 (area + 1 + 3 * 16, UINT64_C (0xfedcba9876543210));
  put_le64 (area + 1 + 3 * 16 + 8, 42);
  cow_decode_exception (area + 1, 3, &d);
  ck_assert_uint_eq (d.old_chunk, UINT64_C (0xfedcba9876543210));
  ck_assert_uint_eq (d.new_chunk, 42);
  cow_decode_exception (area, 0, &d);
  ck_assert_uint_eq (d.old_chunk, UINT64_C (0x0807060504030201));
  ck_assert_uint_eq (d.new_chunk, UINT64_C (0x100f0e0d0c0b0a09));
  free (area);
}
END_TEST

static void
check_chunk (uint64_t sectors, int want, const char *why_part)
{
  const char *why = NULL;
  int r = cow_check_chunk_sectors (sectors, &why);

  ck_assert_msg (r == want, "chunk_sectors %" PRIu64 ": %d, expected %d",
                 sectors, r, want);
  if (want < 0) {
    ck_assert_ptr_nonnull (why);
    ck_assert_msg (strstr (why, why_part) != NULL,
                   "chunk_sectors %" PRIu64 ": \"%s\" lacks \"%s\"",
                   sectors, why, why_part);
  }
}

START_TEST (test_check_chunk_sectors)
{
  check_chunk (0, -EINVAL, "zero");
  check_chunk (3, -EINVAL, "power of two");
  check_chunk (6, -EINVAL, "power of two");
  check_chunk (24, -EINVAL, "power of two");
  check_chunk (2047, -EINVAL, "power of two");
  check_chunk (2049, -EINVAL, "power of two");
  check_chunk (1, 0, NULL);
  check_chunk (2, 0, NULL);
  check_chunk (8, 0, NULL);
  check_chunk (32, 0, NULL);
  check_chunk (128, 0, NULL);
  check_chunk (1024, 0, NULL);
  check_chunk (2048, 0, NULL);          /* 1 MiB, snapcow's cap */
  check_chunk (4096, -EINVAL, "snapcow");
  check_chunk (1u << 21, -EINVAL, "snapcow");
  check_chunk (1u << 22, -EINVAL, "kernel");
  check_chunk (UINT64_C (1) << 40, -EINVAL, "kernel");
}
END_TEST

static Suite *
format_suite (void)
{
  Suite *s = suite_create ("format");
  TCase *tc = tcase_create ("geometry");

  tcase_add_loop_test (tc, test_exceptions_per_area, 0, 3);
  tcase_add_loop_test (tc, test_area_boundaries, 0, 3);
  tcase_add_loop_test (tc, test_metadata_walk, 0, 3);
  tcase_add_loop_test (tc, test_allocation_sequence, 0, 3);
  suite_add_tcase (s, tc);

  tc = tcase_create ("encoding");
  tcase_add_test (tc, test_encode_header);
  tcase_add_test (tc, test_encode_exception);
  tcase_add_test (tc, test_check_chunk_sectors);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return run_suite (format_suite ());
}
