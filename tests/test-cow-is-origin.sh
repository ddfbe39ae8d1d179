#!/usr/bin/env bash
# test-cow-is-origin.sh: cow= must not be the origin, under any name.
# The store's header would go over the origin's first chunk whenever
# that chunk starts with zeroes (an ext4 image, an LVM PV), so the
# plugin refuses, with and without -r, one line naming both paths:
# the same path, a hard link, a symlink, a relative spelling, a bind
# mount, a second node of the same block device, and a link made after
# start-up (refused at the first writable connection).  The origin is
# never changed.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-same.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"

# Zeroes first, as in an ext4 image: a new store's header would fit.
truncate -s 1M $d/origin
printf 'origin data' | dd of=$d/origin bs=1 seek=100000 conv=notrunc \
                          status=none
o=$(md5sum < $d/origin)

expect_same ()
{
    local cow="$1" status=0
    shift
    rm -f $d/err $d/sock2
    nbdkit_fails $d/err -U $d/sock2 "$@" $P $d/origin "cow=$cow" || status=$?
    cat $d/err
    if [ $status -eq 0 ] || [ $status -eq 124 ]; then
        echo "$0: cow=$cow $*: expected a refusal, got exit status $status"
        exit 1
    fi
    grep -F "error: cow=$cow and the origin $d/origin are the same file" \
         $d/err
    test "$(md5sum < $d/origin)" = "$o"
}

ln $d/origin $d/hardlink
ln -s $d/origin $d/symlink
ln -s origin $d/relsymlink
for ro in "" -r; do
    expect_same $d/origin $ro
    expect_same $d/hardlink $ro
    expect_same $d/symlink $ro
    expect_same $d/relsymlink $ro
done

# Relative spellings, from another directory (nbdkit makes cow=
# absolute, the origin is resolved: the message names them so).
mkdir $d/sub
status=0
(cd $d/sub && nbdkit_fails $d/err -U $d/sock2 $P ../origin cow=../origin) ||
    status=$?
cat $d/err
test $status -ne 0 && test $status -ne 124
grep -F "error: cow=$d/sub/../origin and the origin $d/origin are the same file" \
     $d/err
test "$(md5sum < $d/origin)" = "$o"

# A bind mount of the origin's directory (root only).
mkdir $d/bind
if mount --bind $d $d/bind 2>/dev/null; then
    cleanup_fn umount $d/bind
    expect_same $d/bind/origin
    expect_same $d/bind/origin -r
else
    echo "$0: cannot bind mount: bind mount case skipped"
fi

# Two nodes of one block device (root, loop devices).
if loop=$(losetup --find --show --read-only $d/origin 2>/dev/null); then
    cleanup_fn losetup -d $loop
    mknod $d/node b $(stat -c '%t %T' $loop | \
                      while read ma mi; do echo $((16#$ma)) $((16#$mi)); done)
    rm -f $d/err $d/sock2
    status=0
    nbdkit_fails $d/err -U $d/sock2 $P $loop cow=$d/node || status=$?
    cat $d/err
    test $status -ne 0 && test $status -ne 124
    grep -F "error: cow=$d/node and the origin $loop are the same file" $d/err
else
    echo "$0: no loop device: block device case skipped"
fi
test "$(md5sum < $d/origin)" = "$o"

# A store that did not exist at start-up but is a link to the origin
# by the time a client may write: that connection is refused.
for kind in hard soft; do
    rm -f $d/later
    start_nbdkit -P $d/pid -U $sock $P $d/origin cow=$d/later 2>$d/err
    if [ $kind = hard ]; then ln $d/origin $d/later
    else ln -s $d/origin $d/later; fi
    if nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pwrite(b"x" * 512, 0)'
    then
        echo "$0: a writable connection to a store linked to the origin"
        exit 1
    fi
    stop_nbdkit $d/pid
    cat $d/err
    grep -F "error: cow=$d/later and the origin $d/origin are the same file" \
         $d/err
    test "$(md5sum < $d/origin)" = "$o"
done

# And a different file is served as usual.
rm -f $d/later
start_nbdkit -P $d/pid -U $sock $P $d/origin cow=$d/cow
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"x" * 512, 0)
assert h.pread(512, 0) == b"x" * 512
assert h.pread(11, 100000) == b"origin data"
'
stop_nbdkit $d/pid
test "$(md5sum < $d/origin)" = "$o"
