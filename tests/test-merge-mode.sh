#!/usr/bin/env bash
# test-merge-mode.sh: mode=merge, the online merge (the kernel's
# snapshot-merge).  A store is made by snapshot mode (4K chunks, random
# writes and the origin's last partial chunk); its view is the model.
# - refusals at start-up, one line each: no store, merge-step= or
#   overflow=invalidate where they do not apply, an NBD URI origin, a
#   new (empty) store, and a server in origin mode on the origin a merge holds;
# - with -r the view is served, nothing is merged, no file changes, and
#   the description says the merge has not started;
# - served writable with small steps (merge-step=4K), a client reads
#   and writes at random during the merge, each read byte for byte
#   against the model; the description is polled until it says merged;
#   then the origin file equals the model, `snapcow info` shows no
#   record and the kernel's usage after a merge (16/TOTAL 16), and the
#   export reads the model;
# - on a second store, the server is killed (SIGKILL) in the middle of
#   the merge, over and over, after writes flushed each time: every
#   restart shows the model, the store checks without errors, at least
#   one kill left it half-merged, and the last run finishes with the
#   origin equal to the model; `snapcow info` on the store a server
#   is merging shows no more records than the description.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires nbdsh --version
requires nbdinfo --version

d=$(mktemp -d /tmp/snapcow-merge-mode.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
uri="nbd+unix:///?socket=$sock"
P="$SNAPCOW_PLUGIN"
SIZE=$(( 6 * 1024 * 1024 + 1000 ))

# make_store ORIGIN COW SEED WRITES: the store, by snapshot mode; its
# view goes to ORIGIN.model.
make_store ()
{
    start_nbdkit -P $d/pid -U $sock $P "$1" cow="$2" chunk-size=4K
    nbdsh -u "$uri" -c - <<PY
import random
random.seed($3)
size = h.get_size()
for i in range($4):
    n = random.randrange(1, 3 * 4096)
    off = random.randrange(0, size - n)
    h.pwrite(random.randbytes(n), off)
h.pwrite(b"\xa5" * 700, size - 700)
h.flush()
open("$1.model", "wb").write(h.pread(size, 0))
PY
    stop_nbdkit $d/pid
}

desc () { nbdinfo "$uri" | sed -n 's/^[[:space:]]*description: //p'; }
records () {
    snapcow_tool info --json "$1" 2>/dev/null |
        $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["records"])'
}
usage () {
    snapcow_tool info --json "$1" 2>/dev/null |
        $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["usage"])'
}

# check_view MODEL: the export reads MODEL, byte for byte.
check_view ()
{
    nbdsh -u "$uri" -c - <<PY
want = open("$1", "rb").read()
got = h.pread(h.get_size(), 0)
assert len(got) == len(want)
for i in range(0, len(want), 4096):
    assert got[i:i+4096] == want[i:i+4096], "differs in the 4K at %d" % i
PY
}

# wait_merged: poll the description until the merge is done.
wait_merged ()
{
    local i
    for (( i = 0; i < 1200; i++ )); do
        desc > $d/desc
        grep -q 'merged: the export is the origin' $d/desc && return 0
        grep -q 'Merge failed' $d/desc && { cat $d/desc; return 1; }
        sleep 0.1
    done
    echo "$0: the merge did not end"; cat $d/desc
    return 1
}

# refused MESSAGE ARGS...: expect_refusal of the plugin with ARGS.
refused ()
{
    expect_refusal "$1" $P "${@:2}"
}

head -c $SIZE /dev/urandom > $d/origin0
cp $d/origin0 $d/origin
refused "mode=merge: the COW store $d/cow does not exist (No such file or directory): there is no snapshot to merge" \
        $d/origin cow=$d/cow mode=merge
refused "merge-step=4096: only for mode=merge" \
        $d/origin cow=$d/cow merge-step=4K
refused "overflow=invalidate: not in mode=merge" \
        $d/origin cow=$d/cow mode=merge overflow=invalidate
refused "mode=merge: the origin nbd+unix:///?socket=$d/x is an NBD URI" \
        "nbd+unix:///?socket=$d/x" cow=$d/cow mode=merge
refused "mode=merged: must be 'snapshot', 'origin' or 'merge'" \
        $d/origin cow=$d/cow mode=merged
: > $d/empty.cow
refused "$d/empty.cow: the store is new (magic 0): there is no snapshot to merge" \
        $d/origin cow=$d/empty.cow mode=merge
test ! -s $d/empty.cow
test ! -e $d/cow
make_store $d/origin $d/cow 1 500
cmp -s $d/origin $d/origin0     # snapshot mode leaves the origin alone
start_records=$(records $d/cow)
test "$start_records" -gt 400

# Read-only: the view, no merge, no change.
sum_origin=$(md5sum < $d/origin)
sum_cow=$(md5sum < $d/cow)
start_nbdkit -P $d/pid -U $sock -r $P $d/origin cow=$d/cow mode=merge
check_view $d/origin.model
desc | grep -F "merge not started (no writable connection yet, or -r): $start_records of $start_records records left, 0 bytes merged"
stop_nbdkit $d/pid
test "$(md5sum < $d/origin)" = "$sum_origin"
test "$(md5sum < $d/cow)" = "$sum_cow"

# Writable: reads and writes during the merge, then its end.
start_nbdkit -P $d/pid -U $sock $P $d/origin cow=$d/cow mode=merge \
             merge-step=4K
# The origin is locked as in origin mode.
refused "mode=origin: cannot lock the origin $d/origin: in use by another server in mode=origin or mode=merge" \
        $d/origin cow=$d/other mode=origin
nbdsh -u "$uri" -c - <<PY
import random
import nbd
random.seed(7)
model = bytearray(open("$d/origin.model", "rb").read())
size = h.get_size()
assert size == len(model)
seen = set()
for i in range(600):
    kind = random.randrange(10)
    n = random.randrange(1, 3 * 4096)
    off = random.randrange(0, size - n)
    if kind < 4:
        data = random.randbytes(n)
        h.pwrite(data, off, nbd.CMD_FLAG_FUA if kind == 0 else 0)
        model[off:off+n] = data
    elif kind == 4:
        h.zero(n, off)
        model[off:off+n] = bytes(n)
    else:
        assert h.pread(n, off) == model[off:off+n], "read at %d" % off
    if i % 100 == 0:
        assert h.pread(size, 0) == model, "whole read at op %d" % i
        h2 = nbd.NBD()
        h2.set_full_info(True)
        h2.connect_uri("$uri")
        seen.add(h2.get_export_description().split(":")[1].strip())
        h2.shutdown()
h.flush()
assert h.pread(size, 0) == model
open("$d/origin.model", "wb").write(model)
print("seen:", seen)
assert "merge not started (no writable connection yet, or -r)" not in seen
PY
wait_merged
cat $d/desc
grep -F ": 0 of $start_records records left" $d/desc
check_view $d/origin.model
stop_nbdkit $d/pid
cmp $d/origin $d/origin.model
test "$(records $d/cow)" = 0
usage $d/cow | grep -E '^16/[0-9]+ 16$'
snapcow_tool check --origin=$d/origin $d/cow | grep ': 0 errors'

# SIGKILL in the middle, over and over.
cp $d/origin0 $d/o2
make_store $d/o2 $d/c2 2 900
mid=0
for (( k = 1; k <= 4; k++ )); do
    before=$(records $d/c2)
    test "$before" -gt 0
    start_nbdkit -P $d/pid -U $sock $P $d/o2 cow=$d/c2 mode=merge \
                 merge-step=4K
    pid=$(cat $d/pid)
    # Writes, flushed: they are in the model, whatever the kill does.
    nbdsh -u "$uri" -c - <<PY
import random
random.seed(100 + $k)
model = bytearray(open("$d/o2.model", "rb").read())
size = h.get_size()
assert h.pread(size, 0) == model, "the view at restart $k"
for i in range(30):
    n = random.randrange(1, 2 * 4096)
    off = random.randrange(0, size - n)
    data = random.randbytes(n)
    h.pwrite(data, off)
    model[off:off+n] = data
h.flush()
open("$d/o2.model", "wb").write(model)
PY
    # Kill once the merge has committed a step or more since this start.
    for (( i = 0; i < 1200; i++ )); do
        left=$(desc | sed -n 's/.*: \([0-9]*\) of [0-9]* records left.*/\1/p')
        test -n "$left"
        [ "$left" -lt "$before" ] && break
        sleep 0.05
    done
    # snapcow info reads the store as the last step left it.
    snapcow_tool info --json $d/c2 > $d/info.json 2> $d/info.err
    grep -F '"in_use": true' $d/info.json
    live=$($PYTHON -c 'import json, sys; print(json.load(sys.stdin)["records"])' < $d/info.json)
    test "$live" -le "$left"
    kill -KILL $pid
    p=$d/pid
    var="_nbdkit_job_${p//[^a-zA-Z0-9]/_}"
    wait "${!var}" 2>/dev/null || true
    rm -f $d/pid
    after=$(records $d/c2)
    echo "kill $k: $before -> $after records"
    test "$after" -lt "$before"
    [ "$after" -gt 0 ] && mid=$(( mid + 1 ))
    snapcow_tool check --origin=$d/o2 $d/c2 | grep ': 0 errors'
    [ "$after" = 0 ] && break
done
test $mid -ge 1
start_nbdkit -P $d/pid -U $sock $P $d/o2 cow=$d/c2 mode=merge
check_view $d/o2.model
wait_merged
check_view $d/o2.model
stop_nbdkit $d/pid
cmp $d/o2 $d/o2.model
test "$(records $d/c2)" = 0
echo "$0: merged with reads and writes; $mid kills in the middle"
