#!/usr/bin/env bash
# test-readonly.sh: with nbdkit -r nothing is written to either file.
# A missing COW file is an error, naming it, when a client connects (it
# is not created, and the plain origin is not served in its place); an
# existing store serves its snapshot, not a byte of either file
# changes, and writes, zeroes and trims fail for the client.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-ro.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock

$PYTHON -c '
import random, sys
open(sys.argv[1], "wb").write(random.Random(7).randbytes(1000000))
' $d/origin
o=$(md5sum < $d/origin)
ostamp=$(stat -c %y $d/origin)

# The client must see a read-only export whose writes fail.
check_ro='
import errno
assert h.is_read_only()
# Send the commands anyway, so that the server refuses them.
h.set_strict_mode(0)
for f in (lambda: h.pwrite(b"w" * 4096, 0),
          lambda: h.zero(4096, 0),
          lambda: h.trim(4096, 0)):
    try:
        f()
    except nbd.Error as e:
        assert e.errnum in (errno.EPERM, errno.EROFS), e
    else:
        raise AssertionError("a write succeeded on a read-only export")
'

# 1. No COW file: the connection is refused with an error that names
# the store, and nothing is created.  (nbdkit tells the plugin about -r
# only when a client connects.)
start_nbdkit -P $d/pid -U $sock -r "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow \
             2>$d/err
if nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pread(512, 0)'; then
    echo "$0: -r with a missing store served something"
    exit 1
fi
stop_nbdkit $d/pid
cat $d/err
grep -F "error: the COW store $d/cow does not exist, and read-only (-r) creates nothing" $d/err
test ! -e $d/cow

# 2. An existing store with data in it.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow \
             chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"a" * 5000, 3000)
h.pwrite(b"b" * 8192, 8192 * 10)
h.flush()
'
stop_nbdkit $d/pid
c=$(md5sum < $d/cow)
cstamp=$(stat -c %y $d/cow)
sleep 0.01

start_nbdkit -P $d/pid -U $sock -r "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
ORIGIN=$d/origin nbdsh -u "nbd+unix:///?socket=$sock" -c "$check_ro" -c '
import os
exp = bytearray(open(os.environ["ORIGIN"], "rb").read())
exp[3000:8000] = b"a" * 5000
exp[81920:90112] = b"b" * 8192
assert h.pread(1000000, 0) == exp
h.flush()
'
stop_nbdkit $d/pid

test "$(md5sum < $d/origin)" = "$o"
test "$(stat -c %y $d/origin)" = "$ostamp"
test "$(md5sum < $d/cow)" = "$c"
test "$(stat -c %y $d/cow)" = "$cstamp"
