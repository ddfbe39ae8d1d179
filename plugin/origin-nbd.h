/* origin-nbd.h: an origin read from an NBD server through libnbd. */
#ifndef SNAPCOW_ORIGIN_NBD_H
#define SNAPCOW_ORIGIN_NBD_H

#include <stdbool.h>

#include "io.h"

/* True if name is an NBD URI (nbd://, nbds://, nbd+unix://, ...). */
extern bool origin_is_nbd_uri (const char *name);

/* Connect to the URI; NULL with an nbdkit_error on failure. */
extern struct cow_io *origin_nbd_open (const char *uri);

#endif /* SNAPCOW_ORIGIN_NBD_H */
