#!/usr/bin/env bash
# test-origin-mode-params.sh: the mistakes of mode=, cow=, on-full= and
# origin-writes= are refused at start-up, each with its own one-line
# error, and the files are left unchanged:
#  - a bad mode=, a bad on-full=, a bad origin-writes=;
#  - a second cow= in snapshot mode, on-full= and origin-writes= in
#    snapshot and merge mode;
#  - overflow=invalidate in origin mode; an NBD URI origin in origin
#    mode;
#  - one store named twice: the same path, a symbolic link to an
#    existing store, two spellings of a store not created yet;
#  - a store that is the origin;
#  - an unwritable store, and an unwritable origin, in origin mode
#    (read-only tmpfs, as root);
#  - a second server in origin mode on the same origin;
# and, at connection time: -r with a store that does not exist.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-omparams.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"

truncate -s 1M $d/origin
printf 'origin data' | dd of=$d/origin conv=notrunc status=none
before=$(md5sum < $d/origin)

# refused MESSAGE NBDKIT-ARGS...: expect_refusal, and the origin is
# unchanged.
refused ()
{
    expect_refusal "$@"
    test "$(md5sum < $d/origin)" = "$before"
}

refused "mode=merged: must be 'snapshot', 'origin' or 'merge'" \
            $P $d/origin cow=$d/a mode=merged
refused "on-full=sometimes: must be 'invalidate' or 'fail-write'" \
            $P $d/origin cow=$d/a mode=origin on-full=sometimes
refused "origin-writes=later: must be 'deferred' or 'synchronous'" \
            $P $d/origin cow=$d/a mode=origin origin-writes=later
refused "origin-writes=synchronous: only for mode=origin" \
            $P $d/origin cow=$d/a origin-writes=synchronous
refused "origin-writes=deferred: only for mode=origin" \
            $P $d/origin cow=$d/a mode=merge origin-writes=deferred
refused "origin-writes=deferred: not with commit=copy, which makes every copy durable before its write returns" \
            $P $d/origin cow=$d/a mode=origin origin-writes=deferred commit=copy
refused "cow=: the store needs a file name" \
            $P $d/origin mode=origin cow=$d/a cow=
refused "cow=$d/b: a second store needs mode=origin (mode=snapshot serves one snapshot)" \
            $P $d/origin cow=$d/a cow=$d/b
refused "cow=$d/b: a second store needs mode=origin (mode=snapshot serves one snapshot)" \
            $P $d/origin cow=$d/a cow=$d/b mode=snapshot
refused "on-full=fail-write: only for mode=origin (a full store in mode=snapshot is overflow=)" \
            $P $d/origin cow=$d/a on-full=fail-write
refused "overflow=invalidate: not in mode=origin, where on-full= says what a full store does" \
            $P $d/origin cow=$d/a mode=origin overflow=invalidate
refused "mode=origin: the origin nbd+unix:///?socket=$d/nbd.sock is an NBD URI, which snapcow only reads: origin mode writes the origin, so give a file or a block device" \
            $P "origin=nbd+unix:///?socket=$d/nbd.sock" cow=$d/a mode=origin
test ! -e $d/a && test ! -e $d/b

# One store twice: the same words, and mode= after the cow= list.
refused "cow=$d/a and cow=$d/a are the same file: each snapshot needs a store of its own" \
            $P $d/origin cow=$d/a cow=$d/b cow=$d/a mode=origin
# Two spellings of a store that does not exist yet.
mkdir $d/sub
ln -s $d/sub $d/sublink
refused "cow=$d/sub/x and cow=$d/sublink/x are the same file: each snapshot needs a store of its own" \
            $P $d/origin mode=origin cow=$d/sub/x cow=$d/sublink/x
refused "cow=$d/sub/x and cow=$d/sub/./x are the same file: each snapshot needs a store of its own" \
            $P $d/origin mode=origin cow=$d/sub/x cow=$d/sub/./x
test ! -e $d/sub/x
# An existing store and a symbolic link to it.
$SNAPCOW_TOOL create --chunk-size=4K $d/a
ln -s $d/a $d/alink
a_before=$(md5sum < $d/a)
refused "cow=$d/a and cow=$d/alink are the same file: each snapshot needs a store of its own" \
            $P $d/origin mode=origin cow=$d/a cow=$d/b cow=$d/alink
test "$(md5sum < $d/a)" = "$a_before"

# A store that is the origin, in origin mode too.
refused "cow=$d/origin and the origin $d/origin are the same file: the store would be written over the origin" \
            $P $d/origin mode=origin cow=$d/a cow=$d/origin

# Unwritable store, unwritable origin: a read-only mount for root.
if [ "$(id -u)" = 0 ] && mkdir $d/ro &&
   mount -t tmpfs -o size=4m tmpfs $d/ro 2>/dev/null; then
    cleanup_fn umount $d/ro
    cp $d/origin $d/ro/origin
    $SNAPCOW_TOOL create --chunk-size=4K $d/ro/s.cow
    mount -o remount,ro $d/ro
    refused "$d/ro/s.cow: the COW store cannot be written (Read-only file system): in mode=origin every store must take the copies that origin writes make" \
                $P $d/origin mode=origin cow=$d/a cow=$d/ro/s.cow
    refused "mode=origin: the origin $d/ro/origin cannot be written (Read-only file system): origin mode serves it writable" \
                $P $d/ro/origin mode=origin cow=$d/a
else
    echo "$0: not root, or no tmpfs: the unwritable cases are skipped"
fi

# A second server in origin mode on the same origin.
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a
refused "mode=origin: cannot lock the origin $d/origin: in use by another server in mode=origin" \
            $P $d/origin mode=origin cow=$d/b
stop_nbdkit $d/pid
test ! -e $d/b

# -r with a store that does not exist: every connection is refused,
# naming the store; nothing is created.
start_nbdkit -P $d/pid -U $sock -r $P $d/origin mode=origin cow=$d/a \
             cow=$d/b 2>$d/log
for name in "" "$d/a" "$d/b"; do
    if SOCK=$sock NAME="$name" nbdsh -c '
import os
h.set_export_name(os.environ["NAME"])
h.connect_unix(os.environ["SOCK"])
' 2>/dev/null; then
        echo "$0: -r with a missing store: export '$name' was served"
        exit 1
    fi
done
stop_nbdkit $d/pid
cat $d/log
grep -F "error: the COW store $d/b does not exist, and read-only (-r) creates nothing: there is no snapshot to serve" $d/log
test ! -e $d/b
test "$(md5sum < $d/origin)" = "$before"
