#!/usr/bin/env bash
# test-tool-edges.sh: the edges every snapcow command shares: --help,
# a bad option, a missing argument, a missing file, a directory, a tiny
# file, a bad magic, and an input that is read and left unchanged.  The
# exit codes are the documented ones (snapcow(1), EXIT STATUS).
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"

d=$(mktemp -d /tmp/snapcow-tool-edges.XXXXXX)
cleanup_fn rm -rf "$d"

# expect STATUS TEXT ARGS...: snapcow ARGS exits STATUS, and TEXT (if
# any) appears in its output.
expect ()
{
    local want=$1 text=$2 st=0
    shift 2
    snapcow_tool "$@" > "$d/out" 2> "$d/err" || st=$?
    cat "$d/out" "$d/err"
    if [ $st -ne "$want" ]; then
        echo "$0: snapcow $*: exit status $st, expected $want" >&2
        exit 1
    fi
    if [ -n "$text" ] && ! grep -qF -- "$text" "$d/out" "$d/err"; then
        echo "$0: snapcow $*: expected the text: $text" >&2
        exit 1
    fi
}

expect 2 "Usage: snapcow COMMAND"
expect 0 "Usage: snapcow COMMAND" --help
expect 0 "snapcow " --version
expect 2 "unknown command 'frob'" frob

$PYTHON "$abs_srcdir/tool-store.py" build "$d/good.cow" 4096 1048576 seq:10
printf 'XXXXXXXXXXXXXXXX' > "$d/bad.cow"
truncate -s 64K "$d/bad.cow"
printf 'SnA' > "$d/tinybad.cow"           # 3 bytes: a magic that is not ours
head -c 100 /dev/zero > "$d/tiny.cow"     # 100 zero bytes: a new store
mkdir "$d/dir"
good=$(md5sum < "$d/good.cow")

for cmd in info check dump map; do
    # check cannot read what it was given: 2; the others fail: 1.
    unreadable=1
    [ $cmd = check ] && unreadable=2
    expect 0 "Usage: snapcow $cmd" $cmd --help
    expect 2 "unrecognized option" $cmd --frob "$d/good.cow"
    expect 2 "Usage: snapcow $cmd" $cmd
    expect $unreadable "No such file or directory" $cmd "$d/nonexistent"
    expect $unreadable "a directory, not a regular file" $cmd "$d/dir"
    expect 1 "bad magic 0x58585858" $cmd "$d/bad.cow"
    expect 1 "bad magic 0x00416e53" $cmd "$d/tinybad.cow"
    expect 0 "" $cmd "$d/tiny.cow"
    expect 0 "" $cmd "$d/good.cow"
    test "$(md5sum < "$d/good.cow")" = "$good"
done
expect 0 "status: new" info "$d/tiny.cow"
expect 0 "a new store (magic 0)" check "$d/tiny.cow"
test "$(cmp -s /dev/zero "$d/tiny.cow" -n 100 && echo same)" = same

# create refuses what is not empty, and bad sizes.
expect 0 "Usage: snapcow create" create --help
expect 2 "unrecognized option" create --frob "$d/new.cow"
expect 2 "Usage: snapcow create" create
expect 2 "--chunk-size=3000: must be a power of two" \
       create --chunk-size=3000 "$d/new.cow"
expect 2 "--chunk-size=2M: must be a power of two" \
       create --chunk-size=2M "$d/new.cow"
expect 2 "--size=lots: not a size" create --size=lots "$d/new.cow"
test ! -e "$d/new.cow"
expect 1 "already a COW store: not overwriting it" create "$d/good.cow"
expect 1 "does not start with zeroes" create "$d/bad.cow"
expect 1 "Is a directory" create "$d/dir"
test "$(md5sum < "$d/good.cow")" = "$good"

# create makes stores the kernel would report as it does (cow-format.md:
# a new store on 8 MiB reads 16/16384 16 at 4K, 64/16384 64 at 16K,
# 256/16384 256 at 64K).
for cs in 4K:16 16K:64 64K:256; do
    rm -f "$d/new.cow"
    truncate -s 8M "$d/new.cow"
    expect 0 "" create --chunk-size=${cs%:*} "$d/new.cow"
    expect 0 "usage: ${cs#*:}/16384 ${cs#*:}" info "$d/new.cow"
done
# A fresh file, sized.
rm -f "$d/new.cow"
expect 0 "" create --size=1M "$d/new.cow"
expect 0 "usage: 64/2048 64" info "$d/new.cow"
expect 0 "0 errors, 0 warnings" check "$d/new.cow"

# A store a server holds is refused.
truncate -s 1M "$d/origin.img"
rm -f "$d/held.cow"
start_nbdkit -P "$d/pid" -U "$d/sock" "$SNAPCOW_PLUGIN" "$d/origin.img" \
    cow="$d/good.cow"
expect 1 "in use by another process" create "$d/good.cow"
stop_nbdkit "$d/pid"
