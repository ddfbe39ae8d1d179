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

/* Open a store read-only, validated, without its origin (NULL origin)
 * or with one.  -1 with a message on failure.
 */
struct opened {
  struct cow_io *cow, *origin;
  struct cow_store *store;
};
extern int open_store_readonly (const char *path, const char *origin,
                                struct opened *o);
extern void close_store (struct opened *o);

/* "16K", "1M", "4096": bytes; -1 if it is not a size. */
extern int64_t parse_size (const char *s);

extern void json_string (FILE *fp, const char *s);

/* Print the command's usage: to stdout for --help, else to stderr with
 * exit 2.
 */
extern int usage (const char *text, bool help);

#endif /* SNAPCOW_TOOL_H */
