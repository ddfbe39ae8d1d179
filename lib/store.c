/* store.c: open a store (read the header, initialise a new one, or
 * validate an existing one and load it), close, invalidate, and the
 * message helpers.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record-rules.h"
#include "store-internal.h"

/* One message, "NAME: text" where name is not NULL: the caller's
 * callback hands the line on at once, so it can live on the stack.
 */
const char *
cow_strerror (int err)
{
  const char *desc = strerrordesc_np (err);

  return desc ? desc : "Unknown error";
}

static void
vmessage (const struct cow_store *s, enum cow_msg_level level,
          const char *name, const char *fs, va_list args)
{
  char msg[512];
  char line[PATH_MAX + sizeof msg];

  if (s->message == NULL)
    return;
  vsnprintf (msg, sizeof msg, fs, args);
  if (name == NULL) {
    s->message (s->message_opaque, level, msg);
    return;
  }
  snprintf (line, sizeof line, "%s: %s", name, msg);
  s->message (s->message_opaque, level, line);
}

void
store_message (const struct cow_store *s, enum cow_msg_level level,
               const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  vmessage (s, level, s->cow_name, fs, args);
  va_end (args);
}

int
store_error (const struct cow_store *s, int err, const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  vmessage (s, COW_MSG_ERROR, s->cow_name, fs, args);
  va_end (args);
  return -err;
}

/* An error about the origin, not the store: "cannot read the origin"
 * names the origin, so the user looks at the right file or server.
 */
int
origin_error (const struct cow_store *s, int err, const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  vmessage (s, COW_MSG_ERROR, s->origin_name, fs, args);
  va_end (args);
  return -err;
}

int
store_check_range (const struct cow_store *s, uint64_t count,
                   uint64_t offset)
{
  if (offset > s->origin_size || count > s->origin_size - offset)
    return store_error (s, EINVAL, "request of %" PRIu64 " bytes at %"
                        PRIu64 " is past the end of the snapshot (%" PRIu64
                        " bytes)", count, offset, s->origin_size);
  return 0;
}

int
store_io_error (const struct cow_store *s, int r, const char *what,
                const struct cow_io *io, uint64_t offset)
{
  /* A failed origin read is the origin's fault: name it, not the
   * store.  This is the only message for the request; the origin's
   * backend reports nothing at error level itself.
   */
  if (io == s->origin)
    return origin_error (s, -r, "%s the origin at offset %" PRIu64 ": %s",
                         what, offset, cow_strerror (-r));
  return store_error (s, -r, "%s the COW store at offset %" PRIu64 ": %s",
                      what, offset, cow_strerror (-r));
}

/* Write chunk 0 as a header followed by zeroes, then sync. */
static int
write_header (struct cow_store *s, uint32_t valid)
{
  struct core_header h = {
    .magic = COW_SNAP_MAGIC, .valid = valid, .version = COW_DISK_VERSION,
    .chunk_sectors = s->chunk_sectors,
  };
  uint8_t *buf = calloc (1, s->chunk_bytes);
  int r;

  if (buf == NULL)
    return store_error (s, ENOMEM, "out of memory");
  cow_encode_header (buf, &h);
  r = cow_io_pwrite (s->cow, buf, s->chunk_bytes, 0);
  free (buf);
  if (r == 0)
    r = cow_io_sync (s->cow);
  if (r < 0)
    return store_error (s, -r, "cannot write the store's header: %s",
                        cow_strerror (-r));
  return 0;
}

/* The kernel takes magic 0 as "new" whatever follows, so a mistyped
 * cow= or snapcow create would ruin a filesystem whose first four bytes
 * happen to be zero (ext4, a partition table, swap, LVM all are).  Ask
 * the backend's probe first; bytes with no known signature are stale
 * garbage and are initialised, as the kernel would.
 */
static int
refuse_signature (struct cow_store *s)
{
  char what[128];
  int r;

  if (s->overwrite_signatures || s->cow->ops->probe == NULL)
    return 0;
  r = s->cow->ops->probe (s->cow, what, sizeof what);
  if (r < 0)
    return store_error (s, -r, "cannot probe the COW device for a "
                        "filesystem or other signature: %s",
                        cow_strerror (-r));
  if (r > 0)
    return store_error (s, EEXIST, "%s found on the COW device: not "
                        "initialising a store over it (wipe it on purpose "
                        "with wipefs -a, or snapcow create --force)", what);
  return 0;
}

/* A new store (cow-format.md, "Header"): zero area 0 and make that
 * stable before the header says the store exists, so no crash leaves a
 * header over an area of old garbage.
 */
static int
format_new (struct cow_store *s)
{
  int r;

  r = refuse_signature (s);
  if (r < 0)
    return r;
  if (s->dev_size < 2 * s->chunk_bytes) {
    if (!s->can_grow)
      return store_error (s, ENOSPC,
                          "the COW device is too small: %" PRIu64 " bytes, "
                          "a store needs at least two chunks (%" PRIu64
                          " bytes) for its header and first area",
                          s->dev_size, 2 * s->chunk_bytes);
    r = store_grow_for (s, 2);
    if (r < 0)
      return r;
  }
  r = cow_io_pwrite (s->cow, s->area, s->chunk_bytes,
                     chunk_offset (s, cow_area_location (s->exceptions_per_area,
                                                         0)));
  if (r == 0)
    r = cow_io_sync (s->cow);
  if (r < 0)
    return store_error (s, -r, "cannot zero the new store's first area: %s",
                        cow_strerror (-r));
  r = write_header (s, 1);
  if (r < 0)
    return r;
  s->next_free = 2;
  store_message (s, COW_MSG_DEBUG, "initialised a new store, chunk size %"
                 PRIu64 " bytes", s->chunk_bytes);
  return 0;
}

/* How far the COW device may go: its own size for a block device, the
 * cap (or no limit) for a file that grows, and never past what the table
 * can hold.  A backend that can grow accepts a grow to its own size.
 */
static void
set_limits (struct cow_store *s)
{
  s->can_grow = !s->readonly && s->cow->ops->grow &&
    s->cow->ops->grow (s->cow, s->dev_size) == 0;
  s->max_chunks = s->dev_chunks;
  if (s->can_grow) {
    s->max_chunks = s->max_size ? s->max_size >> s->chunk_shift : UINT64_MAX;
    if (s->max_chunks < s->dev_chunks)
      s->max_chunks = s->dev_chunks;
  }
  if (s->max_chunks > s->table.max_new_chunk)
    s->max_chunks = s->table.max_new_chunk;
}

int
cow_read_header (struct cow_io *cow, struct cow_header_info *info)
{
  uint8_t buf[COW_SECTOR_SIZE] = { 0 };
  struct core_header h;
  uint64_t size;
  int r = cow_io_get_size (cow, &size);

  if (r == 0 && size > 0)
    r = cow_io_pread (cow, buf, size < sizeof buf ? size : sizeof buf, 0);
  if (r < 0)
    return r;
  cow_decode_header (buf, &h);
  *info = (struct cow_header_info) {
    .magic = h.magic, .valid = h.valid, .version = h.version,
    .chunk_sectors = h.chunk_sectors,
  };
  return 0;
}

/* Read and check chunk 0.  Sets *is_new for a zero magic. */
static int
read_header (struct cow_store *s, uint32_t want_sectors, bool *is_new)
{
  struct cow_header_info h;
  const char *why;
  int r = cow_read_header (s->cow, &h);

  if (r < 0)
    return store_error (s, -r, "cannot read the store's header: %s",
                        cow_strerror (-r));
  *is_new = h.magic == 0;
  if (*is_new) {
    s->chunk_sectors = want_sectors;
    s->valid = true;
    return 0;
  }
  if (h.magic != COW_SNAP_MAGIC)
    return store_error (s, EINVAL,
                        "bad magic 0x%08" PRIx32 " in the header "
                        "(expected 0x%08x): not a dm-snapshot store",
                        h.magic, COW_SNAP_MAGIC);
  if (h.version != COW_DISK_VERSION)
    return store_error (s, EINVAL,
                        "unsupported store version %" PRIu32
                        " (only version %d exists)", h.version,
                        COW_DISK_VERSION);
  if (cow_check_chunk_sectors (h.chunk_sectors, &why) < 0)
    return store_error (s, EINVAL, "the header's chunk size of %" PRIu32
                        " sectors %s", h.chunk_sectors, why);
  if (h.valid != 1)
    return store_error (s, EINVAL,
                        "the store is invalidated (header valid=%" PRIu32
                        "): the kernel marks a snapshot so when it overflows "
                        "or fails, and its contents cannot be trusted",
                        h.valid);
  if (want_sectors != 0 && want_sectors != h.chunk_sectors)
    store_message (s, COW_MSG_WARNING,
                   "the store's chunk size is %" PRIu32 " bytes, not the %"
                   PRIu32 " asked for: using the store's",
                   h.chunk_sectors * COW_SECTOR_SIZE,
                   want_sectors * COW_SECTOR_SIZE);
  s->chunk_sectors = h.chunk_sectors;
  s->valid = true;
  return 0;
}

/* The kernel refuses a chunk size that is not a multiple of either
 * device's logical block size: a chunk write would then be a partial
 * block, which the device cannot take (an O_DIRECT or kernel writer) or
 * takes by read-modify-write.
 */
static int
check_block_size (struct cow_store *s, struct cow_io *io, bool is_origin)
{
  int (*error) (const struct cow_store *, int, const char *, ...) =
    is_origin ? origin_error : store_error;
  const char *name = is_origin ? "the origin" : "the COW device";
  uint32_t bs;
  int r;

  if (io == NULL || io->ops->block_size == NULL)
    return 0;
  r = io->ops->block_size (io, &bs);
  if (r < 0)
    return error (s, -r, "cannot get the logical block size of %s: %s",
                  name, cow_strerror (-r));
  if (bs == 0 || s->chunk_bytes % bs != 0)
    return error (s, EINVAL, "%s has a logical block size of %" PRIu32
                  " bytes: the chunk size of %" PRIu64 " bytes is not a "
                  "multiple of it", name, bs, s->chunk_bytes);
  return 0;
}

/* Set s->origin_size; an empty origin is refused. */
static int
read_origin_size (struct cow_store *s)
{
  int r = cow_io_get_size (s->origin, &s->origin_size);

  if (r < 0)
    return origin_error (s, -r, "cannot get the origin's size: %s",
                         cow_strerror (-r));
  if (s->origin_size == 0)
    return origin_error (s, EINVAL, "the origin is empty (0 bytes)");
  return 0;
}

int
cow_origin_check (struct cow_io *origin,
                  const struct cow_store_params *params)
{
  /* Only the fields the two checks read. */
  struct cow_store s = {
    .origin = origin,
    .message = params->message,
    .message_opaque = params->message_opaque,
    .cow_name = params->cow_name,
    .origin_name = params->origin_name,
    .chunk_bytes = (uint64_t) (params->chunk_sectors
                               ?: COW_DEFAULT_CHUNK_SECTORS)
                   * COW_SECTOR_SIZE,
  };

  return read_origin_size (&s) ?: check_block_size (&s, origin, true);
}

static void
store_free (struct cow_store *s)
{
  store_commit_stop (s);
  table_free (&s->table);
  free (s->pending.v);
  free (s->area);
  free (s->zero_chunk);
  chunk_locks_destroy (&s->chunk_locks);
  pthread_mutex_destroy (&s->lock);
  pthread_mutex_destroy (&s->grow_lock);
  pthread_mutex_destroy (&s->commit_lock);
  pthread_cond_destroy (&s->commit_done);
  pthread_mutex_destroy (&s->bg_lock);
  pthread_cond_destroy (&s->bg_wake);
  free (s);
}

int
cow_store_open (struct cow_io *cow, struct cow_io *origin,
                const struct cow_store_params *params,
                struct cow_store **storep)
{
  struct cow_store *s;
  uint64_t dev_size;
  uint32_t want = params->chunk_sectors ?: COW_DEFAULT_CHUNK_SECTORS;
  const char *why;
  bool is_new;
  int r;

  s = calloc (1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->cow = cow;
  s->origin = origin;
  s->readonly = params->readonly;
  s->commit_each_copy = params->commit_each_copy;
  s->invalidate_on_overflow = params->invalidate_on_overflow;
  s->overwrite_signatures = params->overwrite_signatures;
  s->live_origin = params->live_origin;
  s->no_clone = !params->reflink;
  s->max_size = params->max_size;
  s->message = params->message;
  s->message_opaque = params->message_opaque;
  s->cow_name = params->cow_name;
  s->origin_name = params->origin_name;
  pthread_mutex_init (&s->lock, NULL);
  pthread_mutex_init (&s->grow_lock, NULL);
  pthread_mutex_init (&s->commit_lock, NULL);
  pthread_cond_init (&s->commit_done, NULL);
  store_commit_init (s);
  chunk_locks_init (&s->chunk_locks);

  if (cow_check_chunk_sectors (want, &why) < 0) {
    r = store_error (s, EINVAL, "chunk size of %" PRIu32 " sectors %s",
                     want, why);
    goto err;
  }

  if (origin) {
    r = read_origin_size (s);
    if (r < 0)
      goto err;
  }
  r = cow_io_get_size (cow, &dev_size);
  if (r < 0) {
    r = store_error (s, -r, "cannot get the COW device's size: %s",
                     cow_strerror (-r));
    goto err;
  }
  r = read_header (s, params->chunk_sectors ? want : 0, &is_new);
  if (r < 0)
    goto err;
  if (s->chunk_sectors == 0)
    s->chunk_sectors = want;
  s->chunk_bytes = (uint64_t) s->chunk_sectors * COW_SECTOR_SIZE;
  s->chunk_shift = __builtin_ctzll (s->chunk_bytes);
  r = check_block_size (s, cow, false);
  if (r == 0)
    r = check_block_size (s, origin, true);
  if (r < 0)
    goto err;
  s->exceptions_per_area = cow_exceptions_per_area (s->chunk_sectors);
  /* Without an origin any old_chunk whose chunk lies below 2^64 bytes
   * goes (the table then uses its wide layout); the loader refuses the
   * rest (record-rules.h).
   */
  s->origin_chunks = origin
    ? (s->origin_size + s->chunk_bytes - 1) >> s->chunk_shift
    : record_chunk_limit (s->chunk_bytes);
  s->dev_size = dev_size;
  s->dev_chunks = dev_size >> s->chunk_shift;

  r = table_init (&s->table, s->origin_chunks, s->dev_chunks, 0);
  if (r == 0) {
    s->area = calloc (1, s->chunk_bytes);
    s->zero_chunk = calloc (1, s->chunk_bytes);
    if (s->area == NULL || s->zero_chunk == NULL)
      r = -ENOMEM;
  }
  if (r < 0) {
    r = store_error (s, -r, "out of memory");
    goto err;
  }
  set_limits (s);

  if (is_new && s->readonly) {
    s->next_free = 2;           /* an empty snapshot; nothing is written */
    s->unformatted = true;
  }
  else if (is_new)
    r = format_new (s);
  else
    r = store_load (s);
  if (r < 0)
    goto err;

  *storep = s;
  return 0;

 err:
  store_free (s);
  return r;
}

int
cow_store_set_writable (struct cow_store *s)
{
  if (!s->readonly)
    return 0;
  s->readonly = false;
  set_limits (s);
  if (s->unformatted) {
    int r = format_new (s);
    if (r < 0) {
      s->readonly = true;
      return r;
    }
    s->unformatted = false;
  }
  return 0;
}

int
cow_store_close (struct cow_store *s)
{
  int r = 0;

  if (s == NULL)
    return 0;
  if (!s->readonly && s->valid)
    r = cow_store_commit (s);
  store_free (s);
  return r;
}

int
cow_store_invalidate (struct cow_store *s)
{
  if (s->readonly)
    return store_error (s, EROFS, "cannot invalidate a read-only store");
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    if (!s->valid)
      return 0;                 /* another writer got there first */
    s->valid = false;
  }
  /* Said by the callers, in the line that reports the cause. */
  return write_header (s, 0);
}

uint32_t
cow_store_chunk_sectors (const struct cow_store *s)
{
  return s->chunk_sectors;
}

uint64_t
cow_store_origin_size (const struct cow_store *s)
{
  return s->origin_size;
}

bool
cow_store_lookup (const struct cow_store *s, chunk_t old_chunk,
                  chunk_t *new_chunk)
{
  return table_lookup (&s->table, old_chunk, new_chunk);
}
