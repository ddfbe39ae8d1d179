#!/usr/bin/env bash
# test-tool-info.sh: snapcow info prints the usage line exactly as the
# kernel's dmsetup status does: for the stores in cow-format.md's table
# of real kernel lines, for stores the plugin wrote at 4K, 16K and 64K
# chunks (against tests/tool-store.py's independent figures), and
# "Invalid" for an invalidated store, whose records and figures it still
# gives.  --json says the same.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires nbdsh --version

d=$(mktemp -d /tmp/snapcow-tool-info.XXXXXX)
cleanup_fn rm -rf "$d"

usage_of () { snapcow_tool info "$1" | sed -n 's/^usage: //p'; }

# The kernel's own lines (cow-format.md, "Usage figures"): an 8 MiB COW.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/k673.cow" 4096 8388608 seq:673
test "$(usage_of "$d/k673.cow")" = "5416/16384 32"
$PYTHON "$abs_srcdir/tool-store.py" build "$d/k256.cow" 4096 8388608 seq:256
test "$(usage_of "$d/k256.cow")" = "2072/16384 24"
snapcow_tool info "$d/k673.cow" | grep -x "records: 673"
snapcow_tool info "$d/k673.cow" | grep -x "areas: 3"
snapcow_tool info "$d/k673.cow" | grep -x "next_free_chunk: 677"

$PYTHON "$abs_srcdir/tool-store.py" build "$d/inval.cow" 4096 8388608 seq:20 valid=0
test "$(usage_of "$d/inval.cow")" = "Invalid"

# --json: the same facts.
snapcow_tool info --json "$d/k673.cow" > "$d/j"
$PYTHON -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["status"] == "valid" and j["usage"] == "5416/16384 32", j
assert j["records"] == 673 and j["areas"] == 3 and j["chunk_size"] == 4096
assert (j["allocated_sectors"], j["total_sectors"], j["metadata_sectors"]) \
    == (5416, 16384, 32)
' "$d/j"
snapcow_tool info --json "$d/inval.cow" | $PYTHON -c '
import json, sys
j = json.load(sys.stdin)
assert j["status"] == "Invalid" and j["usage"] == "Invalid" and j["valid"] == 0
assert j["records"] == 20 and j["areas"] == 1 and j["next_free_chunk"] == 22, j
'

# An invalidated store cannot be opened, but its records are still on
# disk: info gives every figure it gives for the same store still
# valid, and only the usage line says Invalid, as the kernel's does.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/i673.cow" 4096 8388608 seq:673 valid=0
snapcow_tool info --json "$d/i673.cow" > "$d/ji"
$PYTHON -c '
import json, sys
i = json.load(open(sys.argv[1]))
v = json.load(open(sys.argv[2]))
assert i["status"] == "Invalid" and i["usage"] == "Invalid" and i["valid"] == 0
assert set(i) == set(v), set(i) ^ set(v)
for k in v:
    if k not in ("file", "status", "valid", "usage"):
        assert i[k] == v[k], (k, i[k], v[k])
assert i["records"] == 673 and i["metadata_sectors"] == 32, i
' "$d/ji" "$d/j"
snapcow_tool info "$d/i673.cow" > "$d/ti"
snapcow_tool info "$d/k673.cow" |
    sed -e "s|$d/k673.cow|$d/i673.cow|" -e 's/^valid: 1$/valid: 0/' \
        -e 's/^usage: .*/usage: Invalid/' | diff - "$d/ti"

# Stores the plugin wrote.
truncate -s 20971008 "$d/origin.img"          # 20 MiB - 512: a partial chunk
for cs in 4096 16384 65536; do
    rm -f "$d/s.cow"
    start_nbdkit -P "$d/pid" -U "$d/sock" "$SNAPCOW_PLUGIN" \
        "$d/origin.img" cow="$d/s.cow" chunk-size=$cs
    nbdsh -u "nbd+unix:///?socket=$d/sock" -c '
import random
r = random.Random('"$cs"')
size = h.get_size()
for i in range(1200):
    h.pwrite(r.randbytes(700), r.randrange(0, size - 700))
h.pwrite(b"end", size - 3)
h.flush()
'
    stop_nbdkit "$d/pid"
    test "$(usage_of "$d/s.cow")" = "$($PYTHON "$abs_srcdir/tool-store.py" usage "$d/s.cow")"
    test "$(snapcow_tool info "$d/s.cow" | sed -n 's/^records: //p')" = \
         "$($PYTHON "$abs_srcdir/tool-store.py" records "$d/s.cow" | wc -l)"
done
