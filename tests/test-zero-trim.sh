#!/usr/bin/env bash
# test-zero-trim.sh: zero and trim make ranges read as zeroes: partial
# and whole chunks, chunks already copied and not, the origin's last
# partial chunk, sparse origin regions, with and without FUA; later
# partial writes into a zeroed chunk keep the rest zero.  Checked
# against a model, in the decoded COW file, and after a restart.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-zero.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
export D=$d

# 64 chunks of 4K and a partial one; chunks 40-49 are a hole.
$PYTHON -c '
import random, os
size = 64 * 4096 + 1000
b = bytearray(random.Random(3).randbytes(size))
with open(os.environ["D"] + "/origin", "wb") as f:
    f.write(b[:40 * 4096])
    f.seek(50 * 4096)
    f.write(b[50 * 4096:])
b[40 * 4096:50 * 4096] = bytes(10 * 4096)
open(os.environ["D"] + "/model", "wb").write(b)
'
o=$(md5sum < $d/origin)

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow \
             chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$sock" -c '
import os
D = os.environ["D"]
m = bytearray(open(D + "/model", "rb").read())
size = len(m)
C = 4096
assert h.get_size() == size
assert h.can_zero() and h.can_trim()
F = nbd.CMD_FLAG_FUA

def w(off, n, c):
    h.pwrite(bytes([c]) * n, off)
    m[off:off + n] = bytes([c]) * n

def z(off, n, trim=False, flags=0):
    if trim:
        h.trim(n, off, flags)
    else:
        h.zero(n, off, flags)
    m[off:off + n] = bytes(n)
    assert h.pread(n, off) == bytes(n), (off, n, trim)

# Copy some chunks first, so both kinds are zeroed.
w(2 * C, 3 * C, 0x11)             # chunks 2-4
w(20 * C + 100, 50, 0x22)         # chunk 20, partial
w(64 * C, 1000, 0x33)             # the last partial chunk

z(0 * C + 10, 100)                # unmapped, partial
z(1 * C, C)                       # unmapped, whole
z(2 * C + 5, 30)                  # mapped, partial
z(3 * C, C, flags=F)              # mapped, whole, FUA
z(4 * C + 4000, 2 * C)            # mapped into unmapped, unaligned
z(6 * C, 3 * C, trim=True)        # unmapped, whole chunks, trim
z(10 * C + 1, 1, trim=True)       # one byte
z(20 * C, C, trim=True, flags=F)  # mapped, whole, trim FUA
z(21 * C + 77, 2 * C + 99, trim=True)
z(42 * C, 3 * C)                  # sparse origin region
z(39 * C + 123, 2 * C)            # data into the sparse region
z(64 * C + 10, 20)                # last partial chunk, mapped, partial
z(30 * C, C + 7)
z(63 * C, C + 1000, trim=True)    # to the end, over the last chunk

# Write into zeroed chunks: the rest stays zero.
w(1 * C + 200, 10, 0x44)
w(3 * C + 4000, 200, 0x55)
w(20 * C + 1, 1, 0x66)
w(64 * C + 999, 1, 0x77)
# Zero everything of a few chunks in one request, mixed.
z(12 * C + 3, 10 * C)

assert h.pread(size, 0) == m
h.flush()
open(D + "/model", "wb").write(m)
'
stop_nbdkit $d/pid
$PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded --chunk-size 4096
cmp $d/decoded $d/model

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
nbdsh -u "nbd+unix:///?socket=$sock" -c '
import os
m = open(os.environ["D"] + "/model", "rb").read()
assert h.pread(len(m), 0) == m
'
stop_nbdkit $d/pid
test "$(md5sum < $d/origin)" = "$o"
