#!/usr/bin/env bash
# test-tool-in-use.sh: check, dump and map refuse a store that a running
# server holds (exit 1, one line on stderr, nothing on stdout), and
# read it with --force after a warning; info reads it with a warning
# and says in_use (exit 0, the JSON still printed).  Once the server
# has stopped, they all work without --force, and what --force printed
# while it ran (after a flush) is what they print then.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires nbdsh --version

d=$(mktemp -d /tmp/snapcow-tool-in-use.XXXXXX)
cleanup_fn rm -rf "$d"
cow="$d/s.cow"

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

truncate -s 1M "$d/origin.img"
start_nbdkit -P "$d/pid" -U "$d/sock" "$SNAPCOW_PLUGIN" "$d/origin.img" \
    cow="$cow" chunk-size=4K
nbdsh -u "nbd+unix:///?socket=$d/sock" -c '
for i in range(5):
    h.pwrite(bytes([i + 1]) * 4096, i * 12288)
h.flush()
'

for cmd in check dump map; do
    run $cmd $cmd "$cow"
    test "$(cat "$d/$cmd.st")" = 1
    test ! -s "$d/$cmd.out"
    test "$(cat "$d/$cmd.err")" = \
         "snapcow $cmd: $cow: in use by a running server (--force reads it anyway)"

    run $cmd-forced $cmd --force "$cow"
    test "$(cat "$d/$cmd-forced.st")" = 0
    test "$(cat "$d/$cmd-forced.err")" = \
         "snapcow $cmd: $cow: warning: in use by a running server: reading it anyway (--force); the result may be inconsistent"
done
grep -x "$cow: 5 records in 1 area, chunk size 4096: 0 errors, 0 warnings" \
     "$d/check-forced.out"
test "$(grep -vc '^#' "$d/dump-forced.out")" = 5

run info info --json "$cow"
test "$(cat "$d/info.st")" = 0
test "$(cat "$d/info.err")" = \
     "snapcow info: $cow: warning: in use by a running server: what follows may be out of date or inconsistent"
$PYTHON -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["in_use"] is True and j["status"] == "valid", j
assert j["records"] == 5 and j["usage"] == "56/%d 16" % (j["size"] // 512), j
' "$d/info.out"
run info-text info "$cow"
grep -x "in_use: yes" "$d/info-text.out"

stop_nbdkit "$d/pid"

# Free again: no --force, no warning, the same output.
for cmd in check dump map; do
    run $cmd-after $cmd "$cow"
    test "$(cat "$d/$cmd-after.st")" = 0
    test ! -s "$d/$cmd-after.err"
    cmp "$d/$cmd-forced.out" "$d/$cmd-after.out"
done
run info-after info --json "$cow"
test "$(cat "$d/info-after.st")" = 0
test ! -s "$d/info-after.err"
sed 's/"in_use": true/"in_use": false/' "$d/info.out" |
    cmp - "$d/info-after.out"
run info-text-after info "$cow"
grep -x "in_use: no" "$d/info-text-after.out"
