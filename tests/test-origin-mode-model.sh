#!/usr/bin/env bash
# test-origin-mode-model.sh: random concurrent writes to the origin and
# to every snapshot of a mode=origin server, several connections per
# export, overlapping chunks across exports, every export read at every
# step and checked against a model (origin-model.c); then the origin
# file, and every export after a restart.
#
# First with one store (4K chunks), then with three: that one, a 64K
# store made by the tool and a 16K one the server creates, the last two
# taken at a second point in time.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-omodel.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
P="$SNAPCOW_PLUGIN"
M=$abs_builddir/origin-model

$PYTHON $abs_srcdir/origin-exports.py image $d/origin \
        $(( 4 * 1024 * 1024 + 5 * 512 )) 2
cp $d/origin $d/m0              # the origin export
cp $d/origin $d/m1              # a.cow, the first point in time

start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow \
             chunk-size=4K
$M run $sock $d 11 60 $d/a.cow
stop_nbdkit $d/pid
cmp $d/origin $d/m0
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow
$M verify $sock $d $d/a.cow
stop_nbdkit $d/pid

# Three stores.
$SNAPCOW_TOOL create --chunk-size=64K $d/b.cow
cp $d/m0 $d/m2                  # b.cow and c.cow: the second point
cp $d/m0 $d/m3
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow \
             cow=$d/b.cow cow=$d/c.cow chunk-size=16K
$M run $sock $d 12 60 $d/a.cow $d/b.cow $d/c.cow
stop_nbdkit $d/pid
cmp $d/origin $d/m0
start_nbdkit -P $d/pid -U $sock $P $d/origin mode=origin cow=$d/a.cow \
             cow=$d/b.cow cow=$d/c.cow
$M verify $sock $d $d/a.cow $d/b.cow $d/c.cow
stop_nbdkit $d/pid
