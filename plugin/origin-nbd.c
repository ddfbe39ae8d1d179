/* origin-nbd.c: the origin as a read-only cow_io over libnbd, so the
 * origin can live on any NBD server (another nbdkit, qemu-nbd,
 * qemu-storage-daemon, rbd-nbd).
 *
 * libnbd's synchronous calls hold the handle's lock for their whole
 * duration, so one handle would serialise every origin read.  When the
 * server says multi-conn is safe, we keep a few connections and a
 * thread takes whichever is free.  The origin is never written.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "origin-nbd.h"

#define MAX_CONNS 4
/* A request larger than the server's maximum is split. */
#define DEFAULT_MAX_REQUEST (32 * 1024 * 1024)

struct conn {
  pthread_mutex_t lock;
  struct nbd_handle *h;
};

struct origin_nbd {
  struct cow_io io;
  int nr_conns;
  unsigned next;                /* round robin start; races are harmless */
  uint64_t max_request;
  bool can_extents;
  struct conn conns[MAX_CONNS];
};

#define ON(io) ((struct origin_nbd *) (io))

/* A free connection if there is one, else wait for the next in turn. */
static struct conn *
get_conn (struct origin_nbd *o)
{
  unsigned start = __atomic_fetch_add (&o->next, 1, __ATOMIC_RELAXED);

  for (int k = 0; k < o->nr_conns; k++) {
    struct conn *c = &o->conns[(start + k) % o->nr_conns];
    if (pthread_mutex_trylock (&c->lock) == 0)
      return c;
  }
  struct conn *c = &o->conns[start % o->nr_conns];
  pthread_mutex_lock (&c->lock);
  return c;
}

static void
put_conn (struct conn *c)
{
  pthread_mutex_unlock (&c->lock);
}

/* lib/ reports the failed request once, naming the origin, from the
 * errno; libnbd's text for it goes to the debug log.
 */
static int
nbd_failed (void)
{
  int err = nbd_get_errno ();

  nbdkit_debug ("origin: %s", nbd_get_error ());
  return -(err ? err : EIO);
}

static int
on_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  struct origin_nbd *o = ON (io);
  char *p = buf;

  while (count > 0) {
    size_t n = count < o->max_request ? count : o->max_request;
    struct conn *c = get_conn (o);
    int r = nbd_pread (c->h, p, n, offset, 0);

    put_conn (c);
    if (r == -1)
      return nbd_failed ();
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
on_pwrite (struct cow_io *io, const void *buf, size_t count, uint64_t offset)
{
  return -EROFS;
}

static int
on_sync (struct cow_io *io)
{
  return 0;
}

static int
on_get_size (struct cow_io *io, uint64_t *size)
{
  struct conn *c = get_conn (ON (io));
  int64_t r = nbd_get_size (c->h);

  put_conn (c);
  if (r == -1)
    return nbd_failed ();
  *size = r;
  return 0;
}

struct first_extent {
  uint64_t length;
  bool is_hole;
  bool seen;
};

static int
first_extent (void *opaque, const char *metacontext, uint64_t offset,
              uint32_t *entries, size_t nr_entries, int *error)
{
  struct first_extent *fe = opaque;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 ||
      nr_entries < 2 || fe->seen)
    return 0;
  fe->seen = true;
  fe->length = entries[0];
  /* Only a range that reads as zeroes counts as a hole for us. */
  fe->is_hole = (entries[1] & LIBNBD_STATE_ZERO) != 0;
  return 0;
}

static int
on_extent (struct cow_io *io, uint64_t offset, uint64_t count,
           uint64_t *length, bool *is_hole)
{
  struct origin_nbd *o = ON (io);
  struct first_extent fe = { 0 };
  struct conn *c;
  int r;

  *length = count;
  *is_hole = false;
  if (!o->can_extents)
    return 0;
  if (count > UINT32_MAX)
    count = UINT32_MAX & ~UINT64_C (511);
  c = get_conn (o);
  r = nbd_block_status (c->h, count, offset,
                        (nbd_extent_callback) { .callback = first_extent,
                                                .user_data = &fe },
                        LIBNBD_CMD_FLAG_REQ_ONE);
  put_conn (c);
  if (r == -1)
    return nbd_failed ();
  if (fe.seen && fe.length > 0) {
    *length = fe.length < count ? fe.length : count;
    *is_hole = fe.is_hole;
  }
  return 0;
}

static void
on_close (struct cow_io *io)
{
  struct origin_nbd *o = ON (io);

  for (int k = 0; k < o->nr_conns; k++) {
    nbd_shutdown (o->conns[k].h, 0);
    nbd_close (o->conns[k].h);
    pthread_mutex_destroy (&o->conns[k].lock);
  }
  free (o);
}

static const struct cow_io_ops origin_nbd_ops = {
  .name = "nbd",
  .pread = on_pread,
  .pwrite = on_pwrite,
  .sync = on_sync,
  .get_size = on_get_size,
  .extent = on_extent,
  .close = on_close,
};

bool
origin_is_nbd_uri (const char *name)
{
  return strncmp (name, "nbd://", 6) == 0 ||
    strncmp (name, "nbds://", 7) == 0 ||
    strncmp (name, "nbd+unix://", 11) == 0 ||
    strncmp (name, "nbds+unix://", 12) == 0 ||
    strncmp (name, "nbd+vsock://", 12) == 0 ||
    strncmp (name, "nbds+vsock://", 13) == 0;
}

static struct nbd_handle *
connect_one (const char *uri)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL ||
      nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_connect_uri (h, uri) == -1) {
    nbdkit_error ("origin %s: %s", uri, nbd_get_error ());
    nbd_close (h);
    return NULL;
  }
  return h;
}

struct cow_io *
origin_nbd_open (const char *uri)
{
  struct origin_nbd *o = calloc (1, sizeof *o);
  struct nbd_handle *h;
  int64_t max;

  if (o == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  o->io.ops = &origin_nbd_ops;
  h = connect_one (uri);
  if (h == NULL) {
    free (o);
    return NULL;
  }
  o->conns[0].h = h;
  pthread_mutex_init (&o->conns[0].lock, NULL);
  o->nr_conns = 1;
  o->can_extents =
    nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  max = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  o->max_request = max > 0 && max < DEFAULT_MAX_REQUEST ? max
    : DEFAULT_MAX_REQUEST;

  /* More connections only where the server says they are consistent;
   * a server that takes one client at a time would make us wait.
   */
  if (nbd_can_multi_conn (h) == 1) {
    while (o->nr_conns < MAX_CONNS) {
      h = connect_one (uri);
      if (h == NULL)
        break;
      o->conns[o->nr_conns].h = h;
      pthread_mutex_init (&o->conns[o->nr_conns].lock, NULL);
      o->nr_conns++;
    }
  }
  nbdkit_debug ("origin %s: %d connection(s)", uri, o->nr_conns);
  return &o->io;
}
