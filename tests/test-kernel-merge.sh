#!/usr/bin/env bash
# test-kernel-merge.sh: the real Linux kernel merges a store snapcow wrote
# back into the origin.  nbdkit snapcow (4K chunks) takes 700 whole-chunk
# writes at random places, which fill areas 0 and 1 and part of area 2,
# and a few sub-chunk writes, one of them in the origin's last partial
# chunk; the server is stopped.  In one boot the kernel checks the
# snapshot (sha256 and status), then, as LVM does, turns the origin's
# snapshot-origin device into a snapshot-merge one, waits until "dmsetup
# status" shows the merge done (allocated equal to metadata: no record
# left), and removes it.  On the host the origin must then be the former
# snapshot view (sha256), and the store must hold no record: the usage
# line of a new store, decode-store.py finding 0 records, snapcow serving
# the origin as it now is.

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
CS=$(( CB / 512 ))
# Whole sectors, not whole chunks.
SIZE=8386048
head -c $SIZE /dev/urandom > $d/origin
truncate -s 8M $d/cow

start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
             cow=$d/cow chunk-size=$CB
nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<PY
import os, random
h.set_debug(False)
rng = random.Random(23)
size = h.get_size()
for c in rng.sample(range(size // $CB), 700):
    h.pwrite(os.urandom($CB), c * $CB)
h.pwrite(os.urandom(1000), 12345)
h.pwrite(os.urandom(512), size - 1024)
h.pwrite(os.urandom(2000), (size // $CB) * $CB - 1000)
h.flush()
with open("$d/view", "wb") as f:
    for off in range(0, size, 1 << 20):
        f.write(h.pread(min(1 << 20, size - off), off))
PY
stop_nbdkit $d/pid
view_sha=$(sha256sum < $d/view | cut -d' ' -f1)
echo "snapcow's store: $($PYTHON $decode $d/origin $d/cow $d/decoded)," \
     "usage $($PYTHON $usage $d/cow)"
cmp $d/decoded $d/view
want_snap="0 $(( SIZE / 512 )) snapshot $($PYTHON $usage $d/cow)"

cat > $d/guest.sh <<GUEST
set -e
n=\$(blockdev --getsz /dev/vda)
dmsetup create base --table "0 \$n snapshot-origin /dev/vda"
dmsetup create snap --table "0 \$n snapshot /dev/vda /dev/vdb P $CS"
echo "status-snap \$(dmsetup status snap)"
echo "sha-snap \$(sha256sum < /dev/mapper/snap | cut -d' ' -f1)"
dmsetup remove snap
dmsetup suspend base
dmsetup reload base --table "0 \$n snapshot-merge /dev/vda /dev/vdb P $CS"
dmsetup resume base
echo "status-merging \$(dmsetup status base)"
i=0
while :; do
  s=\$(dmsetup status base)
  set -- \$s
  [ "\${4%/*}" = "\$5" ] && break
  i=\$((i + 1))
  [ \$i -lt 1200 ] || { echo "merge not done: \$s"; exit 1; }
  sleep 0.1
done
echo "status-merged \$s"
echo "sha-base \$(sha256sum < /dev/mapper/base | cut -d' ' -f1)"
dmsetup remove base
sync
echo 3 > /proc/sys/vm/drop_caches
echo "sha-origin \$(sha256sum < /dev/vda | cut -d' ' -f1)"
GUEST
kernel_boot $d/guest.sh $d/out $d/origin $d/cow
cat $d/out

sectors=$(( SIZE / 512 ))
echo "kernel status '$(sed -n 's/^status-snap //p' $d/out)'," \
     "expected '$want_snap'"
test "$(sed -n 's/^status-snap //p' $d/out)" = "$want_snap"
test "$(sed -n 's/^sha-snap //p' $d/out)" = "$view_sha"
# Done: no record left, the usage of a new store.
test "$(sed -n 's/^status-merged //p' $d/out)" = \
     "0 $sectors snapshot-merge 16/16384 16"
test "$(sed -n 's/^sha-base //p' $d/out)" = "$view_sha"
test "$(sed -n 's/^sha-origin //p' $d/out)" = "$view_sha"

echo "origin now $(sha256sum < $d/origin | cut -d' ' -f1)," \
     "former snapshot view $view_sha"
test "$(sha256sum < $d/origin | cut -d' ' -f1)" = "$view_sha"
echo "store after the merge: usage $($PYTHON $usage $d/cow)"
test "$($PYTHON $usage $d/cow)" = "16/16384 16"
$PYTHON $decode $d/origin $d/cow $d/decoded --chunk-size $CB --records 0
cmp $d/decoded $d/origin

# snapcow opens the merged store and serves the origin.
start_nbdkit -P $d/pid -U $d/sock -r "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<PY
import hashlib
h.set_debug(False)
assert hashlib.sha256(h.pread(h.get_size(), 0)).hexdigest() == "$view_sha"
PY
stop_nbdkit $d/pid
