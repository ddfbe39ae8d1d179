#!/usr/bin/env bash
# test-chunk-block-size.sh: as the kernel does, a chunk size that is not
# a multiple of the logical block size of a block-device store or origin
# is refused, by snapcow create and by the plugin, in one line naming the
# device, its block size and the chunk size; nothing is written.  A
# chunk size that is a multiple works.  Needs root for loop devices with
# 4096-byte sectors (losetup --sector-size).
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires $PYTHON -c 'import nbd'
requires losetup --version
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: not root: test skipped"
    exit 77
fi

d=$(mktemp -d /tmp/snapcow-chunk-bs.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock

# loop VAR FILE: set VAR to a new loop device with 4096-byte logical
# blocks over FILE, detached when the test exits.  (Not a $(...)
# function: cleanup_fn must run in this shell.)
loop ()
{
    local dev
    if ! dev=$(losetup -f --show --sector-size 4096 "$2"); then
        echo "$0: losetup --sector-size 4096 failed: test skipped"
        exit 77
    fi
    cleanup_fn losetup -d "$dev"
    eval "$1=\$dev"
}

# one_error ERRFILE TEXT PATTERN: ERRFILE has exactly one line matching
# PATTERN (an error line), and it contains TEXT.
one_error ()
{
    cat "$1"
    test "$(grep -c "$3" "$1")" -eq 1
    grep -qF -- "$2" "$1"
}

truncate -s 8M $d/cow-disk
loop cowdev $d/cow-disk
test "$(blockdev --getss $cowdev)" = 4096
truncate -s 4M $d/origin

# snapcow create: 2K chunks on a 4K-sector store are refused.
st=0
snapcow_tool create --chunk-size=2K $cowdev 2> $d/err || st=$?
test $st -eq 1
one_error $d/err "snapcow create: $cowdev: the COW device has a logical block size of 4096 bytes: the chunk size of 2048 bytes is not a multiple of it" '^snapcow'
cmp -n 8M $cowdev /dev/zero

# The plugin with a new store: refused at start-up.
st=0
nbdkit_fails $d/err "$SNAPCOW_PLUGIN" $d/origin cow=$cowdev chunk-size=2K ||
    st=$?
test $st -eq 1
one_error $d/err "$cowdev: the COW device has a logical block size of 4096 bytes: the chunk size of 2048 bytes is not a multiple of it" 'error'
cmp -n 8M $cowdev /dev/zero

# The plugin with an existing 2K store on the device (copied there; the
# kernel would not have made it): its header's chunk size is refused.
snapcow_tool create --chunk-size=2K $d/2k.cow
dd if=$d/2k.cow of=$cowdev bs=4096 conv=notrunc,fsync status=none
cp $d/cow-disk $d/cow-disk.before
st=0
nbdkit_fails $d/err "$SNAPCOW_PLUGIN" $d/origin cow=$cowdev || st=$?
test $st -eq 1
one_error $d/err "$cowdev: the COW device has a logical block size of 4096 bytes: the chunk size of 2048 bytes is not a multiple of it" 'error'
cmp $d/cow-disk $d/cow-disk.before
dd if=/dev/zero of=$cowdev bs=4096 count=2 conv=notrunc,fsync status=none

# 4K chunks on the 4K device work, through the tool and the plugin.
snapcow_tool create --chunk-size=4K $cowdev
snapcow_tool info $cowdev | grep -x 'chunk_size: 4096'
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$cowdev
nbdsh -u "nbd+unix://?socket=$sock" -c '
h.pwrite(b"y" * 9000, 12345)
h.flush()
assert h.pread(9002, 12344) == b"\0" + b"y" * 9000 + b"\0"
'
stop_nbdkit $d/pid
snapcow_tool check --origin=$d/origin $cowdev

# A 4K-sector origin with a 2K-chunk store file: refused at start-up
# for an existing store.
$PYTHON -c 'import sys; open(sys.argv[1], "wb").write(bytes(range(256)) * 16384)' \
        $d/origin-disk
loop origindev $d/origin-disk
st=0
nbdkit_fails $d/err "$SNAPCOW_PLUGIN" $origindev cow=$d/2k.cow || st=$?
test $st -eq 1
one_error $d/err "$origindev: the origin has a logical block size of 4096 bytes: the chunk size of 2048 bytes is not a multiple of it" 'error'
# With no store yet, the same refusal comes at start-up too, not at the
# first writable connection, and nothing is created.
st=0
nbdkit_fails $d/err "$SNAPCOW_PLUGIN" $origindev cow=$d/new.cow \
             chunk-size=2K || st=$?
test $st = 1
one_error $d/err "$origindev: the origin has a logical block size of 4096 bytes: the chunk size of 2048 bytes is not a multiple of it" 'error'
test ! -e $d/new.cow

# snapcow create --origin checks it too, and leaves no file behind.
rm -f $d/new.cow
st=0
snapcow_tool create --origin=$origindev --chunk-size=2K $d/new.cow \
             2> $d/err || st=$?
test $st -eq 1
one_error $d/err "snapcow create: $d/new.cow: $origindev: the origin has a logical block size of 4096 bytes: the chunk size of 2048 bytes is not a multiple of it" '^snapcow'
test ! -e $d/new.cow

# 4K chunks over the 4K origin work.
snapcow_tool create --origin=$origindev --chunk-size=4K $d/4k.cow
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $origindev cow=$d/4k.cow
nbdsh -u "nbd+unix://?socket=$sock" -c '
pattern = bytes(range(256)) * 16384
assert h.pread(len(pattern), 0) == pattern
h.pwrite(b"z" * 5000, 3000)
h.flush()
want = pattern[:3000] + b"z" * 5000 + pattern[8000:12288]
assert h.pread(12288, 0) == want
'
stop_nbdkit $d/pid
cmp $origindev $d/origin-disk
