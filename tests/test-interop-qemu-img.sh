#!/usr/bin/env bash
# test-interop-qemu-img.sh: qemu-io changes the export and a plain copy
# of the origin the same way (writes, zeroes, discards, the last partial
# chunk, a sparse origin region); "qemu-img compare" finds them
# identical, before and after a restart, and finds a difference when
# there is one.  A discard follows the kernel's discard_zeroes_cow: the
# chunks the store holds read as zeroes afterwards, the others keep the
# origin's data, so the copy gets zeroes only over the first part.
# "qemu-img map" reports zero extents for zeroed and discarded chunks and
# for the untouched sparse region, data where written or left alone.

source ./functions.sh
set -e
set -x
requires qemu-img --version
requires qemu-io --version

d=$(mktemp -d /tmp/snapcow-qemu.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
uri="nbd+unix:///?socket=$sock"

# 8M + 5000 bytes: data, a 2M hole at 2M-4M, data.
$PYTHON -c '
import random, sys
r = random.Random(11)
with open(sys.argv[1], "wb") as f:
    f.write(r.randbytes(2 << 20))
    f.seek(4 << 20)
    f.write(r.randbytes((4 << 20) + 5000))
' $d/origin
cp --sparse=always $d/origin $d/copy
o=$(md5sum < $d/origin)

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
# 6M..6M+256k is copied into the store, then 6M..6M+512k discarded.
cmds=(-c 'write -P 0xaa 100k 300k'
      -c 'write -P 0xbb 2500k 64k'
      -c 'write -z 5M 1M'
      -c 'write -P 0xee 6M 256k'
      -c DISCARD
      -c 'write -P 0xcc 8M 5000'
      -c 'write -z 1000k 10k'
      -c 'write -P 0xdd 7000k 1'
      -c 'flush')
qemu-io -f raw "${cmds[@]/DISCARD/discard 6M 512k}" "$uri"
qemu-io -f raw "${cmds[@]/DISCARD/write -z 6M 256k}" $d/copy
qemu-img compare -f raw -F raw "$uri" $d/copy

# The map of the export.
qemu-img map -f raw --output=json "$uri" > $d/map.json
cat $d/map.json
$PYTHON -c '
import json, sys
m = json.load(open(sys.argv[1]))
K, M = 1024, 1024 * 1024
def check(start, length, want):
    for e in m:
        if e["start"] < start + length and start < e["start"] + e["length"]:
            if want == "zero":
                assert e["zero"] and not e["data"], (start, length, e)
            else:
                assert e["data"] and not e["zero"], (start, length, e)
check(5 * M, M, "zero")              # write -z, whole chunks
check(6 * M, 256 * K, "zero")        # discarded where copied
check(6 * M + 256 * K, 256 * K, "data")  # discarded, never copied
check(2 * M, 400 * K, "zero")        # sparse origin, untouched
check(3 * M, M, "zero")
check(100 * K, 300 * K, "data")      # written
check(2500 * K, 64 * K, "data")      # written into the hole
check(8 * M, 5000, "data")           # the last partial chunk
# qemu rounds the size up to whole sectors.
assert sum(e["length"] for e in m) == (8 * M + 5000 + 511) // 512 * 512
' $d/map.json

stop_nbdkit $d/pid
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
qemu-img compare -f raw -F raw "$uri" $d/copy

# compare must be able to fail.
printf x | dd of=$d/copy bs=1 seek=7777777 conv=notrunc status=none
status=0
qemu-img compare -f raw -F raw "$uri" $d/copy || status=$?
test $status = 1
stop_nbdkit $d/pid

test "$(md5sum < $d/origin)" = "$o"
