/* plugin-test-server.c: nbdkit start/stop for the C plugin tests (see
 * plugin-test-server.h).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugin-test-server.h"

static char cleanup_dir[64];
static pid_t cleanup_pid;

void
die_nbd (const char *what)
{
  fprintf (stderr, "%s: %s\n", what, nbd_get_error ());
  exit (1);
}

static void
at_exit (void)
{
  char cmd[128];

  if (cleanup_pid > 0) {
    kill (cleanup_pid, SIGKILL);
    waitpid (cleanup_pid, NULL, 0);
  }
  if (cleanup_dir[0]) {
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", cleanup_dir);
    if (system (cmd) != 0)
      fprintf (stderr, "cannot remove %s\n", cleanup_dir);
  }
}

void
server_init (struct test_server *s, const void *data, size_t size)
{
  FILE *fp;

  memset (s, 0, sizeof *s);
  strcpy (s->dir, "/tmp/snapcow-ctest.XXXXXX");
  if (mkdtemp (s->dir) == NULL) {
    perror ("mkdtemp");
    exit (1);
  }
  strcpy (cleanup_dir, s->dir);
  atexit (at_exit);
  snprintf (s->sock, sizeof s->sock, "%s/sock", s->dir);
  snprintf (s->pidfile, sizeof s->pidfile, "%s/pid", s->dir);
  snprintf (s->origin, sizeof s->origin, "%s/origin", s->dir);
  snprintf (s->cow, sizeof s->cow, "%s/cow", s->dir);
  fp = fopen (s->origin, "w");
  if (fp == NULL || fwrite (data, 1, size, fp) != size || fclose (fp) != 0) {
    perror (s->origin);
    exit (1);
  }
}

void
server_start (struct test_server *s, const char *extra)
{
  const char *plugin = getenv ("SNAPCOW_PLUGIN");
  const char *asan = getenv ("LIBASAN");
  const char *vg = getenv ("SNAPCOW_VALGRIND");
  const char *srcdir = getenv ("srcdir");
  char cowarg[160], supp[512];
  const char *argv[32];
  int i = 0;

  if (plugin == NULL || *plugin == '\0') {
    fprintf (stderr, "SNAPCOW_PLUGIN is not set\n");
    exit (1);
  }
  if (system ("nbdkit --version >/dev/null 2>&1") != 0) {
    fprintf (stderr, "nbdkit is missing: test skipped\n");
    exit (77);
  }
  unlink (s->pidfile);
  unlink (s->sock);
  snprintf (cowarg, sizeof cowarg, "cow=%s", s->cow);
  snprintf (supp, sizeof supp, "--suppressions=%s/valgrind.supp",
            srcdir ? srcdir : ".");
  if (vg && strcmp (vg, "1") == 0) {
    argv[i++] = "valgrind";
    argv[i++] = "--error-exitcode=119";
    argv[i++] = "--leak-check=full";
    argv[i++] = "--errors-for-leak-kinds=definite";
    argv[i++] = "--quiet";
    argv[i++] = supp;
  }
  argv[i++] = "nbdkit";
  argv[i++] = "-f";
  argv[i++] = "--exit-with-parent";
  argv[i++] = "-U";
  argv[i++] = s->sock;
  argv[i++] = "-P";
  argv[i++] = s->pidfile;
  argv[i++] = plugin;
  argv[i++] = s->origin;
  argv[i++] = cowarg;
  if (extra)
    argv[i++] = extra;
  argv[i] = NULL;

  s->pid = fork ();
  if (s->pid == -1) {
    perror ("fork");
    exit (1);
  }
  if (s->pid == 0) {
    if (asan && *asan)
      setenv ("LD_PRELOAD", asan, 1);
    execvp (argv[0], (char **) argv);
    perror (argv[0]);
    _exit (1);
  }
  cleanup_pid = s->pid;

  for (i = 0; i < 600; i++) {
    struct stat st;
    int status;

    if (stat (s->pidfile, &st) == 0 && st.st_size > 0 &&
        stat (s->sock, &st) == 0)
      return;
    if (waitpid (s->pid, &status, WNOHANG) == s->pid) {
      fprintf (stderr, "nbdkit exited early\n");
      cleanup_pid = 0;
      exit (1);
    }
    nanosleep (&(struct timespec) { 0, 100000000 }, NULL);
  }
  fprintf (stderr, "nbdkit did not start in 60 s\n");
  exit (1);
}

void
server_stop (struct test_server *s)
{
  int status;

  if (kill (s->pid, SIGTERM) == -1) {
    perror ("kill");
    exit (1);
  }
  if (waitpid (s->pid, &status, 0) != s->pid) {
    perror ("waitpid");
    exit (1);
  }
  cleanup_pid = 0;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    fprintf (stderr, "nbdkit did not stop cleanly (status 0x%x)\n", status);
    exit (1);
  }
}

struct nbd_handle *
server_connect (struct test_server *s)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL)
    die_nbd ("nbd_create");
  /* LIBNBD_DEBUG=1 would log every one of thousands of commands. */
  if (nbd_set_debug (h, false) == -1)
    die_nbd ("nbd_set_debug");
  if (nbd_connect_unix (h, s->sock) == -1)
    die_nbd ("nbd_connect_unix");
  return h;
}
