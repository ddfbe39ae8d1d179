#!/usr/bin/env bash
# test-origin-mode-trim.sh: in origin mode a trim of a snapshot export
# releases its chunks, as a backup tool that trims what it has copied
# needs (qemu's snapshot-access):
#  - chunks already copied are punched: the store file's allocated
#    blocks drop by at least their size;
#  - chunks not copied yet get a record, so later origin writes over
#    any trimmed chunk copy nothing: the file does not grow at all;
#  - chunks not trimmed are still copied, and read their point in
#    time, before and after a restart.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-otrim.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"
X="$PYTHON $abs_srcdir/origin-exports.py"
export SOCK=$sock NAME=$d/a.cow

M=$(( 1024 * 1024 ))
$X image $d/origin $(( 8 * M )) 5
cp $d/origin $d/t0
allocated () { echo $(( $(stat -c '%b * %B' $1) )); }

# origin_write FROM TO: write [FROM, TO) of the origin with new data.
origin_write ()
{
    FROM=$1 TO=$2 nbdsh -c '
import os
h.set_debug(False)
h.connect_unix(os.environ["SOCK"])
a, b = int(os.environ["FROM"]), int(os.environ["TO"])
for off in range(a, b, 1 << 20):
    h.pwrite(bytes([off >> 20 | 0x80]) * min(1 << 20, b - off), off)
h.flush()
'
}

start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow \
             chunk-size=4K
# 1. The origin's first 4M are copied into the store.
origin_write 0 $(( 4 * M ))
$X check $sock "$d/a.cow" $d/t0
copied=$(allocated $d/a.cow)
test $copied -ge $(( 4 * M ))

# 2. The backup has read the first 6M and trims them: 4M copied, 2M not.
nbdsh -c '
import os
h.set_debug(False)
h.set_export_name(os.environ["NAME"])
h.connect_unix(os.environ["SOCK"])
for off in range(0, 6 << 20, 1 << 20):
    h.trim(1 << 20, off)
h.flush()
'
trimmed=$(allocated $d/a.cow)
echo "allocated: $copied bytes after the copies, $trimmed after the trim"
# What is left is the header, the metadata areas of 1536 records and
# chunks reserved ahead: far less than the 4M punched.
test $trimmed -le $(( 128 * 1024 ))
test $(( copied - trimmed )) -ge $(( 4 * M - 128 * 1024 ))

# 3. Origin writes over all of the trimmed 6M: nothing is copied.
origin_write 0 $(( 6 * M ))
test $(allocated $d/a.cow) -le $trimmed

# 4. The last 2M were not trimmed: an origin write there copies, and
# the snapshot still reads its point in time there.
origin_write $(( 6 * M )) $(( 8 * M ))
test $(allocated $d/a.cow) -ge $(( trimmed + 2 * M ))
tail -c $(( 2 * M )) $d/t0 > $d/t0.tail
check_tail ()
{
    nbdsh -c '
import os
h.set_debug(False)
h.set_export_name(os.environ["NAME"])
h.connect_unix(os.environ["SOCK"])
want = open(os.environ["TAIL"], "rb").read()
assert h.pread(2 << 20, 6 << 20) == want
'
}
TAIL=$d/t0.tail check_tail
stop_nbdkit $d/pid

# Every chunk has exactly one record: 1024 copied, 512 released without
# a copy, 512 copied after the trim.
snapcow_tool info --json $d/a.cow | grep -E '"records": 2048,'
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow
TAIL=$d/t0.tail check_tail
stop_nbdkit $d/pid
