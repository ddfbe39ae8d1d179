#!/usr/bin/env bash
# test-tool-check.sh: snapcow check lists every problem of a store with
# its area and record, not just the first; stray data the kernel
# ignores is a warning; the exit status says which (0 clean or warnings
# only, 1 errors, 2 unreadable).  Nothing is written.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"

d=$(mktemp -d /tmp/snapcow-tool-check.XXXXXX)
cleanup_fn rm -rf "$d"

# check_store STATUS COW [ARGS...]: run check, keep its output in $d/out.
check_store ()
{
    local want=$1 st=0 sum
    shift
    sum=$(md5sum < "${@: -1}")
    snapcow_tool check "$@" > "$d/out" 2>&1 || st=$?
    cat "$d/out"
    test "$(md5sum < "${@: -1}")" = "$sum"
    if [ $st -ne "$want" ]; then
        echo "$0: snapcow check $*: exit status $st, expected $want" >&2
        exit 1
    fi
}

# A clean store.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/good.cow" 4096 2097152 seq:300
check_store 0 "$d/good.cow"
grep -x "$d/good.cow: 300 records in 2 areas, chunk size 4096: 0 errors, 0 warnings" "$d/out"

# Four problems in one area (4K chunks: area 1 is chunk 258), all listed.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/bad.cow" 4096 2097152 \
    10:2,11:258,12:99999,10:3,13:2,14:4
check_store 1 "$d/bad.cow"
grep -x "error: area 0 record 1: new_chunk 258 points at a metadata area" "$d/out"
grep -x "error: area 0 record 2: new_chunk 99999 is past the end of the store (512 chunks)" "$d/out"
grep -x "error: area 0 record 3: duplicate old_chunk 10 (already mapped to new_chunk 2)" "$d/out"
grep -x "error: area 0 record 4: new_chunk 2 is also used by area 0 record 0" "$d/out"
grep -x "$d/bad.cow: 6 records in 1 area, chunk size 4096: 4 errors, 0 warnings" "$d/out"

# Duplicate old chunks and nothing else wrong in the records, over 3
# areas: found only at the end of the bulk load, so the check walks the
# store again one record at a time.  Each is named at its record, and
# nothing is said or counted twice (the whole output is compared).
recs=$($PYTHON -c '
dc = lambda i: 2 + i + i // 256         # the i-th data chunk, 4K chunks
r = [[i, dc(i)] for i in range(600)]
r[300][0] = 7                           # area 1 record 44
r[550][0] = 100                         # area 2 record 38
print(",".join("%d:%d" % (o, n) for o, n in r))')
$PYTHON "$abs_srcdir/tool-store.py" build "$d/dup.cow" 4096 4194304 "$recs" \
    stray-after-terminator
check_store 1 "$d/dup.cow"
cat > "$d/expected" <<EOF
error: area 1 record 44: duplicate old_chunk 7 (already mapped to new_chunk 9)
error: area 2 record 38: duplicate old_chunk 100 (already mapped to new_chunk 102)
warning: area 2: bytes after the terminator (record 88) are not zero; the kernel ignores them
$d/dup.cow: 600 records in 3 areas, chunk size 4096: 2 errors, 1 warning
EOF
grep -v "^+" "$d/out" | diff -u "$d/expected" -   # less the shell trace

# More table entries than the sample of areas predicts (presize.c reads
# areas 0, 10, 20, 30 and 40 of 41, consecutive here, the rest random):
# the bulk load ends early and the rest are checked one by one, and a
# duplicate past that point is named at its record.  512-byte chunks, 32
# records an area.
recs=$($PYTHON -c '
import random
E = 32
n = 40 * E + 10
rnd = iter(random.Random(7).sample(range(n, 100 * n), n))
olds = [i if i // E in (0, 10, 20, 30, 40) else next(rnd) for i in range(n)]
olds[35 * E + 3] = olds[12 * E + 9]
print(",".join("%d:%d" % (o, 2 + i + i // E) for i, o in enumerate(olds)))')
$PYTHON "$abs_srcdir/tool-store.py" build "$d/grow.cow" 512 $(( 1400 * 512 )) \
    "$recs"
check_store 1 "$d/grow.cow"
dup_old=$(echo "$recs" | tr , '\n' | sed -n $(( 35 * 32 + 4 ))p | cut -d: -f1)
cat > "$d/expected" <<EOF
error: area 35 record 3: duplicate old_chunk $dup_old (already mapped to new_chunk $(( 2 + 12 * 32 + 9 + 12 )))
$d/grow.cow: 1290 records in 41 areas, chunk size 512: 1 error, 0 warnings
EOF
grep -v "^+" "$d/out" | diff -u "$d/expected" -

# Counts of one are singular.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/one.cow" 4096 1048576 5:2
check_store 0 "$d/one.cow"
grep -x "$d/one.cow: 1 record in 1 area, chunk size 4096: 0 errors, 0 warnings" "$d/out"
$PYTHON "$abs_srcdir/tool-store.py" build "$d/one-bad.cow" 4096 1048576 \
    5:2,6:1 stray-after-terminator
check_store 1 "$d/one-bad.cow"
grep -x "$d/one-bad.cow: 2 records in 1 area, chunk size 4096: 1 error, 1 warning" "$d/out"

# With the origin: old_chunk past its end (an origin of 3 chunks).
truncate -s 12288 "$d/small.img"
$PYTHON "$abs_srcdir/tool-store.py" build "$d/o.cow" 4096 1048576 1:2,5:3,2:4,9:5
check_store 1 --origin="$d/small.img" "$d/o.cow"
grep -q "^error: area 0 record 1: old_chunk 5 is past the end of the origin (3 chunks)" "$d/out"
grep -q "^error: area 0 record 3: old_chunk 9 is past the end of the origin (3 chunks)" "$d/out"
grep -q "2 errors" "$d/out"
check_store 0 "$d/o.cow"                # without the origin: no bound

# Stray data: warnings only.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/stray.cow" 4096 2097152 seq:5 \
    stray-after-terminator dirty-next-area data-past-next-free
check_store 0 "$d/stray.cow"
grep -x "warning: area 0: bytes after the terminator (record 5) are not zero; the kernel ignores them" "$d/out"
grep -q "^warning: 1 metadata area(s) after the current one (area 0) are not zeroed" "$d/out"
grep -q "^warning: 1 data chunk(s) past the next free chunk 7 hold data (the first is chunk 9)" "$d/out"
grep -q "0 errors, 3 warnings" "$d/out"

# Stray data at the very end of a chunk of a sparse file, after a hole
# that starts inside the chunk (16K chunks, 4K filesystem blocks).
$PYTHON "$abs_srcdir/tool-store.py" build "$d/sp.cow" 16384 2097152 seq:3
cp --sparse=always "$d/sp.cow" "$d/sparse.cow"
printf 'x' | dd of="$d/sparse.cow" bs=1 seek=$(( 20 * 16384 + 16383 )) \
    conv=notrunc status=none
check_store 0 "$d/sparse.cow"
grep -q "^warning: 1 data chunk(s) past the next free chunk 5 hold data (the first is chunk 20)" "$d/out"

# Chunks leaked by a crash: allocated below the next free chunk, used
# by no record (chunks 4 and 6 here).
$PYTHON "$abs_srcdir/tool-store.py" build "$d/leak.cow" 4096 1048576 1:2,2:3,3:5,4:7
check_store 0 "$d/leak.cow"
grep -x "warning: 2 data chunk(s) below the next free chunk are used by no record (the first is chunk 4): space leaked by a crash or a failed copy" "$d/out"

# A full last area with no room for the next one.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/trunc.cow" 4096 $(( (2 + 256) * 4096 )) seq:256
check_store 1 "$d/trunc.cow"
grep -q "^error: area 1 (chunk 258) is past the end of the store (258 chunks): the last area is full" "$d/out"

# Too small for a header and an area; invalidated; a bad header.
$PYTHON "$abs_srcdir/tool-store.py" build "$d/tiny.cow" 4096 4096 ""
check_store 1 "$d/tiny.cow"
grep -x "error: the store is too small for a header and one area" "$d/out"
$PYTHON "$abs_srcdir/tool-store.py" build "$d/inval.cow" 4096 1048576 seq:3 valid=0
check_store 1 "$d/inval.cow"
grep -q "^error: the store is invalidated (header valid=0)" "$d/out"
$PYTHON "$abs_srcdir/tool-store.py" build "$d/v2.cow" 4096 1048576 seq:3 version=2
check_store 1 "$d/v2.cow"
grep -x "error: unsupported store version 2 (only version 1 exists)" "$d/out"

# What cannot be read at all: 2.
st=0; snapcow_tool check "$d/nonexistent" || st=$?
test $st -eq 2
st=0; snapcow_tool check --origin="$d/nonexistent" "$d/good.cow" || st=$?
test $st -eq 2
