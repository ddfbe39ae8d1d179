/* test-lib-refuse.c: the store's checks before it trusts a device.
 *
 * A new store (magic 0) is not initialised where the cow backend's
 * probe op finds a signature: cow_store_open, and cow_store_set_writable
 * after a read-only open, fail with -EEXIST and one message, and write
 * nothing; params.overwrite_signatures initialises anyway; an existing
 * store is never probed.  A chunk size that is not a multiple of either
 * backend's logical block size (block_size op) is refused with -EINVAL,
 * the header's chunk size for an existing store, the requested one for
 * a new store.
 *
 * The backends are memory backends wrapped in one whose probe and
 * block_size answer what each test sets.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapcow.h"
#include "test-lib-util.h"

#define COW_SIZE (64 * 4096)

/* A cow_io that passes data ops to inner and answers probe and
 * block_size itself.
 */
struct wrap {
  struct cow_io io;
  struct cow_io *inner;
  int probe_result;             /* 1, 0 or -errno */
  const char *what;
  uint32_t block_size;
  unsigned probes;              /* how many times probe was called */
};

#define W(io) ((struct wrap *) (io))

static int
w_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  return cow_io_pread (W (io)->inner, buf, count, offset);
}

static int
w_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  return cow_io_pwrite (W (io)->inner, buf, count, offset);
}

static int
w_sync (struct cow_io *io)
{
  return cow_io_sync (W (io)->inner);
}

static int
w_get_size (struct cow_io *io, uint64_t *size)
{
  return cow_io_get_size (W (io)->inner, size);
}

static int
w_probe (struct cow_io *io, char *what, size_t len)
{
  W (io)->probes++;
  if (W (io)->probe_result == 1)
    snprintf (what, len, "%s", W (io)->what);
  return W (io)->probe_result;
}

static int
w_block_size (struct cow_io *io, uint32_t *bytes)
{
  *bytes = W (io)->block_size;
  return 0;
}

static void
w_close (struct cow_io *io)
{
  cow_io_close (W (io)->inner);
  free (io);
}

/* A fixed-size device: no grow, punch or extent, so the store writes
 * zeroes and every byte it writes goes through w_pwrite.
 */
static const struct cow_io_ops wrap_ops = {
  .name = "wrap",
  .pread = w_pread,
  .pwrite = w_pwrite,
  .sync = w_sync,
  .get_size = w_get_size,
  .probe = w_probe,
  .block_size = w_block_size,
  .close = w_close,
};

static struct wrap *
wrap_new (struct cow_io *inner, int probe_result, const char *what,
          uint32_t block_size)
{
  struct wrap *w = calloc (1, sizeof *w);

  ck_assert_ptr_nonnull (w);
  ck_assert_ptr_nonnull (inner);
  w->io.ops = &wrap_ops;
  w->inner = inner;
  w->probe_result = probe_result;
  w->what = what;
  w->block_size = block_size;
  return w;
}

/* Bytes that hold no store: zero magic, then a pattern, as a
 * filesystem would look to the store.
 */
static uint8_t *
unformatted (void)
{
  uint8_t *data = malloc (COW_SIZE);

  ck_assert_ptr_nonnull (data);
  pattern_fill (data, COW_SIZE, 7, 0);
  memset (data, 0, 4);
  return data;
}

static void
assert_unchanged (struct wrap *w, const uint8_t *want)
{
  size_t size;
  const uint8_t *got = cow_io_mem_data (w->inner, &size);

  ck_assert_uint_eq (size, COW_SIZE);
  assert_bytes (got, want, COW_SIZE, "the COW device");
}

static const char ext4_msg[] =
  "ext4 filesystem found on the COW device: not initialising a store over "
  "it (wipe it on purpose with wipefs -a, or snapcow create --force)";

START_TEST (test_signature_refused_at_open)
{
  uint8_t *data = unformatted ();
  struct wrap *w = wrap_new (cow_io_mem_new (data, COW_SIZE, false), 1,
                             "ext4 filesystem", 512);
  struct cow_io *origin = origin_new (16 * 4096, 1);
  struct msgs m;
  struct cow_store_params p;
  struct cow_store *s = NULL;

  msgs_init (&m);
  p = params_for (&m, 8);
  ck_assert_int_eq (cow_store_open (&w->io, origin, &p, &s), -EEXIST);
  ck_assert_uint_eq (m.errors, 1);
  ck_assert_str_eq (m.last_error, ext4_msg);
  ck_assert_uint_eq (w->probes, 1);
  assert_unchanged (w, data);

  /* On purpose: initialised without asking. */
  p.overwrite_signatures = true;
  ck_assert_int_eq (cow_store_open (&w->io, origin, &p, &s), 0);
  ck_assert_uint_eq (w->probes, 1);
  ck_assert_int_eq (cow_store_close (s), 0);
  {
    size_t size;
    const uint8_t *d = cow_io_mem_data (w->inner, &size);
    ck_assert_uint_eq (get_le32 (d), COW_SNAP_MAGIC);
    /* Past the header chunk and the first area: untouched. */
    assert_bytes (d + 2 * 4096, data + 2 * 4096, COW_SIZE - 2 * 4096,
                  "past the first area");
  }

  /* Now a store: opened without a probe. */
  p.overwrite_signatures = false;
  ck_assert_int_eq (cow_store_open (&w->io, origin, &p, &s), 0);
  ck_assert_uint_eq (w->probes, 1);
  ck_assert_int_eq (cow_store_close (s), 0);

  cow_io_close (&w->io);
  cow_io_close (origin);
  free (data);
}
END_TEST

START_TEST (test_signature_refused_at_set_writable)
{
  uint8_t *data = unformatted ();
  struct wrap *w = wrap_new (cow_io_mem_new (data, COW_SIZE, false), 1,
                             "dos partition table", 512);
  struct cow_io *origin = origin_new (16 * 4096, 1);
  struct msgs m;
  struct cow_store_params p;
  struct cow_store *s;
  uint8_t buf[100], want[100];

  msgs_init (&m);
  p = params_for (&m, 8);
  p.readonly = true;
  /* Read-only writes nothing, so there is nothing to refuse yet: the
   * origin is served.
   */
  ck_assert_int_eq (cow_store_open (&w->io, origin, &p, &s), 0);
  ck_assert_uint_eq (m.errors, 0);
  ck_assert_int_eq (cow_store_set_writable (s), -EEXIST);
  ck_assert_uint_eq (m.errors, 1);
  ck_assert (strstr (m.last_error, "dos partition table found on the COW "
                     "device: not initialising a store over it") != NULL);
  /* Still read-only, and it asks again next time. */
  ck_assert_int_eq (cow_snapshot_pwrite (s, "x", 1, 0, false), -EROFS);
  ck_assert_int_eq (cow_store_set_writable (s), -EEXIST);
  ck_assert_uint_eq (w->probes, 2);
  ck_assert_int_eq (cow_snapshot_pread (s, buf, sizeof buf, 4000), 0);
  pattern_fill (want, sizeof want, 1, 4000);
  assert_bytes (buf, want, sizeof buf, "the origin");
  ck_assert_int_eq (cow_store_close (s), 0);
  assert_unchanged (w, data);

  cow_io_close (&w->io);
  cow_io_close (origin);
  free (data);
}
END_TEST

START_TEST (test_no_signature_initialised)
{
  uint8_t *data = unformatted ();
  struct wrap *w = wrap_new (cow_io_mem_new (data, COW_SIZE, false), 0,
                             NULL, 512);
  struct cow_io *origin = origin_new (16 * 4096, 1);
  struct msgs m;
  struct cow_store_params p;
  struct cow_store *s;
  size_t size;
  const uint8_t *d;

  msgs_init (&m);
  p = params_for (&m, 8);
  ck_assert_int_eq (cow_store_open (&w->io, origin, &p, &s), 0);
  ck_assert_uint_eq (w->probes, 1);
  ck_assert_int_eq (cow_store_close (s), 0);
  d = cow_io_mem_data (w->inner, &size);
  ck_assert_uint_eq (get_le32 (d), COW_SNAP_MAGIC);

  cow_io_close (&w->io);
  cow_io_close (origin);
  free (data);
}
END_TEST

START_TEST (test_probe_error)
{
  uint8_t *data = unformatted ();
  struct wrap *w = wrap_new (cow_io_mem_new (data, COW_SIZE, false), -EIO,
                             NULL, 512);
  struct msgs m;
  struct cow_store_params p;
  struct cow_store *s;

  msgs_init (&m);
  p = params_for (&m, 8);
  ck_assert_int_eq (cow_store_open (&w->io, NULL, &p, &s), -EIO);
  ck_assert_uint_eq (m.errors, 1);
  ck_assert (strstr (m.last_error, "cannot probe the COW device") != NULL);
  assert_unchanged (w, data);

  cow_io_close (&w->io);
  free (data);
}
END_TEST

/* A 4096-byte-block COW device takes 4K chunks, not 2K ones. */
START_TEST (test_cow_block_size)
{
  struct wrap *w = wrap_new (cow_io_mem_new (NULL, COW_SIZE, false), 0,
                             NULL, 4096);
  struct msgs m;
  struct cow_store_params p;
  struct cow_store *s;
  static const uint8_t zeroes[COW_SIZE];

  msgs_init (&m);
  p = params_for (&m, 4);
  ck_assert_int_eq (cow_store_open (&w->io, NULL, &p, &s), -EINVAL);
  ck_assert_uint_eq (m.errors, 1);
  ck_assert_str_eq (m.last_error, "the COW device has a logical block size "
                    "of 4096 bytes: the chunk size of 2048 bytes is not a "
                    "multiple of it");
  assert_unchanged (w, zeroes);
  p.readonly = true;
  ck_assert_int_eq (cow_store_open (&w->io, NULL, &p, &s), -EINVAL);

  p = params_for (&m, 8);
  ck_assert_int_eq (cow_store_open (&w->io, NULL, &p, &s), 0);
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (&w->io);
}
END_TEST

/* An existing store's own chunk size is what is checked. */
START_TEST (test_existing_store_block_size)
{
  struct image img;
  struct wrap *w;
  struct msgs m;
  struct cow_store_params p;
  struct cow_store *s;

  image_new_valid (&img, COW_SIZE, 4);
  w = wrap_new (cow_io_mem_new (img.data, img.size, false), 1, "unused",
                4096);
  msgs_init (&m);
  p = params_for (&m, 8);
  p.readonly = true;
  ck_assert_int_eq (cow_store_open (&w->io, NULL, &p, &s), -EINVAL);
  ck_assert (strstr (m.last_error, "the chunk size of 2048 bytes is not a "
                     "multiple of it") != NULL);
  ck_assert_uint_eq (w->probes, 0);
  cow_io_close (&w->io);
  image_free (&img);
}
END_TEST

/* A 4096-byte-block origin, and a file store (block_size NULL). */
START_TEST (test_origin_block_size)
{
  struct wrap *o = wrap_new (origin_new (16 * 4096, 3), 0, NULL, 4096);
  struct cow_io *cow = cow_io_mem_new (NULL, COW_SIZE, false);
  struct msgs m;
  struct cow_store_params p;
  struct cow_store *s;
  size_t size;

  msgs_init (&m);
  p = params_for (&m, 4);
  ck_assert_int_eq (cow_store_open (cow, &o->io, &p, &s), -EINVAL);
  ck_assert_str_eq (m.last_error, "the origin has a logical block size of "
                    "4096 bytes: the chunk size of 2048 bytes is not a "
                    "multiple of it");
  ck_assert_uint_eq (get_le32 (cow_io_mem_data (cow, &size)), 0);

  p = params_for (&m, 16);
  ck_assert_int_eq (cow_store_open (cow, &o->io, &p, &s), 0);
  ck_assert_int_eq (cow_store_close (s), 0);
  cow_io_close (cow);
  cow_io_close (&o->io);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("refuse");
  TCase *tc = tcase_create ("refuse");

  tcase_add_test (tc, test_signature_refused_at_open);
  tcase_add_test (tc, test_signature_refused_at_set_writable);
  tcase_add_test (tc, test_no_signature_initialised);
  tcase_add_test (tc, test_probe_error);
  tcase_add_test (tc, test_cow_block_size);
  tcase_add_test (tc, test_existing_store_block_size);
  tcase_add_test (tc, test_origin_block_size);
  suite_add_tcase (s, tc);
  return run_suite (s);
}
