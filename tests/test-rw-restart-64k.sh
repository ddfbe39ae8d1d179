#!/usr/bin/env bash
# test-rw-restart-64k.sh: read, write and restart at 64K chunks, with
# the COW file checked by decode-store.py (body in rw-restart.sh).
# FILL1 distinct chunks before the first restart, FILL2 after the second
# round of writes.

source ./functions.sh
set -e
set -x

CHUNK=65536
SIZE=25178169    # not a multiple of 64K: a last partial chunk
FILL1=250
FILL2=330
source $abs_srcdir/rw-restart.sh
