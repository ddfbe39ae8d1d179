/* origin-nbd.c: the origin as a read-only cow_io over libnbd, so the
 * origin can live on any NBD server (another nbdkit, qemu-nbd,
 * qemu-storage-daemon, rbd-nbd) and many snapcow servers can share it.
 *
 * libnbd's synchronous calls hold the handle's lock for their whole
 * duration, so one handle would serialise every origin read.  When the
 * server says multi-conn is safe, we keep a few connections and a
 * thread takes whichever is free.  The origin is never written.
 *
 * A server that goes away.  A request whose connection died (the
 * server was killed or restarted, the network went) closes the dead
 * handle and connects again at once; if that works the request is sent
 * again (reads are idempotent), so a server restarted between requests
 * costs nothing.  Otherwise the request fails with EIO and lib/ fails
 * the client's request without recording anything.  A connection
 * without a handle tries again on a later use, at most once a second,
 * so that while the server is down requests fail at once instead of
 * each waiting on a connect; once one connection is back, the others
 * try at their next use without waiting out their second.  A new
 * connection must show the size the origin had at start-up, or it is
 * refused: the store's exceptions only make sense over the same image.
 *
 * Messages.  lib/ reports each failed request once, naming the origin,
 * from the errno returned here; libnbd's text for it goes to the debug
 * log.  A change of state (connection lost, reconnected, refused) is
 * logged once when it happens, not once per request.  nbdkit 1.32 has
 * only nbdkit_error and nbdkit_debug, so those lines are errors.
 *
 * Locks, outermost first:
 *   c->lock         one per connection: held over every use of its
 *                   handle, reconnecting included.
 *   o->state_lock   the logged state and o->losses; held only to
 *                   change and log them, never over I/O.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libnbd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "origin-nbd.h"

#define MAX_CONNS 4
/* A request larger than the server's maximum is split. */
#define DEFAULT_MAX_REQUEST (32 * 1024 * 1024)
/* A connection tries to connect again at most this often. */
#define RETRY_SECONDS 1

struct conn {
  pthread_mutex_t lock;
  struct nbd_handle *h;         /* NULL while disconnected */
  uint64_t max_request;         /* bytes per request the server takes */
  unsigned born;                /* o->losses when h was connected */
  struct timespec next_try;     /* CLOCK_MONOTONIC: no connect before */
  unsigned epoch;               /* o->epoch when next_try was set */
};

enum state { UP, LOST, REFUSED };

struct origin_nbd {
  struct cow_io io;
  char *uri;
  uint64_t size;                /* at start-up; later connections match */
  bool can_extents;             /* the first server had base:allocation */
  bool can_cache;               /* the first server had NBD_CMD_CACHE */
  int nr_conns;
  unsigned next;                /* round robin start; races are harmless */
  /* Bumped by each successful reconnection: the server is back, so
   * waiting connections need not wait out their second.
   */
  _Atomic unsigned epoch;

  /* o->state_lock */
  pthread_mutex_t state_lock;
  enum state state;
  /* Bumped when the state leaves UP: a handle connected before then
   * (c->born < losses) belongs to that outage, and its death is not
   * news.
   */
  unsigned losses;

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

/* Connect to uri: a handle, or NULL with libnbd's reason in why. */
static struct nbd_handle *
connect_one (const char *uri, char *why, size_t len)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL ||
      nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_connect_uri (h, uri) == -1) {
    snprintf (why, len, "%s", nbd_get_error ());
    nbd_close (h);
    return NULL;
  }
  return h;
}

static uint64_t
max_request (struct nbd_handle *h)
{
  int64_t max = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);

  return max > 0 && max < DEFAULT_MAX_REQUEST ? max : DEFAULT_MAX_REQUEST;
}

/* Log a change of state (o->state_lock held). */
static void
log_state_locked (struct origin_nbd *o, enum state state, const char *why)
{
  if (state != UP && o->state == UP)
    o->losses++;
  o->state = state;
  switch (state) {
  case UP:
    nbdkit_error ("origin %s: reconnected", o->uri);
    break;
  case LOST:
    nbdkit_error ("origin %s: connection lost: %s", o->uri, why);
    break;
  case REFUSED:
    nbdkit_error ("origin %s: %s", o->uri, why);
    break;
  }
}

/* c's handle died (c != NULL), or a connect failed (c == NULL).  Only
 * the first sign of an outage is logged: a handle from before the last
 * loss was bound to die with it.
 */
static void
note_lost (struct origin_nbd *o, struct conn *c, const char *why)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&o->state_lock);

  if (o->state == UP && (c == NULL || c->born == o->losses))
    log_state_locked (o, LOST, why);
  else
    nbdkit_debug ("origin %s: %s", o->uri, why);
}

static void
note_refused (struct origin_nbd *o, const char *why)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&o->state_lock);

  if (o->state != REFUSED)
    log_state_locked (o, REFUSED, why);
  else
    nbdkit_debug ("origin %s: %s", o->uri, why);
}

static void
note_up (struct origin_nbd *o, struct conn *c)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&o->state_lock);

  c->born = o->losses;
  if (o->state != UP)
    log_state_locked (o, UP, NULL);
}

static bool
before (const struct timespec *a, const struct timespec *b)
{
  return a->tv_sec < b->tv_sec ||
    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Give c (locked, without a handle) a new connection, unless it tried
 * less than RETRY_SECONDS ago and no other connection has come back
 * since.  0 or -1.
 */
static int
reconnect (struct origin_nbd *o, struct conn *c)
{
  unsigned epoch = atomic_load (&o->epoch);
  struct nbd_handle *h;
  struct timespec now;
  char why[512];
  int64_t size;

  clock_gettime (CLOCK_MONOTONIC, &now);
  if (c->epoch == epoch && before (&now, &c->next_try)) {
    nbdkit_debug ("origin %s: not connected; not trying again yet",
                  o->uri);
    return -1;
  }
  c->epoch = epoch;
  c->next_try = now;
  c->next_try.tv_sec += RETRY_SECONDS;

  h = connect_one (o->uri, why, sizeof why);
  if (h == NULL) {
    note_lost (o, NULL, why);
    return -1;
  }
  size = nbd_get_size (h);
  if (size == -1 || (uint64_t) size != o->size) {
    if (size == -1)
      snprintf (why, sizeof why, "refused the new connection: %s",
                nbd_get_error ());
    else
      snprintf (why, sizeof why, "refused the new connection: the origin "
                "is now %" PRId64 " bytes, not %" PRIu64 " as at start-up: "
                "is it still the same image?", size, o->size);
    nbd_close (h);
    note_refused (o, why);
    return -1;
  }
  c->h = h;
  c->max_request = max_request (h);
  atomic_fetch_add (&o->epoch, 1);
  note_up (o, c);
  return 0;
}

/* One request on a connection: fn returns libnbd's -1 on failure. */
typedef int (*request_fn) (struct origin_nbd *o, struct conn *c, void *arg);

/* Run fn on a connection that has a handle, connecting again as the
 * notes at the top say.  0, or a negative errno: the server's for an
 * error it reported, EIO when there is no connection.
 */
static int
request (struct origin_nbd *o, request_fn fn, void *arg)
{
  struct conn *c = get_conn (o);
  int r = -EIO;

  for (int tries = 0; tries < 2; tries++) {
    if (c->h == NULL && reconnect (o, c) == -1)
      break;
    if (fn (o, c, arg) != -1) {
      r = 0;
      break;
    }
    if (nbd_aio_is_dead (c->h) != 1 && nbd_aio_is_closed (c->h) != 1) {
      /* The server answered with an error: the connection is fine. */
      int err = nbd_get_errno ();

      nbdkit_debug ("origin %s: %s", o->uri, nbd_get_error ());
      r = -(err ? err : EIO);
      break;
    }
    note_lost (o, c, nbd_get_error ());
    nbd_close (c->h);
    c->h = NULL;
  }
  put_conn (c);
  return r;
}

struct range {
  void *buf;
  uint64_t count;
  uint64_t offset;
};

static int
pread_fn (struct origin_nbd *o, struct conn *c, void *arg)
{
  const struct range *rg = arg;
  char *p = rg->buf;
  uint64_t offset = rg->offset, count = rg->count;

  while (count > 0) {
    uint64_t n = count < c->max_request ? count : c->max_request;

    if (nbd_pread (c->h, p, n, offset, 0) == -1)
      return -1;
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
on_pread (struct cow_io *io, void *buf, size_t count, uint64_t offset)
{
  struct range rg = { .buf = buf, .count = count, .offset = offset };

  return request (ON (io), pread_fn, &rg);
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

/* The size at start-up: it cannot change under us (a reconnection to a
 * different size is refused), and it needs no connection.
 */
static int
on_get_size (struct cow_io *io, uint64_t *size)
{
  *size = ON (io)->size;
  return 0;
}

static int
cache_fn (struct origin_nbd *o, struct conn *c, void *arg)
{
  const struct range *rg = arg;
  uint64_t offset = rg->offset, count = rg->count;

  /* A server we reconnected to may not cache: nothing to do then. */
  if (nbd_can_cache (c->h) != 1)
    return 0;
  while (count > 0) {
    uint64_t n = count < c->max_request ? count : c->max_request;

    if (nbd_cache (c->h, n, offset, 0) == -1)
      return -1;
    offset += n;
    count -= n;
  }
  return 0;
}

/* Prefetch with NBD_CMD_CACHE where the server has it. */
static int
on_cache (struct cow_io *io, uint64_t offset, uint64_t count)
{
  struct origin_nbd *o = ON (io);
  struct range rg = { .count = count, .offset = offset };

  if (!o->can_cache)
    return 0;
  return request (o, cache_fn, &rg);
}

struct extent_request {
  uint64_t offset;
  uint64_t count;
  uint64_t length;              /* out */
  bool is_hole;                 /* out */
  bool seen;
};

static int
first_extent (void *opaque, const char *metacontext, uint64_t offset,
              uint32_t *entries, size_t nr_entries, int *error)
{
  struct extent_request *er = opaque;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 ||
      nr_entries < 2 || er->seen)
    return 0;
  er->seen = true;
  er->length = entries[0];
  /* Only a range that reads as zeroes counts as a hole for us. */
  er->is_hole = (entries[1] & LIBNBD_STATE_ZERO) != 0;
  return 0;
}

static int
extent_fn (struct origin_nbd *o, struct conn *c, void *arg)
{
  struct extent_request *er = arg;

  er->seen = false;
  /* Without base:allocation everything is data. */
  if (nbd_can_meta_context (c->h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
    return 0;
  return nbd_block_status (c->h, er->count, er->offset,
                           (nbd_extent_callback) { .callback = first_extent,
                                                   .user_data = er },
                           LIBNBD_CMD_FLAG_REQ_ONE);
}

static int
on_extent (struct cow_io *io, uint64_t offset, uint64_t count,
           uint64_t *length, bool *is_hole)
{
  struct extent_request er = {
    .offset = offset,
    .count = count > UINT32_MAX ? UINT32_MAX & ~UINT64_C (511) : count,
  };
  int r;

  *length = count;
  *is_hole = false;
  if (!ON (io)->can_extents)
    return 0;
  r = request (ON (io), extent_fn, &er);
  if (r < 0)
    return r;
  if (er.seen && er.length > 0) {
    *length = er.length < er.count ? er.length : er.count;
    *is_hole = er.is_hole;
  }
  return 0;
}

static void
on_close (struct cow_io *io)
{
  struct origin_nbd *o = ON (io);

  for (int k = 0; k < o->nr_conns; k++) {
    if (o->conns[k].h) {
      nbd_shutdown (o->conns[k].h, 0);
      nbd_close (o->conns[k].h);
    }
    pthread_mutex_destroy (&o->conns[k].lock);
  }
  pthread_mutex_destroy (&o->state_lock);
  free (o->uri);
  free (o);
}

static const struct cow_io_ops origin_nbd_ops = {
  .name = "nbd",
  .pread = on_pread,
  .pwrite = on_pwrite,
  .sync = on_sync,
  .get_size = on_get_size,
  .extent = on_extent,
  .cache = on_cache,
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

static void
add_conn (struct origin_nbd *o, struct nbd_handle *h)
{
  struct conn *c = &o->conns[o->nr_conns++];

  pthread_mutex_init (&c->lock, NULL);
  c->h = h;
  c->max_request = max_request (h);
}

struct cow_io *
origin_nbd_open (const char *uri)
{
  struct origin_nbd *o = calloc (1, sizeof *o);
  struct nbd_handle *h;
  char why[512];
  int64_t size;

  if (o == NULL || (o->uri = strdup (uri)) == NULL) {
    nbdkit_error ("out of memory");
    free (o);
    return NULL;
  }
  o->io.ops = &origin_nbd_ops;
  pthread_mutex_init (&o->state_lock, NULL);
  h = connect_one (uri, why, sizeof why);
  if (h == NULL) {
    nbdkit_error ("origin %s: %s", uri, why);
    on_close (&o->io);
    return NULL;
  }
  add_conn (o, h);
  size = nbd_get_size (h);
  if (size == -1) {
    nbdkit_error ("origin %s: %s", uri, nbd_get_error ());
    on_close (&o->io);
    return NULL;
  }
  o->size = size;
  o->can_extents =
    nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  o->can_cache = nbd_can_cache (h) == 1;

  /* More connections only where the server says they are consistent;
   * a server that takes one client at a time would make us wait.
   */
  if (nbd_can_multi_conn (h) == 1) {
    while (o->nr_conns < MAX_CONNS) {
      h = connect_one (uri, why, sizeof why);
      if (h == NULL) {
        nbdkit_debug ("origin %s: %s", uri, why);
        break;
      }
      if (nbd_get_size (h) != size) {
        nbd_close (h);
        break;
      }
      add_conn (o, h);
    }
  }
  nbdkit_debug ("origin %s: %d connection(s)%s", uri, o->nr_conns,
                o->can_cache ? ", can cache" : "");
  return &o->io;
}
