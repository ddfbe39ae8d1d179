#!/usr/bin/env bash
# test-tool-check-overflow.sh: with no origin given, an old_chunk whose
# chunk ends past 2^64 bytes is an error for snapcow check (each such
# record listed), and every command that opens the store refuses it
# (the table key old_chunk + 1 once wrapped, and map printed wrapped
# ranges).  At 4K chunks the limit is 2^52 chunks: 2^52 - 1 is fine.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"

d=$(mktemp -d /tmp/snapcow-tool-overflow.XXXXXX)
cleanup_fn rm -rf "$d"

# put_old COW RECORD OLD: set record RECORD of area 0 (chunk 1 at 4K)
# to old_chunk OLD, little-endian, leaving its new_chunk.
put_old ()
{
    $PYTHON -c '
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096 + 16 * int(sys.argv[2]))
    f.write(struct.pack("<Q", int(sys.argv[3])))
' "$@"
}

msg ()
{
    echo "area 0 record $1: old_chunk $2 ends past 2^64 bytes: no origin has more than 4503599627370496 chunks of 4096 bytes"
}

# The largest old_chunk that fits: clean.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/ok.cow" 4096 1048576 7:2,8:3,9:4
put_old "$d/ok.cow" 1 $(( (1 << 52) - 1 ))
snapcow_tool check "$d/ok.cow" > "$d/out"
cat "$d/out"
grep -q ": 0 errors, 0 warnings" "$d/out"

# One past it, and 2^64 - 1 twice: three errors, each with its record.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/bad.cow" 4096 1048576 \
    7:2,8:3,9:4,10:5,11:6
put_old "$d/bad.cow" 1 $(( 1 << 52 ))
put_old "$d/bad.cow" 2 18446744073709551615
put_old "$d/bad.cow" 4 18446744073709551615
sum=$(md5sum < "$d/bad.cow")
st=0
snapcow_tool check "$d/bad.cow" > "$d/out" 2>&1 || st=$?
cat "$d/out"
test $st -eq 1
grep -x "error: $(msg 1 4503599627370496)" "$d/out"
grep -x "error: $(msg 2 18446744073709551615)" "$d/out"
grep -x "error: $(msg 4 18446744073709551615)" "$d/out"
test "$(grep -c '^error:' "$d/out")" -eq 3
grep -q ": 3 errors, 0 warnings" "$d/out"

# The loader refuses it at the first bad record, for every command.
for cmd in info dump map; do
    st=0
    snapcow_tool $cmd "$d/bad.cow" > "$d/out" 2>&1 || st=$?
    cat "$d/out"
    test $st -ne 0
    grep -qF "$d/bad.cow: $(msg 1 4503599627370496)" "$d/out"
done
test "$(md5sum < "$d/bad.cow")" = "$sum"
