#!/usr/bin/env bash
# test-kernel-merge-interop.sh: a merge that one side starts and the
# other finishes, against the real Linux kernel.  nbdkit snapcow (4K
# chunks) takes 700 whole-chunk writes at random places (areas 0, 1 and
# part of 2), a run of 40 chunks and writes into the origin's last,
# partial chunk; the view is saved.  Two copies of origin and store:
#
# A. `snapcow merge --rate` is killed (SIGKILL) half-way: records left
#    between 0 and all.  In the guest the kernel's snapshot target shows
#    the former view over the half-merged store, with the usage line
#    computed from the file, then snapshot-merge finishes the merge.
# B. In the same boot the kernel's snapshot-merge starts on the other
#    copy, slowed down (dm-snapshot's snapshot_copy_throttle), and the
#    device is suspended and removed once a third of the records are
#    merged.  On the host the store is half-merged (records left between
#    0 and all), shows the former view, checks without errors, and
#    `snapcow merge` finishes it.
#
# Both end with the origin equal to the former view and a store with no
# record, the usage line of a new store.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires nbdsh --version
requires $PYTHON -c 'import nbd'
requires test -x "$SNAPCOW_TOOL"
kernel_require

d=$(mktemp -d /tmp/snapcow-kernel-mi.XXXXXX)
cleanup_fn rm -rf "$d"
usage=$abs_srcdir/kernel-usage.py

CB=4096
CS=$(( CB / 512 ))
E=$(( CB / 16 ))
# Whole sectors, not whole chunks.
SIZE=8386048
head -c $SIZE /dev/urandom > $d/origin0
cp $d/origin0 $d/originA
truncate -s 8M $d/cow0

start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/originA \
             cow=$d/cow0 chunk-size=$CB
nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<PY
import os, random
h.set_debug(False)
rng = random.Random(31)
size = h.get_size()
chunks = rng.sample(range(100, size // $CB), 700)
for c in chunks:
    h.pwrite(os.urandom($CB), c * $CB)
h.pwrite(os.urandom(40 * $CB), 10 * $CB)
h.pwrite(os.urandom(2000), (size // $CB) * $CB - 1000)
h.flush()
with open("$d/view", "wb") as f:
    f.write(h.pread(size, 0))
PY
stop_nbdkit $d/pid
cmp $d/originA $d/origin0
view=$(sha256sum < $d/view | cut -d' ' -f1)

records () {
    "$SNAPCOW_TOOL" info --json "$1" |
        $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["records"])'
}
served_sha () {
    start_nbdkit -P $d/rpid -U $d/rsock -r "$SNAPCOW_PLUGIN" "$1" cow="$2"
    nbdsh -u "nbd+unix:///?socket=$d/rsock" -c '
import hashlib
print(hashlib.sha256(h.pread(h.get_size(), 0)).hexdigest())
'
    stop_nbdkit $d/rpid
}
start=$(records $d/cow0)
echo "store: $start records"
test "$start" -gt 700

# A: snapcow merge killed half-way.  About 3 s at 1M/s, committed every
# 256K; try kill times until one lands half-way.
leftA=0
for t in 1.2 0.8 1.6 0.5 2.0; do
    cp $d/origin0 $d/originA
    cp $d/cow0 $d/cowA
    ( exec "$SNAPCOW_TOOL" merge --quiet --rate=1M $d/originA $d/cowA ) &
    pid=$!
    sleep $t
    kill -9 $pid 2>/dev/null || true
    wait $pid || true
    leftA=$(records $d/cowA)
    echo "A: killed after $t s: $leftA of $start records left"
    [ "$leftA" -gt 0 ] && [ "$leftA" -lt "$start" ] && break
done
test "$leftA" -gt 0
test "$leftA" -lt "$start"
"$SNAPCOW_TOOL" check --origin=$d/originA $d/cowA | grep ': 0 errors'
test "$(served_sha $d/originA $d/cowA)" = "$view"
want_snapA="0 $(( SIZE / 512 )) snapshot $($PYTHON $usage $d/cowA)"

# B: the kernel's copy.
cp $d/origin0 $d/originB
cp $d/cow0 $d/cowB

cat > $d/guest.sh <<GUEST
set -e
n=\$(blockdev --getsz /dev/vda)
# A: the kernel reads snapcow's half-merged store, then finishes it.
dmsetup create baseA --table "0 \$n snapshot-origin /dev/vda"
dmsetup create snapA --table "0 \$n snapshot /dev/vda /dev/vdb P $CS"
echo "status-snapA \$(dmsetup status snapA)"
echo "sha-snapA \$(sha256sum < /dev/mapper/snapA | cut -d' ' -f1)"
dmsetup remove snapA
dmsetup suspend baseA
dmsetup reload baseA --table "0 \$n snapshot-merge /dev/vda /dev/vdb P $CS"
dmsetup resume baseA
i=0
while :; do
  s=\$(dmsetup status baseA)
  set -- \$s
  [ "\${4%/*}" = "\$5" ] && break
  i=\$((i + 1))
  [ \$i -lt 1200 ] || { echo "merge A not done: \$s"; exit 1; }
  sleep 0.1
done
echo "status-mergedA \$s"
dmsetup remove baseA

# B: the kernel starts, slowed down, and is stopped a third of the way.
t=/sys/module/dm_snapshot/parameters/snapshot_copy_throttle
if [ -w \$t ]; then echo 5 > \$t; echo "throttle \$(cat \$t)"; fi
dmsetup create baseB --table "0 \$n snapshot-origin /dev/vdc"
dmsetup suspend baseB
dmsetup reload baseB --table "0 \$n snapshot-merge /dev/vdc /dev/vdd P $CS"
dmsetup resume baseB
i=0
while :; do
  set -- \$(dmsetup status baseB)
  # Records left, from the usage the kernel sets while merging:
  # metadata = (area + 2) chunks, next_free = area_location(area) +
  # committed + 1, and the areas below the current one are full.
  area=\$(( \$5 / $CS - 2 ))
  committed=\$(( \${4%/*} / $CS - 2 - area * ($E + 1) ))
  left=\$(( area * $E + committed ))
  [ \$left -le \$(( $start * 2 / 3 )) ] && break
  i=\$((i + 1))
  [ \$i -lt 100000 ] || { echo "merge B made no progress: \$*"; exit 1; }
done
dmsetup suspend baseB
echo "status-stoppedB \$(dmsetup status baseB)"
dmsetup remove baseB
sync
echo "seen-leftB \$left"
GUEST
kernel_boot $d/guest.sh $d/out $d/originA $d/cowA $d/originB $d/cowB
cat $d/out

# A, finished by the kernel.
echo "kernel status '$(sed -n 's/^status-snapA //p' $d/out)'," \
     "expected '$want_snapA'"
test "$(sed -n 's/^status-snapA //p' $d/out)" = "$want_snapA"
test "$(sed -n 's/^sha-snapA //p' $d/out)" = "$view"
test "$(sed -n 's/^status-mergedA //p' $d/out)" = \
     "0 $(( SIZE / 512 )) snapshot-merge 16/16384 16"
test "$(sha256sum < $d/originA | cut -d' ' -f1)" = "$view"
test "$(records $d/cowA)" = 0
test "$($PYTHON $usage $d/cowA)" = "16/16384 16"

# B, started by the kernel: really half-merged, then finished here.
leftB=$(records $d/cowB)
echo "B: the kernel stopped with $leftB of $start records left"
test "$leftB" -gt 0
test "$leftB" -lt "$start"
"$SNAPCOW_TOOL" check --origin=$d/originB $d/cowB | grep ': 0 errors'
test "$(served_sha $d/originB $d/cowB)" = "$view"
"$SNAPCOW_TOOL" merge --json $d/originB $d/cowB > $d/mergeB.json
cat $d/mergeB.json
grep "\"records\": $leftB," $d/mergeB.json
grep '"status": "16/16384 16"' $d/mergeB.json
test "$(sha256sum < $d/originB | cut -d' ' -f1)" = "$view"
test "$(records $d/cowB)" = 0
test "$($PYTHON $usage $d/cowB)" = "16/16384 16"
"$SNAPCOW_TOOL" check --origin=$d/originB $d/cowB | grep ': 0 errors'
