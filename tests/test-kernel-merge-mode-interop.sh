#!/usr/bin/env bash
# test-kernel-merge-mode-interop.sh: the online merge (nbdkit snapcow
# mode=merge) and the real kernel's snapshot-merge, each finishing a
# merge that the other started.  nbdkit snapcow (4K chunks) takes 600
# whole-chunk writes at random places, a run of 40 chunks and a write
# over the origin's last, partial chunk: a store of about 640 records
# over three areas.  The view is saved.  Two copies of origin and store:
#
# A. mode=merge with merge-step=4K is killed (SIGKILL) once a third of
#    the records are merged.  The store is half-merged (`snapcow info`:
#    records left between 0 and all) and checks without errors.  In the guest the kernel's snapshot-merge
#    finishes it: its status ends as a new store's (16/16384 16) and
#    the merged device reads as the view.
# B. In the same boot the kernel's snapshot-merge starts on the other
#    copy, slowed down (dm-snapshot's snapshot_copy_throttle), and the
#    device is suspended and removed once a third of the records are
#    merged.  On the host mode=merge finishes it, while a client reads
#    the export over and over against the view, until a read ends after
#    the merge.
#
# Both end with the origin equal to the former view and a store with no
# record, the usage line of a new store.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires nbdsh --version
requires nbdinfo --version
requires $PYTHON -c 'import nbd'
requires test -x "$SNAPCOW_TOOL"
kernel_require

d=$(mktemp -d /tmp/snapcow-kernel-mmi.XXXXXX)
cleanup_fn rm -rf "$d"
usage=$abs_srcdir/kernel-usage.py
sock=$d/sock
uri="nbd+unix:///?socket=$sock"

CB=4096
CS=$(( CB / 512 ))
E=$(( CB / 16 ))
# Whole sectors, not whole chunks.
SIZE=8386048
SECTORS=$(( SIZE / 512 ))
head -c $SIZE /dev/urandom > $d/origin0
cp $d/origin0 $d/originA
truncate -s 8M $d/cow0

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/originA \
             cow=$d/cow0 chunk-size=$CB
nbdsh -u "$uri" -c - <<PY
import os, random
h.set_debug(False)
rng = random.Random(57)
size = h.get_size()
for c in rng.sample(range(100, size // $CB), 600):
    h.pwrite(os.urandom($CB), c * $CB)
h.pwrite(os.urandom(40 * $CB), 20 * $CB)
tail = (size // $CB) * $CB - 1000
h.pwrite(os.urandom(size - tail), tail)
h.flush()
open("$d/view", "wb").write(h.pread(size, 0))
PY
stop_nbdkit $d/pid
cmp $d/originA $d/origin0
view=$(sha256sum < $d/view | cut -d' ' -f1)

records () {
    snapcow_tool info --json "$1" |
        $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["records"])'
}
# Python for nbdsh: desc() is the export's description, by a
# connection of its own; left(d) the records it says are left.
py_desc='
import nbd, re
h.set_debug(False)
def desc():
    h2 = nbd.NBD()
    h2.set_debug(False)
    h2.set_full_info(True)
    h2.connect_uri(h.get_uri())
    d = h2.get_export_description()
    h2.shutdown()
    return d
def left(d):
    m = re.search(r": (\d+) of \d+ records left", d)
    return int(m.group(1)) if m else None
'
# read_view: a client reads the whole export, byte for byte against
# the view, 4K at a time (so that a difference names its chunk).
read_view () {
    nbdsh -u "$uri" -c - <<PY
h.set_debug(False)
want = open("$d/view", "rb").read()
got = h.pread(h.get_size(), 0)
assert len(got) == len(want)
for i in range(0, len(want), 4096):
    assert got[i:i+4096] == want[i:i+4096], "differs in the 4K at %d" % i
PY
}

start=$(records $d/cow0)
echo "store: $start records"
test "$start" -gt $(( 2 * E ))

# A: mode=merge killed a third of the way.  The client's connection
# starts the merge; it polls the description (a few ms a poll) and
# kills the server itself.  Should a merge end before a poll sees it
# part-way, try again on fresh copies.
leftA=0
for try in 1 2 3; do
    cp $d/origin0 $d/originA
    cp $d/cow0 $d/cowA
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/originA \
                 cow=$d/cowA mode=merge merge-step=4K
    pid=$(cat $d/pid)
    nbdsh -u "$uri" -c "$py_desc" -c - <<PY
import os, signal
while True:
    n = left(desc())
    if n is not None and n <= $start * 2 // 3:
        break
os.kill($pid, signal.SIGKILL)
print("A: killed with %d records described as left" % n)
PY
    # (nbdkit -f is the test shell's own child.)
    wait $pid 2>/dev/null || true
    rm -f $d/pid
    leftA=$(records $d/cowA)
    echo "A: $leftA of $start records left"
    [ "$leftA" -gt 0 ] && [ "$leftA" -lt "$start" ] && break
done
test "$leftA" -gt 0
test "$leftA" -lt "$start"
snapcow_tool check --origin=$d/originA $d/cowA | grep ': 0 errors'

# B: the kernel's copy.
cp $d/origin0 $d/originB
cp $d/cow0 $d/cowB

cat > $d/guest.sh <<GUEST
set -e
n=\$(blockdev --getsz /dev/vda)
# merge_to NAME ORIGIN STORE LEFT: snapshot-merge of STORE into ORIGIN
# on device NAME, until no more than LEFT records are left; a merge
# stopped before its end is suspended.  Records left, from the usage
# the kernel sets while merging: metadata = (area + 2) chunks,
# allocated = area_location(area) + committed + 1 chunks, where
# area_location(area) = 1 + area * ($E + 1): allocated - area - 2.
merge_to () {
  name=\$1 want=\$4
  dmsetup create \$name --table "0 \$n snapshot-origin \$2"
  dmsetup suspend \$name
  dmsetup reload \$name --table "0 \$n snapshot-merge \$2 \$3 P $CS"
  dmsetup resume \$name
  i=0
  while :; do
    set -- \$(dmsetup status \$name)
    left=\$(( \${4%/*} / $CS - (\$5 / $CS - 2) - 2 ))
    [ \$left -le \$want ] && break
    i=\$((i + 1))
    [ \$i -lt 100000 ] || { echo "\$name: merge stuck: \$*"; exit 1; }
    [ \$want -gt 0 ] || sleep 0.1
  done
  [ \$want = 0 ] || dmsetup suspend \$name
  echo "\$name-status \$(dmsetup status \$name)"
  echo "\$name-left \$left"
}

# A: the kernel finishes the store mode=merge left half-merged.
merge_to A /dev/vda /dev/vdb 0
echo "A-sha \$(sha256sum < /dev/mapper/A | cut -d' ' -f1)"
dmsetup remove A

# B: the kernel starts, slowed down, and is stopped a third of the way.
t=/sys/module/dm_snapshot/parameters/snapshot_copy_throttle
if [ -w \$t ]; then echo 5 > \$t; echo "throttle \$(cat \$t)"; fi
merge_to B /dev/vdc /dev/vdd $(( start * 2 / 3 ))
dmsetup remove B
sync
GUEST
kernel_boot $d/guest.sh $d/out $d/originA $d/cowA $d/originB $d/cowB
cat $d/out

# A, finished by the kernel.
test "$(sed -n 's/^A-status //p' $d/out)" = \
     "0 $SECTORS snapshot-merge 16/16384 16"
test "$(sed -n 's/^A-sha //p' $d/out)" = "$view"
test "$(sha256sum < $d/originA | cut -d' ' -f1)" = "$view"
test "$(records $d/cowA)" = 0
test "$($PYTHON $usage $d/cowA)" = "16/16384 16"

# B, started by the kernel: really half-merged, then finished by
# mode=merge, read against the view all the way.
leftB=$(records $d/cowB)
echo "B: the kernel stopped with $leftB of $start records left" \
     "(it saw $(sed -n 's/^B-left //p' $d/out))"
test "$leftB" -gt 0
test "$leftB" -lt "$start"
snapcow_tool check --origin=$d/originB $d/cowB | grep ': 0 errors'
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/originB \
             cow=$d/cowB mode=merge merge-step=4K
# Whole reads, 64K at a time, until one ends after the merge did.
nbdsh -u "$uri" -c "$py_desc" -c - > $d/info <<PY
want = open("$d/view", "rb").read()
size = h.get_size()
assert size == len(want)
during = 0
for i in range(600):
    d = desc()
    assert "Merge failed" not in d, d
    for off in range(0, size, 65536):
        n = min(65536, size - off)
        assert h.pread(n, off) == want[off:off+n], "differs at %d" % off
    if "merged: the export is the origin" in d:
        break
    during += 1
print("B: %d whole reads begun during the merge" % during)
print(d)
PY
cat $d/info
grep -F ": 0 of $leftB records left" $d/info
grep -qF "status 16/16384 16" $d/info
read_view
stop_nbdkit $d/pid
test "$(sha256sum < $d/originB | cut -d' ' -f1)" = "$view"
test "$(records $d/cowB)" = 0
test "$($PYTHON $usage $d/cowB)" = "16/16384 16"
snapcow_tool check --origin=$d/originB $d/cowB | grep ': 0 errors'
