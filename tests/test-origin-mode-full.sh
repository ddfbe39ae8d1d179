#!/usr/bin/env bash
# test-origin-mode-full.sh: a store too small for the copies that
# origin writes need (cow-size=64K, 4K chunks), beside a second store
# with room (a file made larger than cow-size beforehand, which keeps
# its own size as its limit), both ways:
#
#  on-full=invalidate (the default, as the kernel): every origin write
#    succeeds; the full store is invalidated (its export then fails
#    reads, its header says invalid, and it is refused on restart); the
#    other snapshot is whole; the policy is logged once.
#  on-full=fail-write (qemu's on-cbw-error=break-guest-write): origin
#    writes that need a copy into the full store fail with ENOSPC and
#    leave the origin unchanged there; writes to chunks it holds work;
#    both snapshots are whole, before and after a restart; the policy
#    is logged once.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-ofull.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"
X="$PYTHON $abs_srcdir/origin-exports.py"
export D=$d SOCK=$sock

$X image $d/t0 $(( 1024 * 1024 )) 4

# big.cow: room for a copy of every chunk, whatever cow-size says.
big_store ()
{
    rm -f $d/small.cow $d/big.cow
    $SNAPCOW_TOOL create --chunk-size=4K $d/big.cow
    truncate -s 4M $d/big.cow
}

# Writes each 4K chunk of the origin once, in order, with its own
# data; records in $D/ok which succeeded and in $D/model what the
# origin must hold.  ENOSPC is the only failure allowed.
writer='
import os
D, SOCK = os.environ["D"], os.environ["SOCK"]
model = bytearray(open(D + "/t0", "rb").read())
h.set_debug(False)
h.connect_unix(SOCK)
ok = []
for c in range(len(model) // 4096):
    data = bytes([c % 251 + 1]) * 4096
    try:
        h.pwrite(data, c * 4096)
        model[c * 4096:(c + 1) * 4096] = data
        ok.append(c)
    except nbd.Error as e:
        assert e.errno == "ENOSPC", (c, e)
# A chunk copied before the store filled takes writes still.
if ok:
    data = b"again" * 800
    h.pwrite(data, ok[0] * 4096 + 100)
    model[ok[0] * 4096 + 100:ok[0] * 4096 + 100 + len(data)] = data
h.flush()
open(D + "/model", "wb").write(model)
open(D + "/ok", "w").write(" ".join(map(str, ok)))
'

# 1. on-full=invalidate.
cp $d/t0 $d/origin
big_store
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin \
             cow=$d/small.cow cow=$d/big.cow chunk-size=4K cow-size=64K \
             2>$d/log
nbdsh -c "$writer"
test "$(wc -w < $d/ok)" = 256                # every origin write worked
$X check $sock "" $d/model
$X check $sock "$d/big.cow" $d/t0
NAME=$d/small.cow nbdsh -c '
import os
h.set_export_name(os.environ["NAME"])
h.connect_unix(os.environ["SOCK"])
try:
    h.pread(4096, 0)
    raise SystemExit("the invalidated snapshot was read")
except nbd.Error as e:
    print("read of the invalidated snapshot: %s" % e)
'
stop_nbdkit $d/pid
cmp $d/origin $d/model
cat $d/log
# One line says it, with its cause and the policy.
test "$(grep -c "error: $d/small.cow: .*: origin writes go on and invalidate this snapshot (on-full=invalidate)$" $d/log)" = 1
test "$(grep -c "$d/small.cow: .*\(full\|invalidated,\)" $d/log)" = 1
! grep -F "$d/big.cow" $d/log
snapcow_tool info --json $d/small.cow | grep '"valid": 0'
status=0
nbdkit_fails $d/err -U $d/sock2 $P $d/origin mode=origin cow=$d/small.cow \
             cow=$d/big.cow || status=$?
cat $d/err
test $status != 0 && test $status != 124
grep -F "$d/small.cow" $d/err | grep -qi invalid

# 2. on-full=fail-write.
cp $d/t0 $d/origin
big_store
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin \
             cow=$d/small.cow cow=$d/big.cow chunk-size=4K cow-size=64K \
             on-full=fail-write 2>$d/log
nbdsh -c "$writer"
n=$(wc -w < $d/ok)
cat $d/ok
test $n -gt 0 && test $n -lt 256
# The chunks that worked are the first n: after that, the store is full.
test "$(cat $d/ok)" = "$(seq -s ' ' 0 $(( n - 1 )))"
cmp -s $d/model $d/t0 && exit 1
$X check $sock "" $d/model
$X check $sock "$d/small.cow" $d/t0
$X check $sock "$d/big.cow" $d/t0
stop_nbdkit $d/pid
cmp $d/origin $d/model                       # unchanged where it failed
cat $d/log
test "$(grep -c "error: $d/small.cow: .*: origin writes that need a copy fail with ENOSPC and the snapshot stays whole (on-full=fail-write)$" $d/log)" = 1
test "$(grep -c "$d/small.cow: " $d/log)" = 1
! grep -F "$d/big.cow" $d/log

start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin \
             cow=$d/small.cow cow=$d/big.cow cow-size=64K on-full=fail-write
$X check $sock "" $d/model
$X check $sock "$d/small.cow" $d/t0
$X check $sock "$d/big.cow" $d/t0
stop_nbdkit $d/pid
snapcow_tool info --json $d/small.cow | grep '"valid": 1'
