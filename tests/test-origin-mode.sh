#!/usr/bin/env bash
# test-origin-mode.sh: mode=origin with one store, then with three of
# different chunk sizes taken at different points in time.
#
# For each: writes to the origin export; each snapshot export reads
# its point in time byte for byte, the origin export the new data, and
# after a clean stop the origin FILE holds the new data; a write to a
# snapshot export changes that snapshot only; after a restart all of
# it still holds.  nbdinfo --list shows every export with its exact
# description and preferred block size; an unknown export name is
# refused, and the log names the exports there are.  With -r every
# export is read-only and nothing is written.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'
requires nbdinfo --version

d=$(mktemp -d /tmp/snapcow-origin.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"
X="$PYTHON $abs_srcdir/origin-exports.py"

# A last partial chunk at every chunk size.
$X image $d/origin $(( 4 * 1024 * 1024 + 5 * 512 )) 1
cp $d/origin $d/t0              # the origin now: the first point in time
cp $d/origin $d/m0              # the origin export's model

# check_all NAME MODEL ...: every export against its model.
check_all ()
{
    while [ $# -gt 0 ]; do
        $X check $sock "$1" "$2"
        shift 2
    done
}

# 1. One store, 4K chunks.
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow \
             chunk-size=4K
$X write $sock "" $d/m0 1 60
cmp -s $d/m0 $d/t0 && exit 1    # the writes changed something
cp $d/t0 $d/ma
check_all "" $d/m0 "$d/a.cow" $d/ma
# A write to the snapshot export: that snapshot only.
$X write $sock "$d/a.cow" $d/ma 2 30
check_all "" $d/m0 "$d/a.cow" $d/ma
# The origin is written in place.
$X write $sock "" $d/m0 3 30
check_all "" $d/m0 "$d/a.cow" $d/ma
stop_nbdkit $d/pid
cmp $d/origin $d/m0

start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow
check_all "" $d/m0 "$d/a.cow" $d/ma
nbdinfo --list "nbd+unix:///?socket=$sock" > $d/list
cat $d/list
grep -Fx "export=\"\":" $d/list
grep -Fx "	description: origin $d/origin, written in place (mode=origin), with 1 snapshot: '$d/a.cow'; a store too full to copy into is invalidated (on-full=invalidate)" $d/list
grep -Fx "export=\"$d/a.cow\":" $d/list
grep -E "^	description: snapshot of $d/origin, COW store $d/a.cow, chunk size 4096, usage [0-9]+/[0-9]+ [0-9]+\$" $d/list
test "$(grep -c '^export=' $d/list)" = 2
stop_nbdkit $d/pid
cmp $d/origin $d/m0

# 2. Three stores: a.cow (4K, the first point in time), b.cow made by
# the tool with 64K chunks, and c.cow not there yet (chunk-size= says
# 16K for it).  b and c take the origin as it is now: a second point
# in time.
$SNAPCOW_TOOL create --chunk-size=64K $d/b.cow
cp $d/m0 $d/mb
cp $d/m0 $d/mc
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow \
             cow=$d/b.cow "cow=$d/c.cow" chunk-size=16K on-full=fail-write \
             2>$d/log
$X write $sock "" $d/m0 4 80
check_all "" $d/m0 "$d/a.cow" $d/ma "$d/b.cow" $d/mb "$d/c.cow" $d/mc
$X write $sock "$d/b.cow" $d/mb 5 20
$X write $sock "$d/c.cow" $d/mc 6 20
$X write $sock "" $d/m0 7 40
check_all "" $d/m0 "$d/a.cow" $d/ma "$d/b.cow" $d/mb "$d/c.cow" $d/mc
cmp -s $d/mb $d/mc && exit 1

# Every export listed, described, with its own preferred block size.
nbdinfo --list "nbd+unix:///?socket=$sock" > $d/list
cat $d/list
test "$(grep -c '^export=' $d/list)" = 4
grep -Fx "	description: origin $d/origin, written in place (mode=origin), with 3 snapshots: '$d/a.cow', '$d/b.cow', '$d/c.cow'; a store too full to copy into fails the origin write (on-full=fail-write)" $d/list
for s in a:4096 b:65536 c:16384; do
    grep -E "^	description: snapshot of $d/origin, COW store $d/${s%:*}.cow, chunk size ${s#*:}, usage [0-9]+/[0-9]+ [0-9]+\$" $d/list
done
SOCK=$sock D=$d nbdsh -c '
import os
sock, d = os.environ["SOCK"], os.environ["D"]
for name, want in (("", 65536), (d + "/a.cow", 4096),
                   (d + "/b.cow", 65536), (d + "/c.cow", 16384)):
    h = nbd.NBD()
    h.set_export_name(name)
    h.connect_unix(sock)
    got = h.get_block_size(nbd.SIZE_PREFERRED)
    assert got == want, (name, got, want)
    assert not h.is_read_only()
    h.shutdown()
'

# An unknown export: refused, and the log says what there is.
if nbdinfo "nbd+unix:///nope.cow?socket=$sock" 2>$d/client; then
    echo "$0: the unknown export nope.cow was served"
    exit 1
fi
cat $d/client
stop_nbdkit $d/pid
cmp $d/origin $d/m0
cat $d/log
grep -F "error: no export named 'nope.cow': this server has '' (origin), '$d/a.cow' (snapshot), '$d/b.cow' (snapshot), '$d/c.cow' (snapshot)" $d/log

# After a restart, every view is still there; the stores' chunk sizes
# are their own (the headers win over chunk-size=).
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow \
             cow=$d/b.cow cow=$d/c.cow
check_all "" $d/m0 "$d/a.cow" $d/ma "$d/b.cow" $d/mb "$d/c.cow" $d/mc
stop_nbdkit $d/pid
cmp $d/origin $d/m0

# With -r every export is read-only, and still shows its data; the
# files are not written.
md5sum $d/origin $d/a.cow $d/b.cow $d/c.cow > $d/sums
start_nbdkit -P $d/pid -U $sock -r $P $d/origin mode=origin \
             cow=$d/a.cow cow=$d/b.cow cow=$d/c.cow
check_all "" $d/m0 "$d/a.cow" $d/ma "$d/b.cow" $d/mb "$d/c.cow" $d/mc
nbdinfo --list "nbd+unix:///?socket=$sock" > $d/list
test "$(grep -c '^export=' $d/list)" = 4
test "$(grep -c 'is_read_only: true' $d/list)" = 4
stop_nbdkit $d/pid
md5sum -c $d/sums

for s in a:8 b:128 c:32; do
    snapcow_tool info --json $d/${s%:*}.cow | grep -E "\"chunk_sectors\": ${s#*:}[,}]"
done

# The store's export names are the cow= values as written: relative
# names stay relative, though the files are opened by absolute path.
(
    cd $d
    start_nbdkit -P $d/pid -U $sock $P origin mode=origin cow=a.cow \
                 cow=./b.cow cow=c.cow
    check_all "" $d/m0 "a.cow" $d/ma "./b.cow" $d/mb "c.cow" $d/mc
    stop_nbdkit $d/pid
)
