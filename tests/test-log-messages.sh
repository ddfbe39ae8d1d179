#!/usr/bin/env bash
# test-log-messages.sh: each message names the file it is about and
# appears once, through nbdkit's own log.
#
#   - a read the origin server fails (nbdkit's error filter behind an
#     NBD origin) is one error line naming the origin, not the store;
#   - an origin problem found at start-up names the origin file;
#   - a warning (the chunk-size mismatch) arrives in nbdkit's log format
#     naming the store, and not at all with --log=null, so that it
#     follows --log=syslog too.
source ./functions.sh
set -e
set -x
requires nbdsh --version
requires nbdkit --filter=error null --version

d=$(mktemp -d /tmp/snapcow-messages.XXXXXX)
cleanup_fn rm -rf "$d"
$PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(5).randbytes(1 << 20))' > "$d/base.img"

# nbdkit's lines at error level (libnbd's debug lines start "libnbd:").
errors () { grep '^nbdkit: .*error: ' "$1" || :; }

# 1. An NBD origin whose reads fail (the server stays up) while
#    $d/inject exists.
start_nbdkit -P "$d/origin.pid" -U "$d/origin.sock" -r --filter=error \
    file "$d/base.img" \
    error-pread=EIO error-pread-rate=100% error-pread-file="$d/inject"
uri="nbd+unix:///?socket=$d/origin.sock"
# (The shell's trace of start_nbdkit must not mix into nbdkit's log.)
set +x
start_nbdkit -P "$d/snap.pid" -U "$d/snap.sock" --log=stderr \
    "$SNAPCOW_PLUGIN" "$uri" cow="$d/nbd.cow" chunk-size=4K 2>"$d/log1"
set -x
nbdsh -u "nbd+unix:///?socket=$d/snap.sock" -c '
import errno, os
d = "'"$d"'"
base = open(d + "/base.img", "rb").read()
h.pwrite(b"a" * 512, 4096 + 100)        # copies chunk 1 from the origin
open(d + "/inject", "w").close()
for f in (lambda: h.pread(512, 65536 + 7),      # one read
          lambda: h.pwrite(b"b" * 512, 131072)): # one copy
    try:
        f()
        assert False, "no error"
    except nbd.Error as e:
        assert e.errnum == errno.EIO, e
os.unlink(d + "/inject")
assert h.pread(8192, 4096) == base[4096:4196] + b"a" * 512 + base[4708:12288]
assert h.pread(512, 65536 + 7) == base[65536+7:65536+7+512]
h.flush()
'
stop_nbdkit "$d/snap.pid"
stop_nbdkit "$d/origin.pid"
cat "$d/log1"
errors "$d/log1" > "$d/errors1"
# Exactly two errors, one per failed request, each naming the origin.
test "$(wc -l < "$d/errors1")" = 2
test "$(grep -cF ": error: $uri: cannot read the origin at offset 65543: Input/output error" "$d/errors1")" = 1
# The copy reads only the part of the chunk the write does not cover:
# its tail, from 131072 + 512.
test "$(grep -cF ": error: $uri: cannot read the origin at offset 131584: Input/output error" "$d/errors1")" = 1
test "$(grep -cF "$d/nbd.cow" "$d/errors1")" = 0
# The server answered: the connection was not lost.
test "$(grep -c "connection lost" "$d/log1")" = 0

# 2. A file origin: a 4K store, then an empty origin at start-up.
start_nbdkit -P "$d/snap.pid" -U "$d/snap.sock" \
    "$SNAPCOW_PLUGIN" "$d/base.img" cow="$d/file.cow" chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$d/snap.sock" -c 'h.pwrite(b"c" * 512, 0)'
stop_nbdkit "$d/snap.pid"
: > "$d/empty.img"
status=0
nbdkit_fails "$d/log2" -U "$d/x.sock" "$SNAPCOW_PLUGIN" "$d/empty.img" \
    cow="$d/file.cow" || status=$?
cat "$d/log2"
test $status = 1
errors "$d/log2" > "$d/errors2"
test "$(wc -l < "$d/errors2")" = 1
grep -qxF "nbdkit: error: $d/empty.img: the origin is empty (0 bytes)" \
     "$d/errors2"

# 3. The 4K store asked for with 16K chunks: a warning, in nbdkit's
#    format, naming the store...
set +x
start_nbdkit -P "$d/snap.pid" -U "$d/snap.sock" --log=stderr \
    "$SNAPCOW_PLUGIN" "$d/base.img" cow="$d/file.cow" chunk-size=16K \
    2>"$d/log3"
set -x
nbdsh -u "nbd+unix:///?socket=$d/snap.sock" -c '
assert h.pread(512, 0) == b"c" * 512
assert h.get_block_size(nbd.SIZE_PREFERRED) == 4096
'
stop_nbdkit "$d/snap.pid"
cat "$d/log3"
test "$(grep -c "warning" "$d/log3")" = 1
grep -qxF "nbdkit: error: warning: $d/file.cow: the store's chunk size is 4096 bytes, not the 16384 asked for: using the store's" "$d/log3"

# ... and through nbdkit's log only: --log=null swallows it.
set +x
start_nbdkit -P "$d/snap.pid" -U "$d/snap.sock" --log=null \
    "$SNAPCOW_PLUGIN" "$d/base.img" cow="$d/file.cow" chunk-size=16K \
    2>"$d/log4"
set -x
stop_nbdkit "$d/snap.pid"
cat "$d/log4"
test "$(grep -c "warning" "$d/log4")" = 0
