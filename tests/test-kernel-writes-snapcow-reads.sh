#!/usr/bin/env bash
# test-kernel-writes-snapcow-reads.sh: snapcow reads and extends COW stores
# the real Linux kernel wrote.  In a first boot the kernel makes a
# dm-snapshot (P store, 4K and 16K chunks) over a random origin with a
# zeroed 8 MiB COW file each, writes through it with O_DIRECT (sub-chunk,
# unaligned multi-chunk, the origin's last partial chunk, and runs of
# whole chunks: more than one area at 4K), prints the snapshot's sha256
# and removes it.  On the host, nbdkit -r snapcow must serve the same
# image, decode-store.py must accept the store, and the origin must be
# unchanged.  Then a writable snapcow adds seeded random writes
# (rw-model.py), and a second boot checks that the kernel reads the
# image snapcow served, with the usage kernel-usage.py works out.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires $PYTHON -c 'import nbd'
kernel_require

d=$(mktemp -d /tmp/snapcow-kernel.XXXXXX)
cleanup_fn rm -rf "$d"
model=$abs_srcdir/rw-model.py
usage=$abs_srcdir/kernel-usage.py
decode=$abs_srcdir/decode-store.py

# Whole sectors (the kernel needs them), but not whole 4K chunks.
SIZE=8386048
$PYTHON $model origin $d/origin $SIZE 11
origin_sha=$(sha256sum < $d/origin)
origin_stamp=$(stat -c %y $d/origin)
truncate -s 8M $d/cow-4096 $d/cow-16384

# dump SOCK FILE: the whole export into FILE.
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

cat > $d/guest1.sh <<'EOF'
set -e
n=$(blockdev --getsz /dev/vda)
w() { dd if=/dev/urandom of=/dev/mapper/snap oflag=direct "$@" 2>/dev/null; }
for pair in vdb:8 vdc:32; do
  dev=${pair%:*}
  cs=${pair#*:}
  dmsetup create snap --table "0 $n snapshot /dev/vda /dev/$dev P $cs"
  w bs=512 seek=5 count=3                 # inside one chunk
  w bs=512 seek=1001 count=77             # unaligned, several chunks
  w bs=512 seek=$((n - 3)) count=3        # the origin's last partial chunk
  w bs=64k seek=20 count=20               # runs of whole chunks
  w bs=64k seek=50 count=12
  w bs=4096 seek=1000 count=150
  w bs=512 seek=9000 count=1              # a rewrite of a copied chunk
  echo "sha $cs $(sha256sum < /dev/mapper/snap | cut -d' ' -f1)"
  echo "status $cs $(dmsetup status snap)"
  dmsetup remove snap
done
EOF
kernel_boot $d/guest1.sh $d/out1 $d/origin $d/cow-4096 $d/cow-16384
cat $d/out1
test "$(sha256sum < $d/origin)" = "$origin_sha"

for cb in 4096 16384; do
    cs=$(( cb / 512 ))
    guest_sha=$(sed -n "s/^sha $cs //p" $d/out1)
    test -n "$guest_sha"
    status=$(sed -n "s/^status $cs //p" $d/out1)
    echo "$cb: kernel status '$status'," \
         "kernel-usage.py '$($PYTHON $usage $d/cow-$cb)'"
    test "$status" = "0 $(( SIZE / 512 )) snapshot $($PYTHON $usage $d/cow-$cb)"

    # The kernel's store, read-only.
    cow_sha=$(sha256sum < $d/cow-$cb)
    start_nbdkit -P $d/pid -U $d/sock -r "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/cow-$cb
    dump $d/sock $d/export-$cb
    stop_nbdkit $d/pid
    echo "$cb: kernel sha256 $guest_sha, snapcow's" \
         "$(sha256sum < $d/export-$cb | cut -d' ' -f1)"
    test "$(sha256sum < $d/export-$cb | cut -d' ' -f1)" = "$guest_sha"
    test "$(sha256sum < $d/cow-$cb)" = "$cow_sha"
    $PYTHON $decode $d/origin $d/cow-$cb $d/decoded --chunk-size $cb
    cmp $d/decoded $d/export-$cb

    # snapcow adds to the kernel's store.
    start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/cow-$cb
    $PYTHON $model verify $d/sock $d/export-$cb 1 $cb
    $PYTHON $model write $d/sock $d/export-$cb 2 $cb 120 >/dev/null
    $PYTHON $model verify $d/sock $d/export-$cb 2 $cb
    stop_nbdkit $d/pid
    $PYTHON $decode $d/origin $d/cow-$cb $d/decoded --chunk-size $cb
    cmp $d/decoded $d/export-$cb
    sha256sum < $d/export-$cb | cut -d' ' -f1 > $d/want-sha-$cb
    echo "0 $(( SIZE / 512 )) snapshot $($PYTHON $usage $d/cow-$cb)" \
         > $d/want-status-$cb
done
test "$(sha256sum < $d/origin)" = "$origin_sha"
test "$(stat -c %y $d/origin)" = "$origin_stamp"

cat > $d/guest2.sh <<'EOF'
set -e
n=$(blockdev --getsz /dev/vda)
for pair in vdb:8 vdc:32; do
  dmsetup create snap --table "0 $n snapshot /dev/vda /dev/${pair%:*} P ${pair#*:}"
  echo "sha ${pair#*:} $(sha256sum < /dev/mapper/snap | cut -d' ' -f1)"
  echo "status ${pair#*:} $(dmsetup status snap)"
  dmsetup remove snap
done
EOF
kernel_boot $d/guest2.sh $d/out2 $d/origin $d/cow-4096 $d/cow-16384
cat $d/out2
for cb in 4096 16384; do
    cs=$(( cb / 512 ))
    got=$(sed -n "s/^sha $cs //p" $d/out2)
    echo "$cb: kernel sha256 $got, snapcow's $(cat $d/want-sha-$cb)"
    test "$got" = "$(cat $d/want-sha-$cb)"
    got=$(sed -n "s/^status $cs //p" $d/out2)
    echo "$cb: kernel status '$got', expected '$(cat $d/want-status-$cb)'"
    test "$got" = "$(cat $d/want-status-$cb)"
done
test "$(sha256sum < $d/origin)" = "$origin_sha"
