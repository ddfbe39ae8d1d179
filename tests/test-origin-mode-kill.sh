#!/usr/bin/env bash
# test-origin-mode-kill.sh: SIGKILL of a mode=origin server in the
# middle of a stream of flushed origin writes, several times.  After
# each restart every snapshot shows its point in time, byte for byte
# (a copy and its record are durable before the origin write is
# issued, so no chunk may show new origin data), and every byte of the
# origin holds its flushed value or one written since (any mix of
# acknowledged writes).  At the end, after a clean stop, each store is
# decoded offline by decode-store.py over the changed origin file, and
# must give the point in time again.
#
# Two stores of different chunk sizes (4K and 64K) see the same writes.
# Odd rounds run with origin writes deferred until their copies'
# commit (the default), even ones with origin-writes=synchronous.

source ./functions.sh
set -e
requires $PYTHON -c 'import nbd'

: "${KILLS:=10}"
d=$(mktemp -d /tmp/snapcow-okill.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"
X="$PYTHON $abs_srcdir/origin-exports.py"

$X image $d/origin $(( 8 * 1024 * 1024 )) 3
cp $d/origin $d/t0              # both snapshots' point in time
cp $d/origin $d/flushed         # the origin as of the last flush
: > $d/pending
$SNAPCOW_TOOL create --chunk-size=4K $d/a.cow
$SNAPCOW_TOOL create --chunk-size=64K $d/b.cow

# serve ROUND
serve ()
{
    local w=deferred
    (( $1 % 2 )) || w=synchronous
    start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin \
                 cow=$d/a.cow cow=$d/b.cow origin-writes=$w
}

start=$SECONDS
for (( k = 1; k <= KILLS; k++ )); do
    serve $k
    pid=$(cat $d/pid)
    $X stream $sock $d $k &
    wpid=$!
    sleep 0.$(( RANDOM % 9 + 1 ))
    kill -KILL $pid
    wait $wpid
    p=$d/pid
    var="_nbdkit_job_${p//[^a-zA-Z0-9]/_}"
    wait "${!var}" 2>/dev/null || true
    rm -f $d/pid
    echo "kill $k: $(stat -c %s $d/pending) bytes of writes pending"

    serve $k
    $X check $sock "$d/a.cow" $d/t0
    $X check $sock "$d/b.cow" $d/t0
    $X settle $sock $d
    stop_nbdkit $d/pid
done
cmp -s $d/flushed $d/t0 && { echo "$0: the origin never changed"; exit 1; }
echo "$0: $KILLS kills, every snapshot whole after each" \
     "($(( SECONDS - start )) s)"

# Offline, without the plugin: each store over the changed origin.
for s in a b; do
    $PYTHON $abs_srcdir/decode-store.py $d/origin $d/$s.cow $d/decoded
    cmp $d/decoded $d/t0
done
cmp $d/origin $d/flushed
