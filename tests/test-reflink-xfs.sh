#!/usr/bin/env bash
# test-reflink-xfs.sh: first writes that share the origin's blocks
# (reflink=true).  On a loop-mounted XFS with reflink, partial writes
# into new 16K chunks
# clone each chunk from the origin (FICLONERANGE) and write only the
# client's bytes: the snapshot reads byte for byte as a model, before
# and after a restart, and FIEMAP (filefrag -v) shows the store's data
# chunks on the origin's own blocks, flagged "shared".  The origin's
# size is not a multiple of the block, so its last chunk is copied.
# Without reflink=true the same writes on XFS share nothing.  Then the
# same writes with the store on a tmpfs (no reflink, another
# filesystem): copied, byte for byte, nothing shared.  Needs root for
# the mounts; skips otherwise.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'
requires mkfs.xfs -V
requires losetup --version
requires filefrag -V

if [ "$(id -u)" -ne 0 ]; then
    echo "$0: not root: cannot mount a filesystem"
    exit 77
fi

d=$(mktemp -d /tmp/snapcow-reflink.XXXXXX)
cleanup_fn rm -rf "$d"
mkdir $d/xfs $d/tmp
# Sparse: XFS wants 300M at least, few of them are written.
truncate -s 320M $d/xfs.img
if ! mkfs.xfs -q -m reflink=1 -b size=4096 $d/xfs.img ||
   ! mount -o loop $d/xfs.img $d/xfs; then
    echo "$0: cannot make and mount an XFS image with reflink"
    exit 77
fi
cleanup_fn umount $d/xfs
if ! mount -t tmpfs -o size=16M snapcow-test $d/tmp; then
    echo "$0: cannot mount a tmpfs"
    exit 77
fi
cleanup_fn umount $d/tmp
sock=$d/sock
export D=$d

# 4 MiB and 1000 bytes of random origin, on disk before the clones.
$PYTHON -c '
import os, random
open(os.environ["D"] + "/xfs/origin", "wb").write(
    random.Random(5).randbytes(4 * 1048576 + 1000))
'
sync $d/xfs/origin
o=$(md5sum < $d/xfs/origin)

# The writes: inside chunks, over chunk edges, over several chunks,
# and into the last partial chunk.  The model is saved for the restart.
workload='
import os
D = os.environ["D"]
C = 16384
m = bytearray(open(D + "/xfs/origin", "rb").read())

def w(off, n, fill):
    data = bytes([fill]) * n
    h.pwrite(data, off)
    m[off:off + n] = data

w(3 * C + 4096, 4096, 1)            # the middle of chunk 3
w(5 * C, 512, 2)                    # its head
w(8 * C - 100, 200, 3)              # two chunks
w(20 * C + 4096, 3 * C, 4)          # four chunks
w(40 * C, C, 5)                     # a whole chunk
w(256 * C + 100, 10, 6)             # the last partial chunk
h.flush()
assert h.pread(len(m), 0) == m
open(D + "/model", "wb").write(m)
'

check_model='
import os
m = open(os.environ["D"] + "/model", "rb").read()
assert h.pread(len(m), 0) == m
'

# First the store next to the origin, on XFS.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/xfs/origin \
             cow=$d/xfs/cow chunk-size=16K reflink=true
nbdsh -u "nbd+unix:///?socket=$sock" -c "$workload"
stop_nbdkit $d/pid
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/xfs/origin \
             cow=$d/xfs/cow chunk-size=16K reflink=true
nbdsh -u "nbd+unix:///?socket=$sock" -c "$check_model"
stop_nbdkit $d/pid
test "$(md5sum < $d/xfs/origin)" = "$o"

# The store's data chunks share the origin's blocks.  The first data
# chunk (store chunk 2, blocks 8-11) is origin chunk 3 (blocks 12-15),
# of which the client wrote block 13: blocks 12, 14 and 15 are the
# origin's own.
filefrag -v -b4096 $d/xfs/cow
filefrag -v -b4096 $d/xfs/origin
$PYTHON - $d/xfs/cow $d/xfs/origin <<'EOF'
import fcntl, struct, sys

FS_IOC_FIEMAP = 0xC020660B
SHARED = 0x2000

def extents(path):
    """(logical, physical, length, flags) of every extent, in bytes."""
    with open(path, "rb") as f:
        req = struct.pack("=QQLLLL", 0, 2**64 - 1, 1, 0, 512, 0)
        buf = bytearray(req + bytes(512 * 56))
        fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
        n = struct.unpack_from("=L", buf, 20)[0]
        out = []
        for i in range(n):
            lo, ph, ln, _, _, fl = struct.unpack_from("=QQQQQL", buf,
                                                      32 + 56 * i)
            out.append((lo, ph, ln, fl))
        return out

def where(ext, off):
    for lo, ph, ln, fl in ext:
        if lo <= off < lo + ln:
            return ph + off - lo, fl
    return None, 0

cow, origin = extents(sys.argv[1]), extents(sys.argv[2])
B = 4096
for store_block, origin_block, same in ((8, 12, True), (9, 13, False),
                                        (10, 14, True), (11, 15, True)):
    ps, fs = where(cow, store_block * B)
    po, fo = where(origin, origin_block * B)
    assert ps is not None and po is not None
    if same:
        assert ps == po, (store_block, ps, po)
        assert fs & SHARED and fo & SHARED, (fs, fo)
    else:
        assert ps != po, (store_block, ps, po)
shared = sum(ln for lo, ph, ln, fl in cow if fl & SHARED)
print("shared bytes in the store:", shared)
# Chunks 3, 5, 7, 8, 20 and 23 were cloned.  Of each, the blocks the
# client did not write stay the origin's: 3 blocks of each, but of
# chunk 20, where the client wrote 3.
assert shared == (5 * 3 + 1) * B, shared
EOF

# Without reflink=true (the default) the same writes on XFS copy.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/xfs/origin \
             cow=$d/xfs/cow2 chunk-size=16K
nbdsh -u "nbd+unix:///?socket=$sock" -c "$workload"
stop_nbdkit $d/pid
filefrag -v -b4096 $d/xfs/cow2
test "$(filefrag -v -b4096 $d/xfs/cow2 | grep -c shared)" = 0

# Then the store on a tmpfs with reflink=true: copied, not shared.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/xfs/origin \
             cow=$d/tmp/cow chunk-size=16K reflink=true
nbdsh -u "nbd+unix:///?socket=$sock" -c "$workload"
stop_nbdkit $d/pid
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/xfs/origin \
             cow=$d/tmp/cow chunk-size=16K reflink=true
nbdsh -u "nbd+unix:///?socket=$sock" -c "$check_model"
stop_nbdkit $d/pid
test "$(md5sum < $d/xfs/origin)" = "$o"
