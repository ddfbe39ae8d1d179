#!/usr/bin/env bash
# test-rw-restart-4k.sh: read, write and restart at 4K chunks, with
# the COW file checked by decode-store.py (body in rw-restart.sh).
# FILL1 distinct chunks before the first restart, FILL2 after the second
# round of writes.

source ./functions.sh
set -e
set -x

CHUNK=4096
SIZE=4206649    # not a multiple of 64K: a last partial chunk
FILL1=830
FILL2=960
source $abs_srcdir/rw-restart.sh
