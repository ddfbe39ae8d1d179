/* params.c: the plugin's parameters: .config parses each one,
 * .config_complete checks them together.  Everything a parameter alone
 * or their combination can get wrong is refused here, in one line that
 * names the key; what needs the files is checked in .get_ready
 * (stores.c).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "origin-nbd.h"
#include "params.h"
#include "snapcow.h"

struct snapcow_params params;

/* mode= values, indexed by enum snapcow_mode. */
static const char *const mode_names[] = {
  [MODE_SNAPSHOT] = "snapshot",
  [MODE_ORIGIN] = "origin",
  [MODE_MERGE] = "merge",
};
#define NR_MODES (sizeof mode_names / sizeof mode_names[0])

const char *
mode_name (enum snapcow_mode mode)
{
  return mode_names[mode];
}

void
params_free (void)
{
  free (params.origin);
  for (size_t i = 0; i < params.nr_cows; i++) {
    free (params.cows[i].name);
    free (params.cows[i].path);
  }
  free (params.cows);
  free ((char *) params.on_full);
}

static int
parse_chunk_size (const char *value)
{
  int64_t bytes = nbdkit_parse_size (value);

  if (bytes == -1)
    return -1;
  if (bytes < COW_SECTOR_SIZE || (bytes & (bytes - 1)) != 0 ||
      bytes > (int64_t) COW_MAX_CHUNK_SECTORS * COW_SECTOR_SIZE) {
    nbdkit_error ("chunk-size=%s: must be a power of two from 512 to %u "
                  "bytes (the kernel allows up to 1G; snapcow caps it so "
                  "that an area fits in memory)", value,
                  COW_MAX_CHUNK_SECTORS * COW_SECTOR_SIZE);
    return -1;
  }
  params.chunk_sectors = bytes / COW_SECTOR_SIZE;
  return 0;
}

static int
parse_origin (const char *value)
{
  free (params.origin);
  /* An NBD URI stays as it is; a file name becomes absolute before
   * nbdkit changes directory.
   */
  if (origin_is_nbd_uri (value)) {
    params.origin = strdup (value);
    if (params.origin == NULL)
      nbdkit_error ("strdup: %s", cow_strerror (errno));
  }
  else {
    params.origin = realpath (value, NULL);
    if (params.origin == NULL)
      nbdkit_error ("origin=%s: %s", value, cow_strerror (errno));
  }
  return params.origin ? 0 : -1;
}

/* Every cow= is kept, so that origin mode can take several, and
 * .config_complete refuses a second one in snapshot mode (mode= may
 * come after the cow= parameters).
 */
static int
add_cow (const char *value)
{
  struct cow_param *cows;
  struct cow_param c;

  /* "" would also be the name of the origin's export. */
  if (*value == '\0') {
    nbdkit_error ("cow=: the store needs a file name");
    return -1;
  }
  c.path = nbdkit_absolute_path (value);
  if (c.path == NULL)
    return -1;
  c.name = strdup (value);
  cows = realloc (params.cows, (params.nr_cows + 1) * sizeof *cows);
  if (c.name == NULL || cows == NULL) {
    nbdkit_error ("cow=%s: %s", value, cow_strerror (errno));
    free (c.name);
    free (c.path);
    if (cows)
      params.cows = cows;
    return -1;
  }
  params.cows = cows;
  params.cows[params.nr_cows++] = c;
  return 0;
}

static int
parse_mode (const char *value)
{
  for (size_t i = 0; i < NR_MODES; i++)
    if (strcmp (value, mode_names[i]) == 0) {
      params.mode = i;
      return 0;
    }
  nbdkit_error ("mode=%s: must be 'snapshot', 'origin' or 'merge'", value);
  return -1;
}

int
params_config (const char *key, const char *value)
{
  if (strcmp (key, "origin") == 0)
    return parse_origin (value);
  if (strcmp (key, "cow") == 0)
    return add_cow (value);
  if (strcmp (key, "mode") == 0)
    return parse_mode (value);
  if (strcmp (key, "chunk-size") == 0)
    return parse_chunk_size (value);
  if (strcmp (key, "commit") == 0) {
    if (strcmp (value, "flush") == 0)
      params.commit_each_copy = false;
    else if (strcmp (value, "copy") == 0)
      params.commit_each_copy = true;
    else {
      nbdkit_error ("commit=%s: must be 'flush' or 'copy'", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "reflink") == 0) {
    int r = nbdkit_parse_bool (value);

    if (r == -1)
      return -1;
    params.reflink = r;
    return 0;
  }
  if (strcmp (key, "overflow") == 0) {
    if (strcmp (value, "enospc") == 0)
      params.invalidate_on_overflow = false;
    else if (strcmp (value, "invalidate") == 0)
      params.invalidate_on_overflow = true;
    else {
      nbdkit_error ("overflow=%s: must be 'enospc' or 'invalidate'", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "on-full") == 0) {
    if (strcmp (value, "invalidate") == 0)
      params.fail_write_when_full = false;
    else if (strcmp (value, "fail-write") == 0)
      params.fail_write_when_full = true;
    else {
      nbdkit_error ("on-full=%s: must be 'invalidate' or 'fail-write'",
                    value);
      return -1;
    }
    free ((char *) params.on_full);
    params.on_full = strdup (value);
    if (params.on_full == NULL) {
      nbdkit_error ("strdup: %s", cow_strerror (errno));
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "origin-writes") == 0) {
    if (strcmp (value, "deferred") == 0)
      params.origin_writes_sync = false;
    else if (strcmp (value, "synchronous") == 0)
      params.origin_writes_sync = true;
    else {
      nbdkit_error ("origin-writes=%s: must be 'deferred' or 'synchronous'",
                    value);
      return -1;
    }
    params.origin_writes = params.origin_writes_sync ? "synchronous"
      : "deferred";
    return 0;
  }
  if (strcmp (key, "merge-step") == 0) {
    int64_t r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (r == 0) {
      nbdkit_error ("merge-step=%s: must be more than zero", value);
      return -1;
    }
    params.merge_step = r;
    return 0;
  }
  if (strcmp (key, "cow-size") == 0) {
    int64_t r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (r == 0) {
      nbdkit_error ("cow-size=%s: must be more than zero", value);
      return -1;
    }
    params.cow_size = r;
    return 0;
  }
  nbdkit_error ("unknown parameter '%s'", key);
  return -1;
}

int
params_config_complete (void)
{
  if (params.origin == NULL) {
    nbdkit_error ("the origin parameter is missing: "
                  "give origin=FILE (or the file name alone)");
    return -1;
  }
  if (params.nr_cows == 0) {
    nbdkit_error ("the cow parameter is missing: give cow=FILE for the "
                  "COW store (created if it does not exist)");
    return -1;
  }
  if (params.mode != MODE_ORIGIN && params.nr_cows > 1) {
    nbdkit_error ("cow=%s: a second store needs mode=origin "
                  "(mode=%s serves one snapshot)", params.cows[1].name,
                  mode_name (params.mode));
    return -1;
  }
  if (params.mode != MODE_ORIGIN && params.on_full) {
    nbdkit_error ("on-full=%s: only for mode=origin (a full store in "
                  "mode=%s is overflow=)", params.on_full,
                  mode_name (params.mode));
    return -1;
  }
  if (params.mode != MODE_ORIGIN && params.origin_writes) {
    nbdkit_error ("origin-writes=%s: only for mode=origin",
                  params.origin_writes);
    return -1;
  }
  /* commit=copy asks for the kernel's timing, which deferred origin
   * writes are not: it makes them synchronous, and says so if both
   * were asked for.
   */
  if (params.commit_each_copy && params.origin_writes &&
      !params.origin_writes_sync) {
    nbdkit_error ("origin-writes=deferred: not with commit=copy, which "
                  "makes every copy durable before its write returns");
    return -1;
  }
  if (params.commit_each_copy)
    params.origin_writes_sync = true;
  /* An origin write must not find a store gone invalid by a snapshot
   * write's overflow while it skips the store: one policy, on-full=.
   */
  if (params.mode == MODE_ORIGIN && params.invalidate_on_overflow) {
    nbdkit_error ("overflow=invalidate: not in mode=origin, where on-full= "
                  "says what a full store does");
    return -1;
  }
  if (params.mode != MODE_SNAPSHOT && origin_is_nbd_uri (params.origin)) {
    nbdkit_error ("mode=%s: the origin %s is an NBD URI, which snapcow "
                  "only reads: %s mode writes the origin, so give a "
                  "file or a block device", mode_name (params.mode),
                  params.origin, mode_name (params.mode));
    return -1;
  }
  if (params.mode != MODE_MERGE && params.merge_step) {
    nbdkit_error ("merge-step=%" PRIu64 ": only for mode=merge",
                  params.merge_step);
    return -1;
  }
  /* A merge allocates no chunk: nothing can overflow. */
  if (params.mode == MODE_MERGE && params.invalidate_on_overflow) {
    nbdkit_error ("overflow=invalidate: not in mode=merge, which adds no "
                  "chunk to the store");
    return -1;
  }
  /* The same path twice; other spellings of one file are caught when
   * the files are opened (stores.c).
   */
  for (size_t i = 0; i < params.nr_cows; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp (params.cows[i].path, params.cows[j].path) == 0) {
        nbdkit_error ("cow=%s and cow=%s are the same file: each snapshot "
                      "needs a store of its own", params.cows[j].name,
                      params.cows[i].name);
        return -1;
      }
  return 0;
}
