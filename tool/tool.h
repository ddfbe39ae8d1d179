/* tool.h: what the snapcow command's files share: the command table
 * entry points, error reporting in the form "snapcow CMD: FILE: msg",
 * opening files, sizes, and JSON strings.
 */
#ifndef SNAPCOW_TOOL_H
#define SNAPCOW_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "snapcow.h"

/* Exit codes, the same for every command (snapcow(1), EXIT STATUS). */
#define EXIT_OK       0
#define EXIT_FAILED   1     /* failed, or check found problems */
#define EXIT_USAGE    2     /* bad usage; check: the store cannot be read */

extern int cmd_create (int argc, char **argv);
extern int cmd_info (int argc, char **argv);
extern int cmd_check (int argc, char **argv);
extern int cmd_dump (int argc, char **argv);
extern int cmd_map (int argc, char **argv);
extern int cmd_merge (int argc, char **argv);

/* "snapcow info" etc., for messages. */
extern const char *command_name;

extern void tool_error (const char *file, const char *fs, ...)
  __attribute__ ((format (printf, 2, 3)));

/* The lib/ message callback; opaque is the file name. */
extern void tool_message (void *opaque, enum cow_msg_level level,
                          const char *msg);

/* Open a regular file or block device as a backend.  flags as for
 * open(2).  NULL with a message on failure.
 */
extern struct cow_io *open_device (const char *path, int flags, int *fdp);

/* What a reading command does with a store that a running server
 * holds (the plugin keeps an exclusive flock(2) on a store it may
 * write; a reader takes a shared one).
 */
enum in_use {
  IN_USE_REFUSE,    /* fail with "in use by a running server" */
  IN_USE_FORCE,     /* --force: read it anyway, with a warning */
  IN_USE_NOTE,      /* info: say so on stderr and go on */
};

/* A store opened read-only: the COW backend (locked shared), the
 * origin when one was given, and the validated store when one was
 * opened.
 */
struct opened {
  struct cow_io *cow, *origin;
  struct cow_store *store;
  bool in_use;              /* a running server holds the store */
};

/* Open COW read-only into o->cow and take the shared lock.  Returns 0,
 * -1 if the file cannot be opened, or -EBUSY if a server holds it and
 * policy is IN_USE_REFUSE; the message has been printed.
 */
extern int open_cow (const char *path, enum in_use policy, struct opened *o);

/* open_cow, then open and validate the store, without its origin (NULL
 * origin) or with one.  -1 (or -EBUSY, as open_cow) with a message on
 * failure.
 */
extern int open_store_readonly (const char *path, const char *origin,
                                enum in_use policy, struct opened *o);
extern void close_store (struct opened *o);

/* "16K", "1M", "4096": bytes; -1 if it is not a size. */
extern int64_t parse_size (const char *s);

extern void json_string (FILE *fp, const char *s);

/* Print the command's usage: to stdout for --help (exit status 0);
 * else only the hint "Try 'snapcow CMD --help'." on stderr (exit
 * status 2), after getopt's own message.
 */
extern int usage (const char *text, bool help);

/* Usage errors, for commands that set opterr = 0: one line saying what
 * is wrong, then the hint; they return EXIT_USAGE.  bad_option reports
 * what getopt_long just returned '?' or ':' for (optstring starts with
 * ':'), given the same long options.
 */
extern int usage_error (const char *fs, ...)
  __attribute__ ((format (printf, 1, 2)));
struct option;
extern int bad_option (int c, char **argv, const struct option *opts);

/* The one COW operand after the options, or NULL after a usage error. */
extern const char *one_operand (int argc, char **argv);

/* "1 record", "2 records", "0 records": printf ("%" PRIu64 " record%s",
 * n, plural_s (n)).
 */
static inline const char *
plural_s (uint64_t n)
{
  return n == 1 ? "" : "s";
}

#endif /* SNAPCOW_TOOL_H */
