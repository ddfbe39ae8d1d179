#!/usr/bin/env bash
# test-full-store-enospc.sh: cow-size= caps the COW file.  When it is
# full, writes that need a new chunk fail with ENOSPC, writes to chunks
# already copied still work, the snapshot stays readable, and after a
# restart the store loads with every record.  At the area boundary
# (cow-format.md, "Allocating a chunk"): a file of header + area + E
# data chunks holds E-1 records; one more chunk (room for the zeroed
# next area) holds E.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-full.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
export D=$d
truncate -s 2M $d/origin          # 512 chunks of 4K
o=$(md5sum < $d/origin)

# fill N: write chunks 0, 1, 2, ... one by one until ENOSPC; exactly N
# must succeed.  Then rewrite the copied ones, read all back.
fill='
import errno, os
N = int(os.environ["N"])
C = 4096
ok = 0
for c in range(512):
    try:
        h.pwrite(bytes([c % 251 + 1]) * 100, c * C + 7)
        ok = c + 1
    except nbd.Error as e:
        assert e.errnum == errno.ENOSPC, e
        break
assert ok == N, (ok, N)
# Still writable where copied, still readable everywhere.
for c in range(N):
    h.pwrite(bytes([c % 251 + 1]) * 100, c * C + 2000)
h.flush()
'
verify='
import os
N = int(os.environ["N"])
C = 4096
for c in range(512):
    b = h.pread(C, c * C)
    if c < N:
        v = bytes([c % 251 + 1]) * 100
        assert b == bytes(7) + v + bytes(2000 - 107) + v + bytes(C - 2100), c
    else:
        assert b == bytes(C), c
'

for chunks in 12 258 259; do
    case $chunks in
        12) export N=10 ;;     # header + area 0 + 10 data chunks
        258) export N=255 ;;   # E-1: no room to zero area 1
        259) export N=256 ;;   # E: area 0 full, area 1 zeroed
    esac
    rm -f $d/cow
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/cow chunk-size=4K cow-size=$((chunks * 4096))
    nbdsh -u "nbd+unix:///?socket=$sock" -c "$fill" -c "$verify"
    stop_nbdkit $d/pid
    test $(stat -c %s $d/cow) -le $((chunks * 4096))
    $PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded \
            --chunk-size 4096 --records $N
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/cow cow-size=$((chunks * 4096))
    nbdsh -u "nbd+unix:///?socket=$sock" -c "$verify"
    stop_nbdkit $d/pid
done

test "$(md5sum < $d/origin)" = "$o"
