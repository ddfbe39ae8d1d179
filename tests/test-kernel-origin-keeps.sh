#!/usr/bin/env bash
# test-kernel-origin-keeps.sh: stores that snapcow's origin mode kept
# while the origin was written are read by the real Linux kernel's
# "snapshot" target over the CHANGED origin, and show the original data.
#
# Two servers, each on its own copy of a random origin (whole sectors,
# not whole chunks): "mode=origin" with one 4K store, then with a 16K
# and a 64K store together.  origin-writer.py writes the origin export
# (every shape of write, zeroes, FUA, flushes, two connections, then
# whole chunks many at a time: three metadata areas at 4K) and checks
# that the origin export reads as its model and each snapshot export
# as the original.  After a clean stop each origin file must be its
# model, and decode-store.py must rebuild the original from the changed
# origin and each store.  One boot then makes a dm-snapshot of each
# store over its changed origin: its sha256 must be the original's,
# "dmsetup status" must print snapcow info's usage line, and no file may
# change.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

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

# run NAME SEED CHUNK FILL STORE-CHUNK...: origin mode over a copy of
# the original ($d/origin-NAME) with a new store $d/cow-B for each
# STORE-CHUNK B, written by origin-writer.py in CHUNK-byte shapes.
run ()
{
    local name=$1 seed=$2 cb=$3 fill=$4 b n
    local -a cows=() names=()
    shift 4
    cp $d/original $d/origin-$name
    cp $d/original $d/model-$name
    for b in "$@"; do
        snapcow_tool create --chunk-size=$b $d/cow-$b
        cows+=(cow=$d/cow-$b)
        names+=($d/cow-$b)
    done
    start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" mode=origin \
                 origin=$d/origin-$name "${cows[@]}"
    n=$($PYTHON $writer $d/sock $d/original $d/model-$name $seed $cb $fill \
                "${names[@]}")
    stop_nbdkit $d/pid
    echo "$name: $n chunks of $cb bytes written"
    cmp $d/origin-$name $d/model-$name
    for b in "$@"; do
        echo "$b: $($PYTHON $decode $d/origin-$name $d/cow-$b $d/decoded \
                            --chunk-size $b)," \
             "$(snapcow_tool info $d/cow-$b | grep '^usage:')"
        cmp $d/decoded $d/original
        echo "0 $SECTORS snapshot" \
             "$(snapcow_tool info $d/cow-$b | sed -n 's/^usage: //p')" \
             > $d/want-status-$b
    done
}

run a 1 4096 700 4096
run b 2 16384 300 16384 65536

for f in origin-a origin-b cow-4096 cow-16384 cow-65536; do
    sha256sum < $d/$f > $d/$f.sha
done

cat > $d/guest.sh <<'EOF'
set -e
for spec in vda:vdb:8 vdc:vdd:32 vdc:vde:128; do
  set -- $(echo $spec | tr : ' ')
  n=$(blockdev --getsz /dev/$1)
  dmsetup create snap --table "0 $n snapshot /dev/$1 /dev/$2 P $3"
  echo "sha $3 $(sha256sum < /dev/mapper/snap | cut -d' ' -f1)"
  echo "status $3 $(dmsetup status snap)"
  dmsetup remove snap
done
EOF
kernel_boot $d/guest.sh $d/out $d/origin-a $d/cow-4096 \
            $d/origin-b $d/cow-16384 $d/cow-65536
cat $d/out

for b in 4096 16384 65536; do
    cs=$(( b / 512 ))
    got=$(sed -n "s/^sha $cs //p" $d/out)
    echo "$b: kernel sha256 $got, original $original_sha"
    test "$got" = "$original_sha"
    got=$(sed -n "s/^status $cs //p" $d/out)
    echo "$b: kernel status '$got', snapcow info '$(cat $d/want-status-$b)'"
    test "$got" = "$(cat $d/want-status-$b)"
done
for f in origin-a origin-b cow-4096 cow-16384 cow-65536; do
    test "$(sha256sum < $d/$f)" = "$(cat $d/$f.sha)"
done
