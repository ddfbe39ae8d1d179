#!/usr/bin/env bash
# test-origin-nbd-cache.sh: the NBD origin's prefetch (the cow_io cache
# op of plugin/origin-nbd.c, driven by the origin-nbd-cache helper).  A
# server that has NBD_CMD_CACHE gets the range, split at its maximum
# request size; a server without it gets nothing, and the prefetch
# still succeeds.
source ./functions.sh
set -e
set -x
requires nbdkit --filter=log --filter=blocksize-policy --filter=nocache \
    null --version

d=$(mktemp -d /tmp/snapcow-cache.XXXXXX)
cleanup_fn rm -rf "$d"
truncate -s 1M "$d/base.img"

# The Cache requests a server's log filter saw: "OFFSET COUNT" per line.
caches ()
{
    sed -n 's/.* Cache id=[0-9]* offset=\(0x[0-9a-f]*\) count=\(0x[0-9a-f]*\) .*/\1 \2/p' "$1"
}

# A server that caches, 64K at most per request: 200K at 128K go as
# three requests of 64K and one of 8K.
start_nbdkit -P "$d/o1.pid" -U "$d/o1.sock" -r \
    --filter=log --filter=blocksize-policy file "$d/base.img" \
    logfile="$d/log1" blocksize-maximum=64K
./origin-nbd-cache "nbd+unix:///?socket=$d/o1.sock" 131072 204800 > "$d/out1"
stop_nbdkit "$d/o1.pid"
cat "$d/out1" "$d/log1"
grep -qx "cache: 0" "$d/out1"
caches "$d/log1" > "$d/caches1"
printf '%s\n' "0x20000 0x10000" "0x30000 0x10000" "0x40000 0x10000" \
       "0x50000 0x2000" | diff - "$d/caches1"

# A server without NBD_CMD_CACHE: nothing is sent, and that is no error.
start_nbdkit -P "$d/o2.pid" -U "$d/o2.sock" -r \
    --filter=log --filter=nocache file "$d/base.img" \
    logfile="$d/log2" cachemode=none
./origin-nbd-cache "nbd+unix:///?socket=$d/o2.sock" 131072 204800 > "$d/out2"
stop_nbdkit "$d/o2.pid"
cat "$d/out2" "$d/log2"
grep -qx "cache: 0" "$d/out2"
grep -q "cache=0" "$d/log2"
test "$(caches "$d/log2" | wc -l)" = 0
