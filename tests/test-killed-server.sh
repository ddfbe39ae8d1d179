#!/usr/bin/env bash
# test-killed-server.sh: the server dies and nothing flushed is lost.
#
# 1. SIGKILL: a client writes (new chunks and overwrites, seeded random
#    data) and flushes; the server is killed at a random moment while
#    writes are in flight, restarted on the same store, and every write
#    acknowledged before the last completed flush must read back; the
#    store must open cleanly.  Repeated KILLS times; at the end a clean
#    stop and decode-store.py checks the file.
# 2. SIGTERM during heavy writes: what was acknowledged and flushed is
#    there afterwards, and after a clean exit the store decodes.  If
#    nbdkit aborts instead (1.32.5 can, in raw_send_socket, with replies
#    in flight), only flushed data is checked and the abort is counted.

source ./functions.sh
set -e
requires $PYTHON -c 'import nbd'

: "${KILLS:=30}"
d=$(mktemp -d /tmp/snapcow-killed.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
export D=$d SOCK=$sock

truncate -s 8M $d/origin
$PYTHON -c 'import os,random; r=random.Random(7); os.write(1, r.randbytes(8<<20))' > $d/origin
cp $d/origin $d/flushed        # the snapshot as of the last completed flush

# Writes until killed.  After each flush completes, the model of what
# was flushed is saved (atomically, by rename).
writer='
import os, random, pickle
D = os.environ["D"]
rnd = random.Random(int(os.environ["SEED"]))
m = bytearray(open(D + "/flushed", "rb").read())
pending = open(D + "/pending", "wb")
try:
    h.connect_unix(os.environ["SOCK"])    # the kill may come first
    while True:
        for i in range(rnd.randint(1, 12)):
            off = rnd.randrange(len(m) - 70000)
            if rnd.random() < 0.5:
                off &= ~511
            n = rnd.randint(1, 70000)
            b = rnd.randbytes(n)
            pickle.dump((off, b), pending)
            pending.flush()
            h.pwrite(b, off)
            m[off:off + n] = b
        h.flush()
        open(D + "/flushed.tmp", "wb").write(m)
        os.rename(D + "/flushed.tmp", D + "/flushed")
        pending.truncate(0)
        pending.seek(0)
except nbd.Error:
    pass
'
# Every byte holds its flushed value or one written since; what is read
# becomes the new flushed state.
verify='
import os, pickle
D = os.environ["D"]
m = open(D + "/flushed", "rb").read()
h.connect_unix(os.environ["SOCK"])
got = h.pread(len(m), 0)
later = []
with open(D + "/pending", "rb") as f:
    while True:
        try:
            later.append(pickle.load(f))
        except EOFError:
            break
if got != m:
    ok = bytearray(len(m))
    for off, b in later:
        for i, c in enumerate(b):
            if got[off + i] == c:
                ok[off + i] = 1
    for i in range(len(m)):
        if got[i] != m[i] and not ok[i]:
            raise SystemExit("data lost at byte %d (%d pending writes)" %
                             (i, len(later)))
open(D + "/flushed", "wb").write(got)
open(D + "/pending", "wb").close()
'
: > $d/pending

start=$SECONDS
for (( k = 1; k <= KILLS; k++ )); do
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
    pid=$(cat $d/pid)
    SEED=$k nbdsh -c "$writer" &
    wpid=$!
    sleep 0.$(( RANDOM % 9 + 1 ))
    kill -KILL $pid
    wait $wpid
    p=$d/pid
    var="_nbdkit_job_${p//[^a-zA-Z0-9]/_}"
    wait "${!var}" 2>/dev/null || true
    rm -f $d/pid
    # Restart on the same store: it must open, and hold what was flushed.
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
    nbdsh -c "$verify"
    stop_nbdkit $d/pid
done
echo "$0: $KILLS kills with SIGKILL, $KILLS restarts, flushed data intact" \
     "($(( SECONDS - start )) s, COW $(stat -c %s $d/cow) bytes)"
# After the last clean stop the store decodes strictly, to what was read.
$PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded
cmp $d/decoded $d/flushed

# 2. SIGTERM during heavy writes.
aborts=0
for (( k = 1; k <= 5; k++ )); do
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
    pid=$(cat $d/pid)
    SEED=$(( 1000 + k )) nbdsh -c "$writer" &
    wpid=$!
    sleep 0.$(( RANDOM % 9 + 1 ))
    status=0
    stop_nbdkit $d/pid 2>$d/stop.err || status=$?
    wait $wpid
    if [ $status -ne 0 ]; then
        aborts=$(( aborts + 1 ))
        echo "$0: SIGTERM: nbdkit exited with status $status (abort counted)"
    fi
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
    nbdsh -c "$verify"
    stop_nbdkit $d/pid
    $PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded >/dev/null
    cmp $d/decoded $d/flushed
done
echo "$0: 5 SIGTERMs during writes, $aborts nbdkit aborts, flushed data intact"
