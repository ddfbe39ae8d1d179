#!/usr/bin/env bash
# test-tool-create-mode.sh: the mode of a file snapcow create makes.  A
# store holds copies of the origin's data, so it gets the origin's read
# bits for group and others and read-write for its owner (--origin),
# never wider than 0644, or 0600 without an origin; the umask still applies; an existing file keeps its mode; and
# an origin that is the store itself is refused.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"

d=$(mktemp -d /tmp/snapcow-create-mode.XXXXXX)
cleanup_fn rm -rf "$d"

mode ()
{
    stat -c %a "$1"
}

# The raw modes, then one umask on top.
umask 0
truncate -s 1M $d/origin
snapcow_tool create $d/none.cow
test "$(mode $d/none.cow)" = 600

for m in 640:640 666:644 755:644 600:600 444:644 400:600 604:604; do
    chmod ${m%:*} $d/origin
    snapcow_tool create --origin=$d/origin $d/o${m%:*}.cow
    test "$(mode $d/o${m%:*}.cow)" = ${m#*:}
done

umask 027
chmod 644 $d/origin
snapcow_tool create --origin=$d/origin $d/umask.cow
test "$(mode $d/umask.cow)" = 640
snapcow_tool create $d/umask-none.cow
test "$(mode $d/umask-none.cow)" = 600
umask 0

# An existing (zeroed) file keeps its mode, whatever the origin's.
truncate -s 64K $d/existing.cow
chmod 666 $d/existing.cow
chmod 600 $d/origin
snapcow_tool create --origin=$d/origin $d/existing.cow
test "$(mode $d/existing.cow)" = 666
test "$(od -An -tx4 -N4 $d/existing.cow | tr -d ' ')" = 70416e53

# The origin is the store itself: refused under any spelling, nothing
# written.
truncate -s 1M $d/self.img
ln -s self.img $d/self-link.img
before=$(md5sum < $d/self.img)
chmod 640 $d/self.img
for o in $d/self.img $d/self-link.img; do
    st=0
    snapcow_tool create --origin=$o $d/self.img 2> $d/err || st=$?
    cat $d/err
    test $st -eq 1
    grep -qF "snapcow create: $d/self.img: is the origin $o itself" $d/err
done
test "$(md5sum < $d/self.img)" = "$before"
test "$(mode $d/self.img)" = 640

# A missing origin is an error, and no store file is left behind.
st=0
snapcow_tool create --origin=$d/missing $d/nostore.cow 2> $d/err || st=$?
cat $d/err
test $st -eq 1
grep -qF "$d/missing: No such file or directory" $d/err
test ! -e $d/nostore.cow
