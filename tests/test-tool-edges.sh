#!/usr/bin/env bash
# test-tool-edges.sh: the edges every snapcow command shares: --help,
# a bad option (one line naming it and a hint, exactly), a missing
# argument, a missing file, a directory, a tiny file, a bad magic, and
# an input that is read and left unchanged.  The exit codes are the
# documented ones (snapcow(1), EXIT STATUS).
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

# exact STATUS STDERR ARGS...: snapcow ARGS exits STATUS, prints
# nothing on stdout and exactly STDERR (lines joined by |) on stderr.
exact ()
{
    local want=$1 text=$2 st=0
    shift 2
    # No trace of the shell function on the stderr being compared.
    ( set +x; snapcow_tool "$@" > "$d/out" 2> "$d/err" ) || st=$?
    cat "$d/out" "$d/err"
    if [ $st -ne "$want" ]; then
        echo "$0: snapcow $*: exit status $st, expected $want" >&2
        exit 1
    fi
    if [ -s "$d/out" ] || [ "$(tr '\n' '|' < "$d/err")" != "$text|" ]; then
        echo "$0: snapcow $*: expected only this on stderr: $text" >&2
        exit 1
    fi
}

# Messages in English, whatever the locale.
export LC_ALL=C

expect 2 "Usage: snapcow COMMAND"
expect 0 "Usage: snapcow COMMAND" --help
expect 0 "snapcow " --version
exact 2 "snapcow: unknown command 'frob'|Try 'snapcow --help'." frob

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
    # A usage error is one line and a hint, never the whole usage.
    try="Try 'snapcow $cmd --help'."
    exact 2 "snapcow $cmd: unrecognized option '--frob'|$try" \
          $cmd --frob "$d/good.cow"
    exact 2 "snapcow $cmd: unrecognized option '--frob=1'|$try" \
          $cmd "$d/good.cow" --frob=1
    exact 2 "snapcow $cmd: unrecognized option '-x'|$try" \
          $cmd -x "$d/good.cow"
    exact 2 "snapcow $cmd: missing the COW store argument|$try" $cmd
    exact 2 "snapcow $cmd: unexpected argument 'b' (one COW store only)|$try" \
          $cmd "$d/good.cow" b
    if [ $cmd != check ]; then
        exact 2 "snapcow $cmd: option '--json' does not take an argument|$try" \
              $cmd --json=yes "$d/good.cow"
        exact 2 "snapcow $cmd: option '--json' does not take an argument|$try" \
              $cmd --js=yes "$d/good.cow"
    fi
    if [ $cmd = check ] || [ $cmd = map ]; then
        exact 2 "snapcow $cmd: option '--origin' requires an argument|$try" \
              $cmd "$d/good.cow" --origin
        # An abbreviation is named in full.
        exact 2 "snapcow $cmd: option '--origin' requires an argument|$try" \
              $cmd "$d/good.cow" --orig
        exact 2 "snapcow $cmd: option '--origin' needs a file name|$try" \
              $cmd --origin= "$d/good.cow"
    fi
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
exact 2 "snapcow create: unrecognized option '--frob'|Try 'snapcow create --help'." \
      create --frob "$d/new.cow"
exact 2 "snapcow create: option '--size' requires an argument|Try 'snapcow create --help'." \
      create "$d/new.cow" --size
exact 2 "snapcow create: missing the COW store argument|Try 'snapcow create --help'." \
      create
exact 2 "snapcow create: option '--origin' needs a file name|Try 'snapcow create --help'." \
      create --origin= "$d/new.cow"
exact 2 "snapcow create: unexpected argument 'b' (one COW store only)|Try 'snapcow create --help'." \
      create a b
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
