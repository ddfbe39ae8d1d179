#!/usr/bin/env bash
# test-kernel-same-bytes.sh: where the COW format leaves a choice, snapcow
# makes the kernel's.  The same sequence of whole-chunk writes (4K
# chunks: 256 new chunks in a random order with rewrites of copied
# chunks among them, which fills area 0 exactly, then two more new
# chunks, which go to area 1) is applied one write at a time with a
# flush after each, from a zeroed 8 MiB COW:
#   (a) by the real kernel (dd oflag=direct conv=fsync to a dm-snapshot,
#       P store);
#   (b) by nbdkit snapcow (nbdsh: pwrite, then flush, each time).
# Both COW files must then be the same byte for byte: the header chunk,
# area 0 (records in write order), the zeroing of area 1 and its two
# records, and the data chunks where each allocation put them.  On a
# difference the test prints each differing chunk and what it holds.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires nbdsh --version
requires $PYTHON -c 'import nbd'
kernel_require

d=$(mktemp -d /tmp/snapcow-kernel.XXXXXX)
cleanup_fn rm -rf "$d"
usage=$abs_srcdir/kernel-usage.py
decode=$abs_srcdir/decode-store.py

CB=4096
SIZE=$(( 4 << 20 ))
head -c $SIZE /dev/urandom > $d/origin
origin_sha=$(sha256sum < $d/origin)
truncate -s 8M $d/cow-kernel $d/cow-snapcow

# The writes: "i:c" writes chunk i of the data file to chunk c.
$PYTHON - $d/seq $SIZE $CB <<'PY'
import random, sys
path, size, cb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(17)
fresh = rng.sample(range(size // cb), 258)
seq = []
for k, c in enumerate(fresh):
    seq.append(c)
    if k in (9, 100, 254):          # rewrite an already copied chunk
        seq.append(rng.choice(seq))
with open(path, "w") as f:
    f.write(" ".join("%d:%d" % (i, c) for i, c in enumerate(seq)) + "\n")
PY
nwrites=$(wc -w < $d/seq)
head -c $(( nwrites * CB )) /dev/urandom > $d/data
echo "$0: $nwrites whole-chunk writes, 258 of them to new chunks"

# (b) snapcow.
start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
             cow=$d/cow-snapcow chunk-size=$CB
nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<PY
h.set_debug(False)
data = open("$d/data", "rb").read()
for w in open("$d/seq").read().split():
    i, c = map(int, w.split(":"))
    h.pwrite(data[i * $CB:(i + 1) * $CB], c * $CB)
    h.flush()
PY
stop_nbdkit $d/pid

# (a) the kernel.
{
    echo "set -e"
    echo "n=\$(blockdev --getsz /dev/vda)"
    echo "dmsetup create snap --table \"0 \$n snapshot /dev/vda /dev/vdb P $(( CB / 512 ))\""
    echo "echo \"status-new \$(dmsetup status snap)\""
    echo "for w in $(cat $d/seq); do"
    echo "  dd if=/dev/vdc of=/dev/mapper/snap bs=$CB skip=\${w%:*} seek=\${w#*:} count=1 oflag=direct conv=fsync 2>/dev/null"
    echo "done"
    echo "echo \"status \$(dmsetup status snap)\""
    echo "echo \"sha \$(sha256sum < /dev/mapper/snap | cut -d' ' -f1)\""
    echo "dmsetup remove snap"
} > $d/guest.sh
kernel_boot $d/guest.sh $d/out $d/origin $d/cow-kernel $d/data
cat $d/out
test "$(sha256sum < $d/origin)" = "$origin_sha"

status=$(sed -n 's/^status //p' $d/out)
echo "kernel status '$status', kernel-usage.py of snapcow's store" \
     "'$($PYTHON $usage $d/cow-snapcow)'"
test "$status" = "0 $(( SIZE / 512 )) snapshot $($PYTHON $usage $d/cow-snapcow)"
$PYTHON $decode $d/origin $d/cow-snapcow $d/decoded --chunk-size $CB \
        --records 258
test "$(sha256sum < $d/decoded | cut -d' ' -f1)" = \
     "$(sed -n 's/^sha //p' $d/out)"

# Byte for byte.
if ! cmp $d/cow-kernel $d/cow-snapcow; then
    $PYTHON - $d/cow-kernel $d/cow-snapcow $CB <<'PY'
import sys
a = open(sys.argv[1], "rb").read()
b = open(sys.argv[2], "rb").read()
cb = int(sys.argv[3])
per = cb // 16
for c in range(len(a) // cb):
    x, y = a[c * cb:(c + 1) * cb], b[c * cb:(c + 1) * cb]
    if x == y:
        continue
    first = next(i for i in range(cb) if x[i] != y[i])
    role = ("header" if c == 0 else
            "area %d" % ((c - 1) // (per + 1)) if (c - 1) % (per + 1) == 0
            else "data")
    print("chunk %d (%s) differs from byte %d (file offset %d): "
          "kernel %s, snapcow %s" % (c, role, first, c * cb + first,
                                     x[first:first + 16].hex(),
                                     y[first:first + 16].hex()))
PY
    exit 1
fi
echo "$0: the kernel's and snapcow's stores are identical" \
     "($(sha256sum < $d/cow-kernel | cut -d' ' -f1))"
# Where the allocations went (the same in both).
$PYTHON - $d/cow-kernel $CB <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
cb = int(sys.argv[2])
per = cb // 16
for area, base in ((0, 1), (1, per + 2)):
    recs = [struct.unpack_from("<2Q", data, base * cb + i * 16)
            for i in range(per)]
    used = [r for r in recs if r[1]]
    print("area %d (chunk %d): %d records, new_chunk %d..%d in write order: %s"
          % (area, base, len(used), used[0][1], used[-1][1],
             [r[1] for r in used] == list(range(used[0][1], used[-1][1] + 1))))
PY
