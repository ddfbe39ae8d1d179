#!/usr/bin/env bash
# test-zero-trim.sh: zero makes ranges read as zeroes: partial and
# whole chunks, chunks already copied and not, the origin's last
# partial chunk, sparse origin regions, with and without FUA; later
# partial writes into a zeroed chunk keep the rest zero.  Trim, as the
# kernel's discard_zeroes_cow, zeroes only chunks already copied and
# leaves the others reading from the origin.  Checked against a model,
# in the decoded COW file, and after a restart.  Then on a new store:
# trimming the whole never-written export adds no record; trimming
# copied chunks frees their space and keeps their records; a fast zero
# fails with ENOTSUP where it would copy from the origin, and works
# where it need not.

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
open(os.environ["D"] + "/snapshot0", "wb").write(b)
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

# Chunks that have an exception (a zero over the hole in the origin may
# or may not make one: that region reads as zeroes either way).
mapped = set()

def w(off, n, c):
    h.pwrite(bytes([c]) * n, off)
    m[off:off + n] = bytes([c]) * n
    mapped.update(range(off // C, (off + n - 1) // C + 1))

def z(off, n, trim=False, flags=0):
    if trim:
        # Only chunks with an exception change, to zeroes.
        h.trim(n, off, flags)
        end = off + n
        while off < end:
            e = min(end, (off // C + 1) * C)
            if off // C in mapped:
                m[off:e] = bytes(e - off)
            off = e
    else:
        h.zero(n, off, flags)
        m[off:off + n] = bytes(n)
        mapped.update(range(off // C, (off + n - 1) // C + 1))
        assert h.pread(n, off) == bytes(n), (off, n)

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
assert h.pread(3 * C, 6 * C) == m[6 * C:9 * C]
z(10 * C + 1, 1, trim=True)       # one byte
z(20 * C, C, trim=True, flags=F)  # mapped, whole, trim FUA
assert h.pread(C, 20 * C) == bytes(C)
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

# A new store.  Trimming the whole export, never written, adds nothing.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow2 \
             chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$sock" -c '
import os
m = open(os.environ["D"] + "/snapshot0", "rb").read()
h.trim(len(m), 0)
h.flush()
assert h.pread(len(m), 0) == m
'
stop_nbdkit $d/pid
$PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow2 $d/decoded \
        --chunk-size 4096 --records 0
cmp $d/decoded $d/snapshot0

# Trimming copied chunks frees their space and keeps their records.
# Fast zero: ENOTSUP where part of a chunk would be copied from the
# origin, before doing anything; done where no copy is needed.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow2
nbdsh -u "nbd+unix:///?socket=$sock" -c '
import errno, os
D = os.environ["D"]
m = bytearray(open(D + "/snapshot0", "rb").read())
C = 4096
FAST = nbd.CMD_FLAG_FAST_ZERO
assert h.can_fast_zero()
h.pwrite(b"\xaa" * (32 * C), 0)
h.flush()
before = os.stat(D + "/cow2").st_blocks
h.trim(32 * C, 0)
h.flush()
after = os.stat(D + "/cow2").st_blocks
assert before - after >= 32 * C // 512, (before, after)
m[0:32 * C] = bytes(32 * C)

def fast_refused(n, off):
    try:
        h.zero(n, off, FAST)
    except nbd.Error as e:
        assert e.errnum == errno.ENOTSUP, e
        return
    assert False, ("fast zero accepted", n, off)

fast_refused(100, 33 * C + 5)             # part of an unmapped chunk
fast_refused(C + 10, 31 * C)              # mapped, then a partial copy
assert h.pread(2 * C, 31 * C) == m[31 * C:33 * C]
h.zero(100, 5 * C + 5, FAST)              # part of a mapped chunk
h.zero(C, 34 * C, FAST)                   # a whole unmapped chunk
h.zero(100, 45 * C + 5, FAST)             # over the origin hole
h.zero(100, 35 * C + 5)                   # not fast: copies
for off, n in ((5 * C + 5, 100), (34 * C, C), (45 * C + 5, 100),
               (35 * C + 5, 100)):
    m[off:off + n] = bytes(n)
assert h.pread(len(m), 0) == m
h.flush()
open(D + "/model2", "wb").write(m)
'
stop_nbdkit $d/pid
# Chunks 0-31 (trimmed), 34 (fast zero) and 35 (copied).
$PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow2 $d/decoded \
        --chunk-size 4096 --records 34
cmp $d/decoded $d/model2
test "$(md5sum < $d/origin)" = "$o"
