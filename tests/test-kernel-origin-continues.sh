#!/usr/bin/env bash
# test-kernel-origin-continues.sh: snapcow's origin mode continues stores
# that the real Linux kernel's "snapshot-origin" started.
#
# Boot 1: over a random origin (whole sectors, not whole chunks) the
# kernel makes a snapshot-origin device and two snapshots of it, with
# zeroed 16 MiB stores at 4K and 16K chunks, writes the origin through
# the snapshot-origin device with O_DIRECT and fsync (inside a chunk,
# unaligned over several, the last partial chunk, runs of whole chunks:
# two metadata areas at 4K), checks that both snapshots still read as
# the original, and removes all three devices.  On the host the origin
# must be what the guest wrote, snapcow info must print the kernel's
# usage line, and decode-store.py must rebuild the original.
#
# Then "nbdkit snapcow mode=origin" serves that origin with both stores:
# writes to chunks the kernel copied already (which must not be copied
# again) and to new ones, then origin-writer.py's seeded writes; the
# origin export must read as its model, each snapshot export as the
# original.  After a clean stop: the origin is the model; snapcow's
# plain snapshot mode (read-only) and decode-store.py both give the
# original from each store over the changed origin; and boot 2 makes a
# dm-snapshot of each store over the changed origin, whose sha256 must
# be the original's, with "dmsetup status" equal to snapcow info's line.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires nbdsh --version
requires $PYTHON -c 'import nbd'
kernel_require

d=$(mktemp -d /tmp/snapcow-kernel.XXXXXX)
cleanup_fn rm -rf "$d"
writer=$abs_srcdir/origin-writer.py
decode=$abs_srcdir/decode-store.py

# Whole sectors (the kernel needs them), but not whole 4K chunks.
SIZE=8386048
SECTORS=$(( SIZE / 512 ))
head -c $SIZE /dev/urandom > $d/original
original_sha=$(sha256sum < $d/original | cut -d' ' -f1)
cp $d/original $d/origin
truncate -s 16M $d/cow-4096 $d/cow-16384

usage_of () { snapcow_tool info "$1" | sed -n 's/^usage: //p'; }

# dump SOCK FILE: the default export into FILE.
dump ()
{
    $PYTHON - "$1" "$2" <<'EOF'
import sys, nbd
h = nbd.NBD()
h.set_debug(False)
h.connect_unix(sys.argv[1])
size = h.get_size()
with open(sys.argv[2], "wb") as f:
    for off in range(0, size, 1 << 20):
        f.write(h.pread(min(1 << 20, size - off), off))
h.shutdown()
EOF
}

# 4K chunks the kernel copies: 0, 125-134, 320-639, 1000-1149 and the
# last (2047, partial); at 16K: 0, 31-33, 80-159, 250-287 and 511.
cat > $d/guest1.sh <<'EOF'
set -e
n=$(blockdev --getsz /dev/vda)
# The snapshots first: snapshot-origin learns the smallest chunk size
# to split writes at when it resumes (LVM suspends and resumes it).
dmsetup create snap4 --table "0 $n snapshot /dev/vda /dev/vdb P 8"
dmsetup create snap16 --table "0 $n snapshot /dev/vda /dev/vdc P 32"
dmsetup create base --table "0 $n snapshot-origin /dev/vda"
w() {
  dd if=/dev/urandom of=/dev/mapper/base oflag=direct conv=notrunc,fsync \
     "$@" 2>/dev/null
}
w bs=512 seek=5 count=3                 # inside one chunk
w bs=512 seek=1001 count=77             # unaligned, several chunks
w bs=512 seek=$((n - 3)) count=3        # the origin's last partial chunk
w bs=64k seek=20 count=20               # runs of whole chunks
w bs=4096 seek=1000 count=150
w bs=512 seek=9000 count=1              # a chunk copied already
sync
echo "sha-base $(sha256sum < /dev/mapper/base | cut -d' ' -f1)"
for s in 4:8 16:32; do
  echo "sha ${s#*:} $(sha256sum < /dev/mapper/snap${s%:*} | cut -d' ' -f1)"
  echo "status ${s#*:} $(dmsetup status snap${s%:*})"
done
dmsetup remove base
dmsetup remove snap4
dmsetup remove snap16
EOF
kernel_boot $d/guest1.sh $d/out1 $d/origin $d/cow-4096 $d/cow-16384
cat $d/out1

echo "origin after boot 1: $(sha256sum < $d/origin | cut -d' ' -f1)"
test "$(sed -n 's/^sha-base //p' $d/out1)" = \
     "$(sha256sum < $d/origin | cut -d' ' -f1)"
test "$(sha256sum < $d/origin | cut -d' ' -f1)" != "$original_sha"
for b in 4096 16384; do
    cs=$(( b / 512 ))
    test "$(sed -n "s/^sha $cs //p" $d/out1)" = "$original_sha"
    echo "$b: kernel status '$(sed -n "s/^status $cs //p" $d/out1)'," \
         "snapcow info '$(usage_of $d/cow-$b)'," \
         "$($PYTHON $decode $d/origin $d/cow-$b $d/decoded --chunk-size $b)"
    test "$(sed -n "s/^status $cs //p" $d/out1)" = \
         "0 $SECTORS snapshot $(usage_of $d/cow-$b)"
    cmp $d/decoded $d/original
done

# snapcow's origin mode carries on with both stores.
start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" mode=origin \
             origin=$d/origin cow=$d/cow-4096 cow=$d/cow-16384
nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<PY
import os
h.set_debug(False)
size = h.get_size()
C = 4096
h.pwrite(os.urandom(100), 1000)             # chunk 0: the kernel copied it
h.pwrite(os.urandom(4 * C), 400 * C)        # copied at 4K and at 16K
h.pwrite(os.urandom(2 * C), 639 * C)        # 639 copied, 640 new at 4K
h.pwrite(os.urandom(300), size - 300)       # the last chunk, copied
h.pwrite(os.urandom(5000), 1700 * C + 7)    # new at both sizes
h.pwrite(os.urandom(C), 1125 * C, nbd.CMD_FLAG_FUA)  # copied, written twice in boot 1
h.flush()
with open("$d/model", "wb") as f:
    for off in range(0, size, 1 << 20):
        f.write(h.pread(min(1 << 20, size - off), off))
PY
n=$($PYTHON $writer $d/sock $d/original $d/model 3 4096 900 \
            $d/cow-4096 $d/cow-16384)
stop_nbdkit $d/pid
echo "snapcow: $n chunks of 4096 bytes written"
cmp $d/origin $d/model

for b in 4096 16384; do
    echo "$b: $($PYTHON $decode $d/origin $d/cow-$b $d/decoded \
                        --chunk-size $b), usage $(usage_of $d/cow-$b)"
    cmp $d/decoded $d/original
    start_nbdkit -P $d/pid -U $d/sock -r "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/cow-$b
    dump $d/sock $d/export
    stop_nbdkit $d/pid
    cmp $d/export $d/original
    echo "0 $SECTORS snapshot $(usage_of $d/cow-$b)" > $d/want-status-$b
done
for f in origin cow-4096 cow-16384; do
    sha256sum < $d/$f > $d/$f.sha
done

cat > $d/guest2.sh <<'EOF'
set -e
n=$(blockdev --getsz /dev/vda)
for s in vdb:8 vdc:32; do
  dmsetup create snap --table "0 $n snapshot /dev/vda /dev/${s%:*} P ${s#*:}"
  echo "sha ${s#*:} $(sha256sum < /dev/mapper/snap | cut -d' ' -f1)"
  echo "status ${s#*:} $(dmsetup status snap)"
  dmsetup remove snap
done
EOF
kernel_boot $d/guest2.sh $d/out2 $d/origin $d/cow-4096 $d/cow-16384
cat $d/out2
for b in 4096 16384; do
    cs=$(( b / 512 ))
    got=$(sed -n "s/^sha $cs //p" $d/out2)
    echo "$b: kernel sha256 $got, original $original_sha"
    test "$got" = "$original_sha"
    got=$(sed -n "s/^status $cs //p" $d/out2)
    echo "$b: kernel status '$got', snapcow info '$(cat $d/want-status-$b)'"
    test "$got" = "$(cat $d/want-status-$b)"
done
for f in origin cow-4096 cow-16384; do
    test "$(sha256sum < $d/$f)" = "$(cat $d/$f.sha)"
done
