#!/usr/bin/env bash
# test-startup-checks.sh: mistakes that can be known at start-up are
# reported at start-up, in one line, instead of failing every
# connection later:
#  - cow= in a directory that does not exist, is not a directory, or
#    cannot be written (when the store does not exist yet): refused;
#  - a store that exists but cannot be written: served read-only
#    (.can_write 0), said once at start-up;
#  - a second server started before the store existed: its first
#    writable connection opens the store the first server created (no
#    "File exists"); the lock refuses it while the first server runs,
#    and it serves the store once the first has gone.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-startup.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"

truncate -s 1M $d/origin
printf 'origin data' | dd of=$d/origin conv=notrunc status=none

# 1. The store's directory does not exist, or is a file.
expect_refusal "cow=$d/nodir/cow: cannot create the store: the directory $d/nodir: No such file or directory" \
            $P $d/origin cow=$d/nodir/cow
touch $d/file
expect_refusal "cow=$d/file/cow: cannot create the store: $d/file is not a directory" \
            $P $d/origin cow=$d/file/cow

# 2. The store's directory cannot be written: a read-only mount for
# root (who may write anything else), permissions for anyone else.
mkdir $d/ro
if [ "$(id -u)" = 0 ]; then
    if mount -t tmpfs -o ro,size=1m tmpfs $d/ro 2>/dev/null; then
        cleanup_fn umount $d/ro
        expect_refusal "cow=$d/ro/cow: cannot create the store in the directory $d/ro: Read-only file system" \
                    $P $d/origin cow=$d/ro/cow
    else
        echo "$0: cannot mount tmpfs: unwritable directory case skipped"
    fi
else
    chmod 0555 $d/ro
    expect_refusal "cow=$d/ro/cow: cannot create the store in the directory $d/ro: Permission denied" \
                $P $d/origin cow=$d/ro/cow
fi

# 3. A store that exists but cannot be written is served read-only,
# with one line at start-up, and neither file changes.
mkdir $d/w
start_nbdkit -P $d/pid -U $sock $P $d/origin cow=$d/w/cow chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"s" * 4096, 8192)
h.flush()
'
stop_nbdkit $d/pid
unwritable=
if [ "$(id -u)" = 0 ]; then
    mkdir $d/wro
    if mount --bind $d/w $d/wro 2>/dev/null; then
        cleanup_fn umount $d/wro
        if mount -o remount,bind,ro $d/wro 2>/dev/null; then
            unwritable=$d/wro/cow
            why="Read-only file system"
        fi
    fi
else
    chmod 0444 $d/w/cow
    unwritable=$d/w/cow
    why="Permission denied"
fi
if [ -n "$unwritable" ]; then
    o=$(md5sum < $d/origin)
    c=$(md5sum < $d/w/cow)
    rm -f $d/err
    start_nbdkit -P $d/pid -U $sock $P $d/origin cow=$unwritable 2>$d/err
    nbdsh -u "nbd+unix:///?socket=$sock" -c '
import errno
assert h.is_read_only()
assert h.pread(11, 0) == b"origin data"
assert h.pread(4096, 8192) == b"s" * 4096
h.set_strict_mode(0)
try:
    h.pwrite(b"w" * 512, 0)
except nbd.Error as e:
    assert e.errnum in (errno.EPERM, errno.EROFS), e
else:
    raise AssertionError("a write succeeded on an unwritable store")
'
    # A second connection gets the same.
    nbdsh -u "nbd+unix:///?socket=$sock" -c 'assert h.is_read_only()'
    stop_nbdkit $d/pid
    cat $d/err
    test "$(grep -c "warning: $unwritable: the COW store cannot be written ($why): serving it read-only" $d/err)" = 1
    # Nothing else but nbdkit's refusal of the client's write.
    test "$(grep 'error:' $d/err | grep -v "warning: $unwritable: " |
            grep -vc 'write request on readonly connection')" = 0
    test "$(md5sum < $d/origin)" = "$o"
    test "$(md5sum < $d/w/cow)" = "$c"
else
    echo "$0: cannot make the store unwritable: unwritable store case skipped"
fi

# 4. Two servers started before the store existed.
rm -f $d/err1 $d/err2
start_nbdkit -P $d/pid1 -U $d/sock1 $P $d/origin cow=$d/shared 2>$d/err1
start_nbdkit -P $d/pid2 -U $d/sock2 $P $d/origin cow=$d/shared 2>$d/err2
nbdsh -u "nbd+unix:///?socket=$d/sock1" -c '
h.pwrite(b"first" * 1000, 20000)
h.flush()
'
# The second server's writable connection is refused by the lock,
# every time, while the first server runs.
for i in 1 2; do
    if nbdsh -u "nbd+unix:///?socket=$d/sock2" -c 'h.pread(512, 0)'; then
        echo "$0: two servers served one store at once"
        exit 1
    fi
done
cat $d/err2
grep -F "the COW store $d/shared is in use by another process" $d/err2
! grep -F "File exists" $d/err2
stop_nbdkit $d/pid1
# Once the first has gone, the second serves the store.
nbdsh -u "nbd+unix:///?socket=$d/sock2" -c '
assert h.pread(11, 0) == b"origin data"
assert h.pread(5000, 20000) == b"first" * 1000
h.pwrite(b"second", 30000)
h.flush()
'
stop_nbdkit $d/pid2
cat $d/err2
! grep -F "File exists" $d/err2
start_nbdkit -P $d/pid -U $sock -r $P $d/origin cow=$d/shared
nbdsh -u "nbd+unix:///?socket=$sock" -c '
assert h.pread(5000, 20000) == b"first" * 1000
assert h.pread(6, 30000) == b"second"
'
stop_nbdkit $d/pid
