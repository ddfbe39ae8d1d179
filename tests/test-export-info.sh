#!/usr/bin/env bash
# test-export-info.sh: what the plugin tells clients about itself.
#  - The export description (nbdinfo's "description:") names the origin
#    and the store, and gives the chunk size and the usage line as
#    dmsetup status prints it, as of the connection.
#  - NBD_CMD_CACHE is supported natively: nbdkit's readahead filter
#    does not warn that it "won't do anything", a client's cache
#    request works, and it reads the origin into the page cache.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'
requires nbdinfo --version

d=$(mktemp -d /tmp/snapcow-info.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
export D=$d

$PYTHON -c '
import random, sys
open(sys.argv[1], "wb").write(random.Random(3).randbytes(4 << 20))
' $d/origin

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow \
             chunk-size=4K 2>$d/err
# A new store: the header and area 0 (2 chunks of 8 sectors).
nbdinfo "nbd+unix:///?socket=$sock" > $d/info
cat $d/info
size=$(( $(stat -c %s $d/cow) / 512 ))
grep -Fx "	description: snapshot of $d/origin, COW store $d/cow, chunk size 4096, usage 16/$size 16" $d/info

# Two data chunks, committed: next_free 4, so 32 sectors allocated.
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"x" * 100, 8190)
h.flush()
'
nbdinfo "nbd+unix:///?socket=$sock" > $d/info
cat $d/info
size=$(( $(stat -c %s $d/cow) / 512 ))
grep -Fx "	description: snapshot of $d/origin, COW store $d/cow, chunk size 4096, usage 32/$size 16" $d/info
stop_nbdkit $d/pid

# The same line as snapcow info prints for the store.
line=$(snapcow_tool info $d/cow | sed -n 's/^usage: //p')
test "$line" = "32/$size 16"

# Under the readahead filter: no warning, and reads are right.
rm -f $d/err
start_nbdkit -P $d/pid -U $sock --filter=readahead "$SNAPCOW_PLUGIN" \
             $d/origin cow=$d/cow 2>$d/err
nbdsh -u "nbd+unix:///?socket=$sock" -c '
import os
o = open(os.environ["D"] + "/origin", "rb").read()
o = o[:8190] + b"x" * 100 + o[8290:]
for off in range(0, len(o), 65536):
    assert h.pread(65536, off) == o[off:off + 65536]
'
stop_nbdkit $d/pid
cat $d/err
! grep -i "readahead" $d/err

# A client's cache request, over the origin and the store.  First the
# origin's pages are dropped from the page cache (this file only); the
# cache request must bring them back.
sync $d/origin
$PYTHON -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
' $d/origin
resident () {
    fincore --bytes --noheadings --output RES $d/origin | tr -d ' '
}
if fincore --version >/dev/null 2>&1; then
    before=$(resident)
    echo "origin bytes in the page cache before: $before"
fi
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
nbdsh -u "nbd+unix:///?socket=$sock" -c '
assert h.can_cache()
h.cache(4 << 20, 0)
h.cache(100, 8190)
'
stop_nbdkit $d/pid
if fincore --version >/dev/null 2>&1 && [ "$before" -lt $((1 << 20)) ]; then
    # WILLNEED starts the reads and returns: wait for them to land.
    for i in $(seq 100); do
        [ "$(resident)" -ge $((3 << 20)) ] && break
        sleep 0.1
    done
    echo "origin bytes in the page cache after: $(resident)"
    test "$(resident)" -ge $((3 << 20))
fi
