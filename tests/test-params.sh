#!/usr/bin/env bash
# test-params.sh: bad parameters and bad stores are refused at startup
# with one clear error line, and a refused store is left unchanged.
# Also: an existing store's chunk size wins over chunk-size= (with a
# warning), and origin= is the magic key.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-params.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"
mapfile -t NBDKIT < <(nbdkit_cmd)

truncate -s 1M $d/origin
printf 'origin data' | dd of=$d/origin conv=notrunc status=none
mkdir $d/dir
ln -s $d/nowhere $d/dangling

expect_fail "the origin parameter is missing" $P cow=$d/cow
expect_fail "the cow parameter is missing" $P $d/origin
expect_fail "the cow parameter is missing" $P origin=$d/origin
expect_fail "nope.img: No such file or directory" $P $d/nope.img cow=$d/cow
expect_fail "No such file or directory" $P origin=$d/dangling cow=$d/cow
expect_fail "chunk-size=3000: must be a power of two from 512 to 1048576 bytes" \
            $P $d/origin cow=$d/cow chunk-size=3000
expect_fail "chunk-size=256: must be a power of two from 512 to 1048576 bytes" \
            $P $d/origin cow=$d/cow chunk-size=256
expect_fail "chunk-size=2M: must be a power of two from 512 to 1048576 bytes" \
            $P $d/origin cow=$d/cow chunk-size=2M
expect_fail "unknown parameter 'colour'" $P $d/origin cow=$d/cow colour=red
expect_fail "cow-size=0: must be more than zero" $P $d/origin cow=$d/cow cow-size=0
expect_fail "cannot open the COW store $d/dir: Is a directory" \
            $P $d/origin cow=$d/dir
test ! -e $d/cow

# An empty origin.
: > $d/empty
expect_fail "the origin is empty" $P $d/empty cow=$d/cow
test ! -e $d/cow

# Wrong magic, wrong version, invalidated: refused, both files unchanged.
store_with_header ()
{
    $PYTHON -c '
import struct, sys
magic, valid, version, cs = (int(x, 0) for x in sys.argv[2:6])
hdr = struct.pack("<IIII", magic, valid, version, cs)
with open(sys.argv[1], "wb") as f:
    f.write(hdr + bytes(3 * cs * 512 - 16))
' "$@"
}
check_refused ()
{
    local msg="$1" o c
    o=$(md5sum < $d/origin)
    c=$(md5sum < $d/cow)
    expect_fail "$msg" $P $d/origin cow=$d/cow
    test "$(md5sum < $d/origin)" = "$o"
    test "$(md5sum < $d/cow)" = "$c"
}
store_with_header $d/cow 0x12345678 1 1 8
check_refused "bad magic 0x12345678"
store_with_header $d/cow 0x70416e53 1 2 8
check_refused "unsupported store version 2"
store_with_header $d/cow 0x70416e53 0 1 8
check_refused "the store is invalidated"
store_with_header $d/cow 0x70416e53 1 1 3
check_refused "chunk size of 3 sectors"
rm $d/cow

# origin= is the magic key: the file name alone works.  A new store at
# 4K; restarted with chunk-size=64K, the store's 4K wins with a warning.
start_nbdkit -P $d/pid -U $sock $P $d/origin cow=$d/cow chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$sock" -c '
assert h.get_size() == 1024 * 1024
assert h.get_block_size(nbd.SIZE_PREFERRED) == 4096
h.pwrite(b"x" * 100, 4090)
h.flush()
'
stop_nbdkit $d/pid
rm -f $d/err
start_nbdkit -P $d/pid -U $sock $P origin=$d/origin cow=$d/cow \
             chunk-size=64K 2>$d/err
cat $d/err
grep -F "the store's chunk size is 4096 bytes, not the 65536 asked for" $d/err
nbdsh -u "nbd+unix:///?socket=$sock" -c '
assert h.get_block_size(nbd.SIZE_PREFERRED) == 4096
assert h.pread(11, 0) == b"origin data"
assert h.pread(104, 4088) == bytes(2) + b"x" * 100 + bytes(2)
'

# A second server on the same store is refused while the first runs,
# and the store is unchanged.
c=$(md5sum < $d/cow)
expect_fail "is in use by another process" $P $d/origin cow=$d/cow
expect_fail "is in use by another process" -r $P $d/origin cow=$d/cow
test "$(md5sum < $d/cow)" = "$c"
nbdsh -u "nbd+unix:///?socket=$sock" -c '
assert h.pread(104, 4088) == bytes(2) + b"x" * 100 + bytes(2)
'
stop_nbdkit $d/pid

# A directory as the origin is refused at startup, naming the problem,
# and no COW file is created.
rm -f $d/cow
expect_fail "directory" $P $d/dir cow=$d/cow
test ! -e $d/cow
