/* files.h: opening and checking the files the plugin serves
 * (files.c).
 */
#ifndef SNAPCOW_FILES_H
#define SNAPCOW_FILES_H

#include <sys/stat.h>

#include "io.h"

/* Open a file or block device and check its type (what names it in
 * messages: "origin", "COW store").  The fd, or -1 with the error said.
 */
extern int open_file (const char *what, const char *path, int flags,
                      struct stat *st);

/* The backend over fd, which it takes over (closed on failure too);
 * NULL with the error said.
 */
extern struct cow_io *fd_backend (const char *what, const char *path, int fd);

/* The directory of a store not created yet exists and is writable: 0,
 * or -1 with the error said.
 */
extern int check_cow_dir (const char *path);

/* Where a file not created yet will be: its directory's real path and
 * its own name (malloc'd), or NULL.
 */
extern char *future_path (const char *path);

#endif /* SNAPCOW_FILES_H */
