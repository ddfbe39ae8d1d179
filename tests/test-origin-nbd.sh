#!/usr/bin/env bash
# test-origin-nbd.sh: origin= as an NBD URI.  The origin is served
# read-only by a second nbdkit; snapcow reads it through libnbd, takes
# writes into its store, keeps them across a restart, never writes the
# origin, and reports the origin's holes as zero extents.
source ./functions.sh
set -e
set -x
requires nbdsh --version
requires nbdinfo --version

d=$(mktemp -d /tmp/snapcow-origin-nbd.XXXXXX)
cleanup_fn rm -rf "$d"
truncate -s 10M "$d/base.img"
# Data in the second and third MiB; the rest of the origin is a hole.
$PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes(2 << 20))' |
    dd of="$d/base.img" bs=1M seek=1 conv=notrunc status=none
before=$(md5sum < "$d/base.img")

start_nbdkit -P "$d/origin.pid" -U "$d/origin.sock" -r file "$d/base.img"
uri="nbd+unix:///?socket=$d/origin.sock"

start_nbdkit -P "$d/snap.pid" -U "$d/snap.sock" \
    "$SNAPCOW_PLUGIN" "$uri" cow="$d/snap.cow" chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$d/snap.sock" -c '
import random
base = open("'"$d"'/base.img", "rb").read()
exp = bytearray(base)
assert h.get_size() == len(base)
assert h.pread(len(base), 0) == base
rnd = random.Random(11)
for i in range(200):
    off = rnd.randrange(0, len(exp) - 70000)
    n = rnd.randrange(1, 70000)
    d = rnd.randbytes(n)
    h.pwrite(d, off)
    exp[off:off+n] = d
assert h.pread(len(exp), 0) == exp
h.flush()
open("'"$d"'/expected.img", "wb").write(exp)
'
stop_nbdkit "$d/snap.pid"

# Restart on the same store: every write is there.
start_nbdkit -P "$d/snap.pid" -U "$d/snap.sock" \
    "$SNAPCOW_PLUGIN" "$uri" cow="$d/snap.cow"
nbdsh -u "nbd+unix:///?socket=$d/snap.sock" -c '
assert h.pread(h.get_size(), 0) == open("'"$d"'/expected.img", "rb").read()
'
# Zero the last MiB (chunks written above and origin holes alike): it
# reads back as one hole,zero extent.
nbdsh -u "nbd+unix:///?socket=$d/snap.sock" -c '
h.zero(1 << 20, 9 << 20)
assert h.pread(1 << 20, 9 << 20) == bytes(1 << 20)
'
nbdinfo --map "nbd+unix:///?socket=$d/snap.sock" > "$d/map"
cat "$d/map"
grep -E '^ *9437184 +1048576 +3 +hole,zero$' "$d/map"
stop_nbdkit "$d/snap.pid"

test "$(md5sum < "$d/base.img")" = "$before"

# A URI nobody answers is one clear error.
status=0
nbdkit_fails "$d/err" -U "$d/x.sock" "$SNAPCOW_PLUGIN" \
    "nbd+unix:///?socket=$d/nothing.sock" cow="$d/x.cow" || status=$?
if [ $status -eq 0 ] || [ $status -eq 124 ]; then
    echo "$0: started without an origin server (status $status)" >&2
    exit 1
fi
cat "$d/err"
grep -q "origin nbd+unix:///?socket=$d/nothing.sock: nbd_connect_uri" "$d/err"
test ! -e "$d/x.cow"
