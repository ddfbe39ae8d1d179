#!/usr/bin/env bash
# test-tool-map.sh: snapcow map --json tiles the whole disk as
# `qemu-img map --output=json` does: changed chunks at depth 0 with
# their offset in the COW file, a punched one (trimmed or zeroed
# through nbdkit) as zero and not data; unchanged ranges at depth 1,
# the origin, whose holes are zero when --origin is given.  Neighbours
# merge only when their flags match and their offsets run on.  The
# JSON is asserted exactly, and each range is checked against the
# bytes: what it says is what the snapshot reads.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires nbdsh --version
requires fallocate --help

d=$(mktemp -d /tmp/snapcow-tool-map.XXXXXX)
cleanup_fn rm -rf "$d"

# Holes must show: skip on a filesystem that cannot punch or report them.
head -c 65536 /dev/urandom > "$d/probe"
fallocate -p -o 16384 -l 16384 "$d/probe" ||
    { echo "$0: cannot punch holes here: test skipped"; exit 77; }
$PYTHON -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.exit(0 if os.lseek(fd, 16384, os.SEEK_HOLE) == 16384 and
         os.lseek(fd, 16384, os.SEEK_DATA) == 32768 else 77)
' "$d/probe" || { echo "$0: holes are not reported here: test skipped"; exit 77; }

# The origin: 10 chunks of 4K and a partial one of 512 bytes; chunks 4
# and 5 are a hole.
$PYTHON -c '
import random, sys
r = random.Random(1)
f = open(sys.argv[1], "wb")
f.write(r.randbytes(16384))
f.seek(24576)
f.write(r.randbytes(41472 - 24576))
' "$d/origin.img"

start_nbdkit -P "$d/pid" -U "$d/sock" "$SNAPCOW_PLUGIN" "$d/origin.img" \
    cow="$d/s.cow" chunk-size=4K
# One client, one request at a time: the chunks are allocated in this
# order, from chunk 2 of the store on.
nbdsh -u "nbd+unix:///?socket=$d/sock" -c '
import random
r = random.Random(2)
h.pwrite(r.randbytes(4096), 4096)       # chunk 1 -> 2
h.pwrite(r.randbytes(4096), 8192)       # chunk 2 -> 3
h.pwrite(r.randbytes(4096), 12288)      # chunk 3 -> 4, then punched:
h.trim(4096, 12288)
h.zero(4096, 24576)                     # chunk 6 -> 5, punched
h.pwrite(r.randbytes(4096), 28672)      # chunk 7 -> 6
h.pwrite(r.randbytes(4096), 36864)      # chunk 9 -> 7
h.pwrite(r.randbytes(4096), 32768)      # chunk 8 -> 8
h.pwrite(r.randbytes(512), 40960)       # chunk 10 (partial) -> 9
h.flush()
open("'"$d"'/snap.img", "wb").write(h.pread(h.get_size(), 0))
'
stop_nbdkit "$d/pid"

snapcow_tool map --json --origin="$d/origin.img" "$d/s.cow" > "$d/map.json"
cat > "$d/expected" <<'EOF'
[{ "start": 0, "length": 4096, "depth": 1, "present": true, "zero": false, "data": true, "offset": 0},
{ "start": 4096, "length": 8192, "depth": 0, "present": true, "zero": false, "data": true, "offset": 8192},
{ "start": 12288, "length": 4096, "depth": 0, "present": true, "zero": true, "data": false, "offset": 16384},
{ "start": 16384, "length": 8192, "depth": 1, "present": true, "zero": true, "data": false, "offset": 16384},
{ "start": 24576, "length": 4096, "depth": 0, "present": true, "zero": true, "data": false, "offset": 20480},
{ "start": 28672, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 24576},
{ "start": 32768, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 32768},
{ "start": 36864, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 28672},
{ "start": 40960, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 36864}]
EOF
diff -u "$d/expected" "$d/map.json"

# Each range reads as it says: depth 0 from the COW file at offset,
# depth 1 from the origin at offset; zero ranges are zeroes.
$PYTHON -c '
import json, sys
m = json.load(open(sys.argv[1]))
files = [open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()]
snap = open(sys.argv[4], "rb").read()
pos = 0
for e in m:
    s, n, off = e["start"], e["length"], e["offset"]
    assert s == pos, e
    src = files[e["depth"]][off:off + n]
    assert src == snap[s:s + n], e
    assert e["zero"] == (not e["data"]) and e["zero"] == (src == bytes(n)), e
    pos = s + n
assert pos == len(snap)
' "$d/map.json" "$d/s.cow" "$d/origin.img" "$d/snap.img"

# Without --origin: the origin size and holes are unknown, so the map
# stops at the end of the last changed chunk (whole chunks) and the
# origin is data.
snapcow_tool map --json "$d/s.cow" > "$d/map-no-origin.json"
cat > "$d/expected" <<'EOF'
[{ "start": 0, "length": 4096, "depth": 1, "present": true, "zero": false, "data": true, "offset": 0},
{ "start": 4096, "length": 8192, "depth": 0, "present": true, "zero": false, "data": true, "offset": 8192},
{ "start": 12288, "length": 4096, "depth": 0, "present": true, "zero": true, "data": false, "offset": 16384},
{ "start": 16384, "length": 8192, "depth": 1, "present": true, "zero": false, "data": true, "offset": 16384},
{ "start": 24576, "length": 4096, "depth": 0, "present": true, "zero": true, "data": false, "offset": 20480},
{ "start": 28672, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 24576},
{ "start": 32768, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 32768},
{ "start": 36864, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 28672},
{ "start": 40960, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 36864}]
EOF
diff -u "$d/expected" "$d/map-no-origin.json"

# The text form: the changed ranges only, as qemu-img map prints them.
snapcow_tool map --origin="$d/origin.img" "$d/s.cow" > "$d/map.txt"
cat > "$d/expected" <<EOF
Offset          Length          Mapped to       File
0x1000          0x2000          0x2000          $d/s.cow
0x3000          0x1000          0x4000          $d/s.cow
0x6000          0x1000          0x5000          $d/s.cow
0x7000          0x1000          0x6000          $d/s.cow
0x8000          0x1000          0x8000          $d/s.cow
0x9000          0x1000          0x7000          $d/s.cow
0xa000          0x200           0x9000          $d/s.cow
EOF
diff -u "$d/expected" "$d/map.txt"

# An empty store: all origin, one range.
rm -f "$d/e.cow"
snapcow_tool create --chunk-size=4K "$d/e.cow"
test "$(snapcow_tool map --json --origin="$d/origin.img" "$d/e.cow")" = \
'[{ "start": 0, "length": 16384, "depth": 1, "present": true, "zero": false, "data": true, "offset": 0},
{ "start": 16384, "length": 8192, "depth": 1, "present": true, "zero": true, "data": false, "offset": 16384},
{ "start": 24576, "length": 16896, "depth": 1, "present": true, "zero": false, "data": true, "offset": 24576}]'
test "$(snapcow_tool map --json "$d/e.cow")" = "[]"
