#!/usr/bin/env bash
# test-origin-mode-backup.sh: the README's backup workflow, end to end.
# A writer keeps writing the origin export while
#  1. nbdcopy pulls the snapshot export into a file: it is the point in
#     time, byte for byte;
#  2. a second pull goes range by range, trimming each range once
#     copied, on a store taken later: the copy is that point in time,
#     and the store ends up small although the writer went on;
# and at the end the origin file holds exactly what the writer wrote,
# and the stores can simply be deleted.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'
requires nbdcopy --version

d=$(mktemp -d /tmp/snapcow-obackup.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"
X="$PYTHON $abs_srcdir/origin-exports.py"
M=$(( 1024 * 1024 ))

$X image $d/origin $(( 8 * M )) 6
cp $d/origin $d/t0
cp $d/origin $d/m0
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin \
             cow=$d/backup1.cow chunk-size=64K
# The first connection creates the store: its point in time is t0.
$X check $sock "$d/backup1.cow" $d/t0

# 1. nbdcopy while the origin is written.
$X write $sock "" $d/m0 21 200 &
wpid=$!
nbdcopy --flush "nbd+unix:///$d/backup1.cow?socket=$sock" $d/backup1.img
wait $wpid
cmp $d/backup1.img $d/t0
$X check $sock "" $d/m0
stop_nbdkit $d/pid
cmp $d/origin $d/m0
rm $d/backup1.cow                      # dropped: the backup is done

# 2. A later backup, pulled and trimmed range by range, with the writer
# going on.
cp $d/m0 $d/t1
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin \
             cow=$d/backup2.cow chunk-size=64K
$X check $sock "$d/backup2.cow" $d/t1
$X write $sock "" $d/m0 22 200 &
wpid=$!
SOCK=$sock NAME=$d/backup2.cow OUT=$d/backup2.img nbdsh -c '
import os
h.set_debug(False)
h.set_export_name(os.environ["NAME"])
h.connect_unix(os.environ["SOCK"])
step = 1 << 20
with open(os.environ["OUT"], "wb") as f:
    for off in range(0, h.get_size(), step):
        n = min(step, h.get_size() - off)
        f.write(h.pread(n, off))
        h.trim(n, off)
h.flush()
'
wait $wpid
cmp $d/backup2.img $d/t1
$X check $sock "" $d/m0
stop_nbdkit $d/pid
cmp $d/origin $d/m0
# Every chunk was trimmed once read: a chunk the writer changed before
# the pull reached it was copied and then punched, one it changed after
# was never copied.  So, whatever the timing, the store ends with its
# header, its metadata area and the chunks reserved ahead (about 1M at
# 64K chunks), not with the megabytes the writer changed.
blocks=$(( $(stat -c '%b * %B' $d/backup2.cow) ))
echo "backup2.cow: $blocks bytes allocated"
test $blocks -le $(( 2 * M ))
rm $d/backup2.cow
