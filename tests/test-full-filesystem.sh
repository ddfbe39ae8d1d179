#!/usr/bin/env bash
# test-full-filesystem.sh: the COW file on a real filesystem that fills
# up (a small tmpfs; the origin lives elsewhere).  Area 0 is filled
# with records not yet committed, so the flush must zero area 1; then
# the filesystem fills.  The flush still works (allocation reserved
# area 1's space), writes that need a new chunk get ENOSPC once the
# chunks reserved ahead are used (logged once, not once per write),
# reads, writes to copied chunks and flushes keep working.  Once space
# is freed, writes and flushes work again with no restart, and after a
# restart every flushed byte is there.  Needs root for the mount;
# skips otherwise.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

if [ "$(id -u)" -ne 0 ]; then
    echo "$0: not root: cannot mount a tmpfs"
    exit 77
fi

d=$(mktemp -d /tmp/snapcow-fullfs.XXXXXX)
cleanup_fn rm -rf "$d"
mkdir $d/mnt
if ! mount -t tmpfs -o size=4M snapcow-test $d/mnt; then
    echo "$0: cannot mount a tmpfs"
    exit 77
fi
cleanup_fn umount $d/mnt
sock=$d/sock
export D=$d

# 2 MiB of random origin (512 chunks of 4K), so copies carry data.
$PYTHON -c '
import os, random
open(os.environ["D"] + "/origin", "wb").write(random.Random(9).randbytes(512 * 4096))
'
o=$(md5sum < $d/origin)

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin \
             cow=$d/mnt/cow chunk-size=4K 2>$d/log
nbdsh -u "nbd+unix:///?socket=$sock" -c '
import errno, os
D = os.environ["D"]
C = 4096
E = 256
filler = D + "/mnt/filler"
m = bytearray(open(D + "/origin", "rb").read())

def w(off, data):
    h.pwrite(data, off)
    m[off:off + len(data)] = data

def fill():
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    for n in (65536, 4096):
        while True:
            try:
                os.write(fd, bytes(n))
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
    os.close(fd)

def refused(off):
    try:
        h.pwrite(b"n" * 100, off)
    except nbd.Error as e:
        assert e.errnum == errno.ENOSPC, e
        return
    assert False, ("write into a full filesystem accepted", off)

# New chunks until ENOSPC: those reserved before the filesystem filled
# (at most 16 ahead, lib/alloc.c) still take writes.
def until_full(first):
    for c in range(first, first + 17):
        try:
            w(c * C + 5, b"r" * 100)
        except nbd.Error as e:
            assert e.errnum == errno.ENOSPC, e
            return c
    assert False, "new chunks still accepted on a full filesystem"

# E copies in one batch: area 0 is full, the commit must zero area 1.
for c in range(E):
    w(c * C + 100, bytes([c % 251 + 1]) * 200)
fill()
h.flush()

# Full: new chunks get ENOSPC; everything else works.
first = until_full(300)
for c in range(first, first + 20):
    refused(c * C + 5)
w(5 * C, b"y" * C)
w(E * C - 10, b"z" * 10)
h.flush()
assert h.pread(len(m), 0) == m

# Space is back: no restart needed.
os.unlink(filler)
for c in range(first, first + 20):
    w(c * C + 7, bytes([c % 251 + 1]) * 300)
h.flush()
assert h.pread(len(m), 0) == m
open(D + "/model", "wb").write(m)
open(D + "/records", "w").write(str(E + first - 300 + 20))
'
stop_nbdkit $d/pid
cat $d/log
# One error for 21 refused writes, and never a failed store.
test "$(grep -c 'error:.*no space' $d/log)" -eq 1
! grep 'has failed' $d/log

$PYTHON $abs_srcdir/decode-store.py $d/origin $d/mnt/cow $d/decoded \
        --chunk-size 4096 --records $(cat $d/records)
cmp $d/decoded $d/model

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/mnt/cow
nbdsh -u "nbd+unix:///?socket=$sock" -c '
import os
m = open(os.environ["D"] + "/model", "rb").read()
assert h.pread(len(m), 0) == m
'
stop_nbdkit $d/pid
test "$(md5sum < $d/origin)" = "$o"
