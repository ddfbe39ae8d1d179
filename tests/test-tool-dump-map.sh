#!/usr/bin/env bash
# test-tool-dump-map.sh: snapcow dump lists the records of a store the
# plugin wrote in on-disk order (against tests/tool-store.py's reading
# of the bytes), and snapcow map tiles the disk: every byte where the
# snapshot differs from the origin lies in a changed range, each
# range's offset holds that range's data in the COW file or the
# origin (test-tool-map.sh asserts the exact JSON, holes included).
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires nbdsh --version

d=$(mktemp -d /tmp/snapcow-tool-map.XXXXXX)
cleanup_fn rm -rf "$d"
size=$(( 12 * 1024 * 1024 - 1536 ))            # ends in a partial chunk
$PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(5).randbytes('$size'))' > "$d/origin.img"

start_nbdkit -P "$d/pid" -U "$d/sock" "$SNAPCOW_PLUGIN" "$d/origin.img" \
    cow="$d/s.cow" chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$d/sock" -c '
import random
r = random.Random(9)
snap = bytearray(open("'"$d"'/origin.img", "rb").read())
for i in range(400):
    n = r.choice([1, 512, 4096, 9000, 40000])
    off = r.randrange(0, len(snap) - n)
    data = r.randbytes(n)
    h.pwrite(data, off)
    snap[off:off + n] = data
h.pwrite(b"tail", len(snap) - 4)
snap[-4:] = b"tail"
h.flush()
open("'"$d"'/snap.img", "wb").write(snap)
'
stop_nbdkit "$d/pid"

# dump: the records, in on-disk order.
snapcow_tool dump "$d/s.cow" | grep -v '^#' > "$d/dump"
$PYTHON "$abs_srcdir/tool-store.py" records "$d/s.cow" > "$d/expected"
test -s "$d/expected"
cmp "$d/dump" "$d/expected"
snapcow_tool dump --json "$d/s.cow" | $PYTHON -c '
import json, sys
got = [(r["area"], r["index"], r["old_chunk"], r["new_chunk"])
       for r in json.load(sys.stdin)]
want = [tuple(int(x) for x in l.split()) for l in open(sys.argv[1])]
assert got == want, (len(got), len(want))
' "$d/expected"

# map: the JSON tiles the disk; the changed ranges (depth 0) cover
# every changed byte and hold the data at their offsets in the COW
# file, the others (depth 1) are the origin's bytes; the text form
# lists the changed ranges, the same ones.
snapcow_tool map --json --origin="$d/origin.img" "$d/s.cow" > "$d/map.json"
snapcow_tool map --origin="$d/origin.img" "$d/s.cow" > "$d/map.txt"
$PYTHON -c '
import json, sys
m = json.load(open(sys.argv[1]))
origin = open(sys.argv[2], "rb").read()
snap = open(sys.argv[3], "rb").read()
cow = open(sys.argv[4], "rb").read()
text = open(sys.argv[5]).read().splitlines()[1:]
changed = [e for e in m if e["depth"] == 0]
assert [[int(x, 16) for x in l.split()[:3]] for l in text] == \
    [[e[k] for k in ("start", "length", "offset")] for e in changed]
covered = bytearray(len(origin))
pos = 0
for e in m:
    s, n, off = e["start"], e["length"], e["offset"]
    # The random origin and data have no holes.
    assert e["present"] and e["data"] and not e["zero"], e
    assert s == pos and n > 0, e
    if e["depth"] == 0:
        assert s % 4096 == 0, e
        assert cow[off:off + n] == snap[s:s + n], "range at %d: wrong data" % s
        covered[s:s + n] = b"\1" * n
    else:
        assert e["depth"] == 1 and off == s, e
        assert origin[s:s + n] == snap[s:s + n], "range at %d: changed" % s
    pos = s + n
assert pos == len(origin), m[-1]
# Neighbours with the same flags stay apart only when their offsets do
# not run on.
for a, b in zip(m, m[1:]):
    assert a["depth"] != b["depth"] or a["offset"] + a["length"] != b["offset"], (a, b)
diff = [i for i in range(0, len(origin), 512)
        if origin[i:i+512] != snap[i:i+512] and not covered[i]]
assert not diff, "changed sectors outside the map: %r" % diff[:5]
print(len(m), "ranges,", len(changed), "changed")
' "$d/map.json" "$d/origin.img" "$d/snap.img" "$d/s.cow" "$d/map.txt"
