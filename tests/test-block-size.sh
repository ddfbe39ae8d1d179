#!/usr/bin/env bash
# test-block-size.sh: the export advertises a preferred block size equal
# to the chunk size (512 to 1M, default 16K), and multi-conn, FUA,
# flush, zero, trim and block status.  At the extreme chunk sizes a
# write across chunks reads back and survives a restart.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-bs.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
truncate -s 3M $d/origin

check='
import os
cs = int(os.environ["CS"])
assert h.get_block_size(nbd.SIZE_PREFERRED) == cs, \
    h.get_block_size(nbd.SIZE_PREFERRED)
assert h.get_block_size(nbd.SIZE_MINIMUM) == 1
assert h.can_multi_conn()
assert h.can_fua()
assert h.can_flush()
assert h.can_zero()
assert h.can_trim()
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
assert not h.is_read_only()
'
write='
data = bytes(range(256)) * 20
h.pwrite(data, 1234567)
h.flush()
'
read='
data = bytes(range(256)) * 20
assert h.pread(len(data) + 2, 1234566) == b"\0" + data + b"\0"
'

for cs in default 512 4096 65536 1048576; do
    rm -f $d/cow
    if [ $cs = default ]; then
        arg=
        export CS=16384
    else
        arg=chunk-size=$cs
        export CS=$cs
    fi
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/cow $arg
    nbdsh --base-allocation -u "nbd+unix:///?socket=$sock" \
          -c "$check" -c "$write" -c "$read"
    stop_nbdkit $d/pid
    $PYTHON $abs_srcdir/decode-store.py $d/origin $d/cow $d/decoded \
            --chunk-size $CS
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
    nbdsh --base-allocation -u "nbd+unix:///?socket=$sock" \
          -c "$check" -c "$read"
    stop_nbdkit $d/pid
done
