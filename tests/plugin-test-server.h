/* plugin-test-server.h: start and stop nbdkit with the uninstalled
 * snapcow plugin from a C test, on a Unix socket in a private temporary
 * directory (so tests run side by side).
 *
 * SNAPCOW_PLUGIN names the plugin; LIBASAN, when set, is preloaded into
 * nbdkit; SNAPCOW_VALGRIND=1 runs nbdkit under valgrind.  Failures print
 * a message and exit(1); exit(77) when nbdkit is missing.
 */
#ifndef PLUGIN_TEST_SERVER_H
#define PLUGIN_TEST_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libnbd.h>

struct test_server {
  char dir[64];          /* the private directory, removed at exit */
  char sock[128];
  char pidfile[128];
  char origin[128];      /* dir/origin */
  char cow[128];         /* dir/cow */
  pid_t pid;
};

/* Make the directory; write `size` bytes of `data` as the origin. */
extern void server_init (struct test_server *s, const void *data,
                         size_t size);

/* Start nbdkit on s->origin and s->cow, with `extra` (e.g.
 * "chunk-size=4K") or NULL; waits until the socket accepts.
 */
extern void server_start (struct test_server *s, const char *extra);

/* SIGTERM (a clean stop) and wait; fails unless nbdkit exits 0. */
extern void server_stop (struct test_server *s);

/* A new connection to the server. */
extern struct nbd_handle *server_connect (struct test_server *s);

/* Fail with the libnbd message. */
extern void die_nbd (const char *what) __attribute__ ((noreturn));

/* A small seeded PRNG (xorshift64*), so data is reproducible. */
static inline uint64_t
prng_next (uint64_t *state)
{
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static inline void
prng_fill (uint64_t *state, void *buf, size_t n)
{
  unsigned char *p = buf;
  for (size_t i = 0; i < n; i++)
    p[i] = prng_next (state) >> 56;
}

#endif /* PLUGIN_TEST_SERVER_H */
