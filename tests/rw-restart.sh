# rw-restart.sh: the body of test-rw-restart-*.sh (sourced, after
# functions.sh, with CHUNK, SIZE, FILL1 and FILL2 set).
#
# Seeded random writes of every shape against a model; read back; flush;
# clean stop; decode the COW file with decode-store.py and compare with
# the model; restart (without chunk-size: the store's own wins) and read
# back; a second round of writes on the reloaded store; again.  The
# origin is never touched.

requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-rw.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
model=$abs_srcdir/rw-model.py
decode=$abs_srcdir/decode-store.py

$PYTHON $model origin $d/origin $SIZE $CHUNK
cp $d/origin $d/model
before=$(md5sum < $d/origin)
stamp=$(stat -c %y $d/origin)

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow \
             chunk-size=$CHUNK
n=$($PYTHON $model write $sock $d/model 1 $CHUNK $FILL1)
$PYTHON $model verify $sock $d/model 1 $CHUNK
stop_nbdkit $d/pid
$PYTHON $decode $d/origin $d/cow $d/decoded --chunk-size $CHUNK --records $n
cmp $d/decoded $d/model
test "$(md5sum < $d/origin)" = "$before"

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
$PYTHON $model verify $sock $d/model 2 $CHUNK
n=$($PYTHON $model write $sock $d/model 2 $CHUNK $FILL2)
$PYTHON $model verify $sock $d/model 3 $CHUNK
stop_nbdkit $d/pid
$PYTHON $decode $d/origin $d/cow $d/decoded --chunk-size $CHUNK --records $n
cmp $d/decoded $d/model

start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
$PYTHON $model verify $sock $d/model 4 $CHUNK
stop_nbdkit $d/pid

test "$(md5sum < $d/origin)" = "$before"
test "$(stat -c %y $d/origin)" = "$stamp"
