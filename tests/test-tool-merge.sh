#!/usr/bin/env bash
# test-tool-merge.sh: snapcow merge ORIGIN COW.  nbdkit snapcow (4K
# chunks) takes a sequential run of writes, writes at random places and
# one into the origin's last partial chunk; the view is saved.  Then:
# - a merge with --json: the origin is the former view byte for byte,
#   the summary's fields, no record left, info's usage line that of a
#   new store (16/total 16), no check error (the one warning is the
#   merged data, left in the store), the plugin serves the origin;
# - --quiet prints nothing; --rate finishes with the same result;
# - refusals, the origin unchanged each time: a server holding the
#   store, a store with check errors (named), an origin too small for
#   the records, usage errors;
# - SIGKILL at random points, over and over: after each kill the store
#   checks without errors and shows the same view, some kills leave it
#   half-merged, and a last run finishes the merge.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires nbdsh --version
requires $PYTHON -c 'import json'

d=$(mktemp -d /tmp/snapcow-tool-merge.XXXXXX)
cleanup_fn rm -rf "$d"

# run NAME ARGS...: snapcow ARGS, stdout to $d/NAME.out, stderr to
# $d/NAME.err, the exit status to $d/NAME.st.
run ()
{
    local name=$1 st=0
    shift
    ( set +x; snapcow_tool "$@" > "$d/$name.out" 2> "$d/$name.err" ) || st=$?
    cat "$d/$name.out" "$d/$name.err"
    echo $st > "$d/$name.st"
}

# sha of what the plugin serves of ORIGIN with COW, read-only.
served_sha ()
{
    start_nbdkit -P "$d/rpid" -U "$d/rsock" -r "$SNAPCOW_PLUGIN" "$1" cow="$2"
    nbdsh -u "nbd+unix:///?socket=$d/rsock" -c '
import hashlib
print(hashlib.sha256(h.pread(h.get_size(), 0)).hexdigest())
'
    stop_nbdkit "$d/rpid"
}

sha () { sha256sum < "$1" | cut -d' ' -f1; }
records () {
    snapcow_tool info --json "$1" |
        $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["records"])'
}

SIZE=$(( 6 * 1024 * 1024 + 1000 ))
head -c $SIZE /dev/urandom > "$d/origin0"
cp "$d/origin0" "$d/origin"
start_nbdkit -P "$d/pid" -U "$d/sock" "$SNAPCOW_PLUGIN" "$d/origin" \
    cow="$d/cow0" chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<PY
import os, random
h.set_debug(False)
rng = random.Random(7)
size = h.get_size()
h.pwrite(os.urandom(300 * 4096), 40 * 4096)          # one long run
for c in rng.sample(range(400, size // 4096), 400):   # scattered
    h.pwrite(os.urandom(4096), c * 4096)
h.pwrite(os.urandom(700), size - 700)                 # the partial chunk
h.pwrite(os.urandom(100), 5)                          # part of chunk 0
h.flush()
with open("$d/view", "wb") as f:
    f.write(h.pread(size, 0))
PY
stop_nbdkit "$d/pid"
cmp "$d/origin" "$d/origin0"
view=$(sha "$d/view")
start=$(records "$d/cow0")
test "$start" -gt 500
total=$(stat -c %s "$d/cow0")
empty="16/$(( total / 512 )) 16"

# fresh: the origin and the store as they were before any merge.
fresh () { cp "$d/origin0" "$d/origin"; cp "$d/cow0" "$d/cow"; }

# A merge, with the JSON summary.
fresh
run json merge --json "$d/origin" "$d/cow"
test "$(cat "$d/json.st")" = 0
test ! -s "$d/json.err"           # stderr is not a terminal: no bar
test "$(sha "$d/origin")" = "$view"
$PYTHON - "$d/json.out" "$start" "$SIZE" "$empty" "$d" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
start, size, empty, d = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
assert j["records"] == start, j
# Every record's chunk, the last one partial (700 of its 4096 bytes).
assert j["bytes"] == (start - 1) * 4096 + size % 4096, j
assert 3 <= j["runs"] < start - 250, j      # the long run is few runs
assert j["seconds"] >= 0, j
assert j["status"] == empty, j
assert j["origin"] == d + "/origin" and j["cow"] == d + "/cow", j
PY
test "$(records "$d/cow")" = 0
run info info "$d/cow"
grep -x "usage: $empty" "$d/info.out"
run check check --origin="$d/origin" "$d/cow"
# The only thing left: the merged data chunks, which the merge leaves in
# the store as the kernel does.
grep -x "$d/cow: 0 records in 1 area, chunk size 4096: 0 errors, 1 warning" \
    "$d/check.out"
grep "^warning: $start data chunk(s) past the next free chunk 2 hold data" \
    "$d/check.out"
test "$(served_sha "$d/origin" "$d/cow")" = "$view"
# Merging again does nothing.
run again merge --json "$d/origin" "$d/cow"
test "$(cat "$d/again.st")" = 0
grep '"records": 0,' "$d/again.out"
test "$(sha "$d/origin")" = "$view"

# --quiet: nothing at all.
fresh
run quiet merge --quiet "$d/origin" "$d/cow"
test "$(cat "$d/quiet.st")" = 0
test ! -s "$d/quiet.out"
test ! -s "$d/quiet.err"
test "$(sha "$d/origin")" = "$view"

# The summary line, and --rate (the run takes about 3 MB / 8 MB/s; only
# the result is checked, not the time).
fresh
run rate merge --rate=8M "$d/origin" "$d/cow"
test "$(cat "$d/rate.st")" = 0
grep "^$d/cow: merged $start records (" "$d/rate.out"
grep "the store is empty: $empty\$" "$d/rate.out"
test "$(sha "$d/origin")" = "$view"

# Refused while a server holds the store.
fresh
start_nbdkit -P "$d/pid" -U "$d/sock" "$SNAPCOW_PLUGIN" "$d/origin" \
    cow="$d/cow"
run busy merge "$d/origin" "$d/cow"
stop_nbdkit "$d/pid"
test "$(cat "$d/busy.st")" = 1
test ! -s "$d/busy.out"
test "$(cat "$d/busy.err")" = \
     "snapcow merge: $d/cow: in use by a running server: stop it first (a store cannot be merged while it is served)"
cmp "$d/origin" "$d/origin0"
test "$(records "$d/cow")" = "$start"

# Refused with check errors, which are named: two records share a
# new_chunk (record 1 of area 0 takes record 0's).
fresh
$PYTHON - "$d/cow" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096)                  # area 0
    r0 = f.read(16)
    f.seek(4096 + 16 + 8)         # record 1's new_chunk
    f.write(r0[8:])
PY
cp "$d/cow" "$d/cow-bad"
run bad merge "$d/origin" "$d/cow"
test "$(cat "$d/bad.st")" = 1
grep "^snapcow merge: $d/cow: error: area 0 record 1: new_chunk .* is also used by area 0 record 0" "$d/bad.err"
grep -x "snapcow merge: $d/cow: refusing to merge: the check found 1 error above; the origin is unchanged ('snapcow check --origin=$d/origin $d/cow' lists them all)" "$d/bad.err"
cmp "$d/origin" "$d/origin0"
cmp "$d/cow" "$d/cow-bad"

# Refused: an origin smaller than the records need.
fresh
head -c $(( 2 * 1024 * 1024 )) "$d/origin0" > "$d/small"
run small merge "$d/small" "$d/cow"
test "$(cat "$d/small.st")" = 1
grep "is past the end of the origin (512 chunks): is this the right origin?" \
    "$d/small.err"
grep "refusing to merge" "$d/small.err"
cmp "$d/small" <(head -c $(( 2 * 1024 * 1024 )) "$d/origin0")
cmp "$d/cow" "$d/cow0"

# Usage errors.
run help merge --help
test "$(cat "$d/help.st")" = 0
grep "^Usage: snapcow merge" "$d/help.out"
run noargs merge "$d/cow"
test "$(cat "$d/noargs.st")" = 2
grep -x "snapcow merge: needs two arguments: ORIGIN COW" "$d/noargs.err"
run badrate merge --rate=fast "$d/origin" "$d/cow"
test "$(cat "$d/badrate.st")" = 2
grep "^snapcow merge: --rate=fast: not a size" "$d/badrate.err"
run badopt merge --force "$d/origin" "$d/cow"
test "$(cat "$d/badopt.st")" = 2
grep -x "snapcow merge: unrecognized option '--force'" "$d/badopt.err"
run missing merge "$d/origin" "$d/nonexistent"
test "$(cat "$d/missing.st")" = 1
cmp "$d/origin" "$d/origin0"

# SIGKILL at random points; after each, the same view, and no error.
fresh
half=0
for i in $(seq 1 8); do
    # About 3 s at 1M/s, committed every 256K.
    ( exec "$SNAPCOW_TOOL" merge --quiet --rate=1M "$d/origin" "$d/cow" ) &
    pid=$!
    sleep $(( RANDOM % 2 )).$(( RANDOM % 10 ))$(( RANDOM % 10 ))
    kill -9 $pid 2>/dev/null || true
    wait $pid || true
    left=$(records "$d/cow")
    echo "kill $i: $left of $start records left"
    if [ "$left" -gt 0 ] && [ "$left" -lt "$start" ]; then
        half=$((half + 1))
    fi
    snapcow_tool check --origin="$d/origin" "$d/cow" | grep ': 0 errors'
    test "$(served_sha "$d/origin" "$d/cow")" = "$view"
    [ "$left" -gt 0 ] || break
done
# Killed halfway at least once (a kill before the first commit, or
# after the last, proves nothing).
test $half -ge 1
run last merge --quiet "$d/origin" "$d/cow"
test "$(cat "$d/last.st")" = 0
test "$(sha "$d/origin")" = "$view"
test "$(records "$d/cow")" = 0
run info2 info "$d/cow"
grep -x "usage: $empty" "$d/info2.out"
