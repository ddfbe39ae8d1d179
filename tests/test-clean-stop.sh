#!/usr/bin/env bash
# test-clean-stop.sh: records are committed at a clean stop.  Writes
# without any flush survive (1) SIGTERM of an idle server and (2) the
# client disconnecting from "nbdkit -s --exit-with-parent"; the COW file
# decodes to the same data each time.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-stop.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
export D=$d

truncate -s 3M $d/origin
printf 'the origin' | dd of=$d/origin bs=1 seek=100000 conv=notrunc status=none
cp $d/origin $d/model

# write SEED: unflushed writes of new and old chunks; updates the model.
write='
import os, random
D = os.environ["D"]
rnd = random.Random(int(os.environ["SEED"]))
m = bytearray(open(D + "/model", "rb").read())
for i in range(60):
    off = rnd.randrange(len(m) - 70000)
    n = rnd.randint(1, 70000)
    b = rnd.randbytes(n)
    h.pwrite(b, off)
    m[off:off + n] = b
assert h.pread(len(m), 0) == m
open(D + "/model", "wb").write(m)
'
verify='
import os
m = open(os.environ["D"] + "/model", "rb").read()
assert h.pread(len(m), 0) == m
'

# 1. SIGTERM while idle.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
SEED=1 nbdsh -u "nbd+unix:///?socket=$sock" -c "$write"
stop_nbdkit $d/pid
$PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded
cmp $d/decoded $d/model
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
nbdsh -u "nbd+unix:///?socket=$sock" -c "$verify"
stop_nbdkit $d/pid

# 2. The last client goes away from nbdkit -s.
mapfile -t NBDKIT < <(nbdkit_cmd)
export NBDKIT_ARGV="$(printf '%s\n' "${NBDKIT[@]}" -s --exit-with-parent \
                      "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow)"
connect='
import os
argv = os.environ["NBDKIT_ARGV"].split("\n")
h.connect_command(argv)
'
SEED=2 nbdsh -c "$connect" -c "$write" -c 'h.shutdown()'
# nbdkit -s exits once the client has gone; wait until the lock is free.
for i in $(seq 100); do
    flock -n $d/cow true && break
    sleep 0.1
done
$PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded
cmp $d/decoded $d/model
nbdsh -c "$connect" -c "$verify"
