/* common.c: helpers shared by the snapcow commands (tool.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

const char *command_name = "snapcow";

void
tool_error (const char *file, const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "%s: ", command_name);
  if (file)
    fprintf (stderr, "%s: ", file);
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fputc ('\n', stderr);
}

void
tool_message (void *opaque, enum cow_msg_level level, const char *msg)
{
  switch (level) {
  case COW_MSG_ERROR:
    tool_error (opaque, "%s", msg);
    break;
  case COW_MSG_WARNING:
    tool_error (opaque, "warning: %s", msg);
    break;
  case COW_MSG_DEBUG:
    break;
  }
}

struct cow_io *
open_device (const char *path, int flags, int *fdp)
{
  int fd = open (path, flags | O_CLOEXEC, 0644);
  struct cow_io *io;
  struct stat st;

  if (fd == -1) {
    tool_error (path, "%m");
    return NULL;
  }
  if (fstat (fd, &st) == -1) {
    tool_error (path, "%m");
    close (fd);
    return NULL;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    tool_error (path, "%s, not a regular file or a block device",
                S_ISDIR (st.st_mode) ? "a directory" : "a special file");
    close (fd);
    return NULL;
  }
  io = cow_io_fd_new (fd);
  if (io == NULL) {
    tool_error (path, "%m");
    close (fd);
    return NULL;
  }
  if (fdp)
    *fdp = fd;
  return io;
}

/* The plugin takes an exclusive flock(2) on a store it may write and
 * holds it for as long as it runs (plugin/snapcow.c, lock_cow); a
 * reader takes a shared one, so that a server and a reader exclude each
 * other.  A server could be halfway through a commit, and records still
 * in its memory are not on disk: what a reader sees of a store in use
 * may be inconsistent.  The kernel takes no such lock (snapcow(1),
 * LOCKING).
 */
int
open_cow (const char *path, enum in_use policy, struct opened *o)
{
  int fd, r;

  *o = (struct opened) { NULL };
  o->cow = open_device (path, O_RDONLY, &fd);
  if (o->cow == NULL)
    return -1;
  r = cow_lock_fd (fd, false);
  if (r == -EBUSY) {
    o->in_use = true;
    switch (policy) {
    case IN_USE_REFUSE:
      tool_error (path, "in use by a running server (--force reads it "
                  "anyway)");
      close_store (o);
      return -EBUSY;
    case IN_USE_FORCE:
      tool_error (path, "warning: in use by a running server: reading it "
                  "anyway (--force); the result may be inconsistent");
      break;
    case IN_USE_NOTE:
      tool_error (path, "warning: in use by a running server: what "
                  "follows may be out of date or inconsistent");
      break;
    }
  }
  else if (r < 0)
    /* The plugin cannot serve a store it cannot lock, so no server can
     * be writing this one.
     */
    tool_error (path, "warning: cannot lock it (%s): reading it unlocked",
                strerror (-r));
  return 0;
}

int
open_store_readonly (const char *path, const char *origin,
                     enum in_use policy, struct opened *o)
{
  struct cow_store_params p = {
    .readonly = true, .message = tool_message, .message_opaque = (void *) path,
  };
  int r;

  r = open_cow (path, policy, o);
  if (r < 0)
    return r;
  if (origin) {
    o->origin = open_device (origin, O_RDONLY, NULL);
    if (o->origin == NULL)
      goto err;
  }
  if (cow_store_open (o->cow, o->origin, &p, &o->store) < 0)
    goto err;
  return 0;
 err:
  close_store (o);
  return -1;
}

void
close_store (struct opened *o)
{
  cow_store_close (o->store);
  cow_io_close (o->cow);
  cow_io_close (o->origin);
  *o = (struct opened) { NULL };
}

int64_t
parse_size (const char *s)
{
  char *end;
  long long v;
  int shift = 0;

  errno = 0;
  v = strtoll (s, &end, 10);
  if (errno || end == s || v < 0)
    return -1;
  switch (*end) {
  case '\0': break;
  case 'k': case 'K': shift = 10; end++; break;
  case 'm': case 'M': shift = 20; end++; break;
  case 'g': case 'G': shift = 30; end++; break;
  case 't': case 'T': shift = 40; end++; break;
  default: return -1;
  }
  if (*end != '\0' || v > (INT64_MAX >> shift))
    return -1;
  return (int64_t) v << shift;
}

void
json_string (FILE *fp, const char *s)
{
  fputc ('"', fp);
  for (; *s; s++) {
    unsigned char ch = *s;
    if (ch == '"' || ch == '\\')
      fprintf (fp, "\\%c", ch);
    else if (ch < 0x20)
      fprintf (fp, "\\u%04x", ch);
    else
      fputc (ch, fp);
  }
  fputc ('"', fp);
}

int
usage (const char *text, bool help)
{
  if (help)
    fputs (text, stdout);
  else
    fprintf (stderr, "Try '%s --help'.\n", command_name);
  return help ? EXIT_OK : EXIT_USAGE;
}

int
usage_error (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "%s: ", command_name);
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fputc ('\n', stderr);
  return usage (NULL, false);
}

/* After getopt_long returned '?' or ':', optind is past the argument
 * it stopped at, unless that was a short option inside a cluster such
 * as "-hx"; optopt is the option's value, or 0 for an unknown long
 * option.  A long option is named in full, as opts spells it, even
 * when the user abbreviated it.
 */
int
bad_option (int c, char **argv, const struct option *opts)
{
  const char *arg = optind > 0 ? argv[optind - 1] : "";
  bool is_long = strncmp (arg, "--", 2) == 0;
  const char *name = NULL;

  for (; is_long && optopt != 0 && opts->name; opts++)
    if (opts->val == optopt)
      name = opts->name;
  if (c == ':') {
    if (name)
      return usage_error ("option '--%s' requires an argument", name);
    return usage_error ("option '-%c' requires an argument", optopt);
  }
  if (name && strchr (arg, '='))
    return usage_error ("option '--%s' does not take an argument", name);
  if (is_long || optopt == 0)
    return usage_error ("unrecognized option '%s'", arg);
  return usage_error ("unrecognized option '-%c'", optopt);
}

const char *
one_operand (int argc, char **argv)
{
  if (optind >= argc) {
    usage_error ("missing the COW store argument");
    return NULL;
  }
  if (argc - optind > 1) {
    usage_error ("unexpected argument '%s' (one COW store only)",
                 argv[optind + 1]);
    return NULL;
  }
  return argv[optind];
}
