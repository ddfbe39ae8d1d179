#!/usr/bin/env bash
# test-interop-nbdcopy.sh: nbdcopy a sparse file with data and zero runs
# into the export (nbdcopy sends zero requests for the zero runs), then
# nbdcopy the whole export back to a file and compare it byte for byte,
# before and after a restart.  "nbdinfo --map" shows zero extents for
# the zero runs (over origin data) and data where written.

source ./functions.sh
set -e
set -x
requires nbdcopy --version
requires nbdinfo --version
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-nbdcopy.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
uri="nbd+unix:///?socket=$sock"

# An origin full of data, 6M + 777 bytes; a new image of the same size
# with 256K runs alternating: data, zero bytes, a hole, data, ...
$PYTHON -c '
import random, sys
r = random.Random(5)
size = 6 * 1024 * 1024 + 777
open(sys.argv[1], "wb").write(r.randbytes(size))
with open(sys.argv[2], "wb") as f:
    run = 256 * 1024
    for i, off in enumerate(range(0, size, run)):
        n = min(run, size - off)
        if i % 3 == 0:
            f.seek(off)
            f.write(r.randbytes(n))
        elif i % 3 == 1:
            f.seek(off)
            f.write(bytes(n))
    f.truncate(size)
' $d/origin $d/new
o=$(md5sum < $d/origin)

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow \
             chunk-size=64K
nbdcopy $d/new "$uri"
nbdcopy "$uri" $d/out
cmp $d/out $d/new

nbdinfo --map --json "$uri" > $d/map.json
cat $d/map.json
$PYTHON -c '
import json, sys
m = json.load(open(sys.argv[1]))
run = 256 * 1024
size = 6 * 1024 * 1024 + 777
assert m[0]["offset"] == 0 and sum(e["length"] for e in m) == size
for i, off in enumerate(range(0, size, run)):
    n = min(run, size - off)
    for e in m:
        if e["offset"] < off + n and off < e["offset"] + e["length"]:
            zero = bool(e["type"] & 2)
            # Runs of zeroes and holes read as zeroes: zero extents.
            assert zero == (i % 3 != 0), (i, off, e)
' $d/map.json

stop_nbdkit $d/pid
$PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded \
        --chunk-size 65536
cmp $d/decoded $d/new
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
rm $d/out
nbdcopy "$uri" $d/out
cmp $d/out $d/new
stop_nbdkit $d/pid

test "$(md5sum < $d/origin)" = "$o"
