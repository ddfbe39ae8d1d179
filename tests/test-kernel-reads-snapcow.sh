#!/usr/bin/env bash
# test-kernel-reads-snapcow.sh: the real Linux kernel reads COW stores
# written by snapcow.  For 4K, 16K and 64K chunks, seeded random writes
# of every shape (rw-model.py: sub-chunk, straddling, whole and multi
# chunk, the origin's last partial chunk, then enough whole chunks to fill
# three areas at 4K and one at 16K) go through nbdkit snapcow, which is
# stopped.  One boot of the kernel then makes a dm-snapshot (P store) of
# each store over the origin: its sha256 must be the model's, and
# "dmsetup status" must show the usage kernel-usage.py works out from the
# store.  Activating, reading and removing must leave both files as they
# were.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires $PYTHON -c 'import nbd'
kernel_require

d=$(mktemp -d /tmp/snapcow-kernel.XXXXXX)
cleanup_fn rm -rf "$d"
model=$abs_srcdir/rw-model.py
usage=$abs_srcdir/kernel-usage.py

# Whole sectors (the kernel needs them), but not whole 64K chunks.
SIZE=20967936
$PYTHON $model origin $d/origin $SIZE 7
origin_sha=$(sha256sum < $d/origin)

for chunk in 4096:900 16384:1100 65536:60; do
    cb=${chunk%:*}
    fill=${chunk#*:}
    cp $d/origin $d/model-$cb
    start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/cow-$cb chunk-size=$cb
    n=$($PYTHON $model write $d/sock $d/model-$cb 1 $cb $fill)
    $PYTHON $model verify $d/sock $d/model-$cb 1 $cb
    stop_nbdkit $d/pid
    echo "$cb: $n chunks written, COW file of $(stat -c %s $d/cow-$cb) bytes"
    sha256sum < $d/model-$cb | cut -d' ' -f1 > $d/want-sha-$cb
    echo "0 $(( SIZE / 512 )) snapshot $($PYTHON $usage $d/cow-$cb)" \
         > $d/want-status-$cb
    sha256sum < $d/cow-$cb > $d/cow-sha-$cb
done

cat > $d/guest.sh <<'EOF'
set -e
n=$(blockdev --getsz /dev/vda)
for pair in vdb:8 vdc:32 vdd:128; do
  dev=${pair%:*}
  cs=${pair#*:}
  dmsetup create snap --table "0 $n snapshot /dev/vda /dev/$dev P $cs"
  echo "sha $cs $(sha256sum < /dev/mapper/snap | cut -d' ' -f1)"
  echo "status $cs $(dmsetup status snap)"
  dmsetup remove snap
done
EOF
kernel_boot $d/guest.sh $d/out $d/origin $d/cow-4096 $d/cow-16384 \
            $d/cow-65536
cat $d/out

for cb in 4096 16384 65536; do
    cs=$(( cb / 512 ))
    got=$(sed -n "s/^sha $cs //p" $d/out)
    echo "$cb: kernel sha256 $got, snapcow's $(cat $d/want-sha-$cb)"
    test "$got" = "$(cat $d/want-sha-$cb)"
    got=$(sed -n "s/^status $cs //p" $d/out)
    echo "$cb: kernel status '$got', expected '$(cat $d/want-status-$cb)'"
    test "$got" = "$(cat $d/want-status-$cb)"
    test "$(sha256sum < $d/cow-$cb)" = "$(cat $d/cow-sha-$cb)"
done
test "$(sha256sum < $d/origin)" = "$origin_sha"
