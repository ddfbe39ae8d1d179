#!/usr/bin/env bash
# test-kernel-edges.sh: two edges of cow-format.md checked against the
# real Linux kernel in one boot.
#
# A chunk 0 whose magic is 0 but which holds garbage after it is a new
# store: the kernel and snapcow must both initialise it, to the same
# bytes in chunks 0 and 1 (the header, then a zeroed area 0), and serve
# the origin.
#
# A COW too small for the writes is invalidated by the kernel (P store):
# "dmsetup status" prints Invalid and the header says valid=0.  snapcow
# must then refuse the store, saying "invalidated", and leave both files
# as they were.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

kernel_require

d=$(mktemp -d /tmp/snapcow-kernel.XXXXXX)
cleanup_fn rm -rf "$d"
decode=$abs_srcdir/decode-store.py

SIZE=4194304
head -c $SIZE /dev/urandom > $d/origin
origin_sha=$(sha256sum < $d/origin)

# Garbage everywhere but the four bytes of the magic.
head -c $(( 1 << 20 )) /dev/urandom > $d/garbage-kernel
printf '\0\0\0\0' | dd of=$d/garbage-kernel conv=notrunc status=none
cp $d/garbage-kernel $d/garbage-snapcow
truncate -s 64K $d/small

# snapcow initialises its copy (at its first write) and serves the origin.
start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
             cow=$d/garbage-snapcow chunk-size=4096
nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<EOF
import hashlib
h.set_debug(False)
data = h.pread($SIZE, 0)
assert hashlib.sha256(data).hexdigest() == "$(echo $origin_sha | cut -d' ' -f1)"
h.pwrite(data[:4096], 0)
h.flush()
EOF
stop_nbdkit $d/pid

cat > $d/guest.sh <<'EOF'
n=$(blockdev --getsz /dev/vda)
dmsetup create snap --table "0 $n snapshot /dev/vda /dev/vdb P 8" || exit 1
echo "sha-new $(sha256sum < /dev/mapper/snap | cut -d' ' -f1)"
echo "status-new $(dmsetup status snap)"
# The same write as snapcow's: chunk 0 rewritten with its own data.
dd if=/dev/vda of=/dev/mapper/snap bs=4096 count=1 oflag=direct 2>/dev/null
dmsetup remove snap || exit 1
dmsetup create small --table "0 $n snapshot /dev/vda /dev/vdc P 8" || exit 1
# 16 chunks: the header, area 0 and 14 data chunks, 13 of them usable.
dd if=/dev/zero of=/dev/mapper/small bs=4096 count=20 oflag=direct 2>/dev/null
echo "dd-small $?"
echo "status-small $(dmsetup status small)"
dmsetup remove small || exit 1
EOF
kernel_boot $d/guest.sh $d/out $d/origin $d/garbage-kernel $d/small
cat $d/out

# The kernel made a new store of the garbage and served the origin.
test "$(sed -n 's/^sha-new //p' $d/out)" = "$(echo $origin_sha | cut -d' ' -f1)"
test "$(sed -n 's/^status-new //p' $d/out)" = \
     "0 $(( SIZE / 512 )) snapshot 16/2048 16"
# After the same write, both files are byte for byte the same: the
# header, area 0 with one record, data chunk 2, and the garbage left as
# it was in every chunk neither allocated.
od -A d -t x4 -N 16 $d/garbage-kernel
cmp $d/garbage-kernel $d/garbage-snapcow
$PYTHON $decode $d/origin $d/garbage-snapcow $d/decoded --records 1

# The kernel invalidated the small store.
test "$(sed -n 's/^status-small //p' $d/out)" = \
     "0 $(( SIZE / 512 )) snapshot Invalid"
od -A d -t x4 -N 16 $d/small
test "$(od -A n -t x4 -j 4 -N 4 $d/small | tr -d ' ')" = 00000000
small_sha=$(sha256sum < $d/small)
test "$(sha256sum < $d/origin)" = "$origin_sha"

# snapcow refuses it, writable or not, and touches nothing.
for ro in "" -r; do
    status=0
    nbdkit_fails $d/err $ro -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/small || status=$?
    cat $d/err
    test $status -ne 0
    grep -q invalidated $d/err
done
test "$(sha256sum < $d/small)" = "$small_sha"
test "$(sha256sum < $d/origin)" = "$origin_sha"
