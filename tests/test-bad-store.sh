#!/usr/bin/env bash
# test-bad-store.sh: every kind of corrupt store (and origin) is refused
# at startup with one clear error line naming the problem, writable and
# with -r, and neither the origin nor the store is changed by the try.
# The stores come from make-bad-store.py, written from cow-format.md.

source ./functions.sh
set -e
set -x

d=$(mktemp -d /tmp/snapcow-bad-store.XXXXXX)
cleanup_fn rm -rf "$d"
P="$SNAPCOW_PLUGIN"
make_store="$PYTHON $srcdir/make-bad-store.py"

truncate -s 1M $d/origin
printf 'origin data' | dd of=$d/origin conv=notrunc status=none
mkdir $d/dir
ln -s $d/nowhere $d/dangling

# refused CASE ORIGIN MESSAGE: build store CASE, then nbdkit must refuse
# it, writable and read-only, with exactly one error line that contains
# MESSAGE, leaving both files byte for byte as they were.
refused ()
{
    local case="$1" origin="$2" msg="$3" o c ro
    rm -f $d/cow
    $make_store "$case" $d/cow
    o=$(sha256sum < $d/origin)
    c=$(sha256sum < $d/cow)
    for ro in "" -r; do
        expect_refusal "$msg" $ro $P origin="$origin" cow=$d/cow
        test "$(sha256sum < $d/origin)" = "$o"
        test "$(sha256sum < $d/cow)" = "$c"
        test ! -e $d/sock2
    done
}

# tool_refuses CASE ORIGIN STATUS MESSAGE: snapcow check --origin finds
# the same problem in store CASE (exit STATUS: 1 a problem, 2 cannot
# read), says MESSAGE, and changes neither file.
tool_refuses ()
{
    local case="$1" origin="$2" want="$3" msg="$4" o c status=0
    rm -f $d/cow
    $make_store "$case" $d/cow
    o=$(sha256sum < $d/origin)
    c=$(sha256sum < $d/cow)
    snapcow_tool check --origin="$origin" $d/cow > $d/out 2>&1 || status=$?
    cat $d/out
    if [ $status -ne "$want" ]; then
        echo "$0: snapcow check, $case: exit status $status, expected $want"
        exit 1
    fi
    if ! grep -qF -- "$msg" $d/out; then
        echo "$0: snapcow check, $case: expected the message: $msg"
        exit 1
    fi
    test "$(sha256sum < $d/origin)" = "$o"
    test "$(sha256sum < $d/cow)" = "$c"
}

cow=$d/cow

# The same cases through the tool.
for c in "magic:bad magic 0x12345678 in the header" \
         "version2:unsupported store version 2 (only version 1 exists)" \
         "chunk0:the header's chunk size of 0 sectors is zero" \
         "chunk3:the header's chunk size of 3 sectors is not a power of two" \
         "chunk4096:the header's chunk size of 4096 sectors is above snapcow's limit of 1M" \
         "chunk4m:the header's chunk size of 4194304 sectors is above the kernel's limit of 1G" \
         "invalid:error: the store is invalidated (header valid=0)" \
         "new-meta:error: area 0 record 1: new_chunk 258 points at a metadata area" \
         "new-header:error: area 0 record 0: new_chunk 1 points at a metadata area" \
         "new-past-end:error: area 0 record 0: new_chunk 100 is past the end of the store (6 chunks)" \
         "old-past-origin:error: area 0 record 1: old_chunk 1000 is past the end of the origin (256 chunks)" \
         "dup-old:error: area 0 record 1: duplicate old_chunk 3 (already mapped to new_chunk 2)" \
         "dup-new:error: area 0 record 1: new_chunk 2 is also used by area 0 record 0" \
         "full-no-next:error: area 1 (chunk 258) is past the end of the store (258 chunks): the last area is full and has no successor" \
         "tiny:error: the store is too small for a header and one area" \
         "big-origin:error: area 0 record 0: old_chunk 990 is past the end of the origin (256 chunks)"; do
    tool_refuses "${c%%:*}" $d/origin 1 "${c#*:}"
done
tool_refuses valid $d/dir 2 "$d/dir: a directory, not a regular file or a block device"
tool_refuses valid $d/dangling 2 "$d/dangling: No such file or directory"
tool_refuses valid $d/origin 0 "0 errors, 0 warnings"

# The header.
refused magic $d/origin \
    "$cow: bad magic 0x12345678 in the header (expected 0x70416e53): not a dm-snapshot store"
refused version2 $d/origin \
    "$cow: unsupported store version 2 (only version 1 exists)"
refused chunk0 $d/origin \
    "$cow: the header's chunk size of 0 sectors is zero"
refused chunk3 $d/origin \
    "$cow: the header's chunk size of 3 sectors is not a power of two"
refused chunk4096 $d/origin \
    "$cow: the header's chunk size of 4096 sectors is above snapcow's limit of 1M"
refused chunk4m $d/origin \
    "$cow: the header's chunk size of 4194304 sectors is above the kernel's limit of 1G"
refused invalid $d/origin \
    "$cow: the store is invalidated (header valid=0)"

# The records.
refused new-meta $d/origin \
    "$cow: area 0 record 1: new_chunk 258 points at a metadata area"
refused new-header $d/origin \
    "$cow: area 0 record 0: new_chunk 1 points at a metadata area"
refused new-past-end $d/origin \
    "$cow: area 0 record 0: new_chunk 100 is past the end of the store (6 chunks)"
refused old-past-origin $d/origin \
    "$cow: area 0 record 1: old_chunk 1000 is past the end of the origin (256 chunks): is this the right origin?"
refused dup-old $d/origin \
    "$cow: area 0 record 1: duplicate old_chunk 3 (already mapped to new_chunk 2)"
refused dup-new $d/origin \
    "$cow: area 0 record 1: new_chunk 2 is also used by area 0 record 0"

# The store's size.
refused full-no-next $d/origin \
    "$cow: area 1 (chunk 258) is past the end of the store (258 chunks): the last area is full and has no successor"
refused tiny $d/origin \
    "$cow: the store is too small: 4196 bytes, less than a header and one area (8192 bytes)"

# The origin: too small for the store's records, not a file, missing.
refused big-origin $d/origin \
    "$cow: area 0 record 0: old_chunk 990 is past the end of the origin (256 chunks): is this the right origin?"
refused valid $d/dir \
    "the origin $d/dir is a directory, not a regular file or a block device"
refused valid $d/dangling \
    "origin=$d/dangling: No such file or directory"

# The same good store with its right origin is served.
$make_store valid $d/cow
$PYTHON -c 'import nbd' || exit 0
start_nbdkit -P $d/pid -U $d/sock $P origin=$d/origin cow=$d/cow -r
nbdsh -u "nbd+unix:///?socket=$d/sock" -c '
assert h.get_size() == 1024 * 1024
assert h.pread(11, 0) == bytes(11)    # old chunk 0 maps to a zero chunk
assert h.pread(4096, 10 * 4096) == bytes(4096)
'
stop_nbdkit $d/pid
