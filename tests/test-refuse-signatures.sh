#!/usr/bin/env bash
# test-refuse-signatures.sh: a new store (magic 0) is not laid over real
# data.  snapcow create and nbdkit snapcow cow= refuse an ext4
# filesystem, a dos and a gpt partition table and a swap area, all of
# which start with four zero bytes, naming what they found, and leave
# the file unchanged byte for byte.  snapcow create --force initialises
# it on purpose, and bytes with no known signature (stale garbage) are
# initialised as the kernel would.
source ./functions.sh
set -e
set -x
requires test -x "$SNAPCOW_TOOL"
requires $PYTHON -c 'import nbd'
requires mkfs.ext4 -V

d=$(mktemp -d /tmp/snapcow-refuse.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock
truncate -s 4M $d/origin

# The header's magic is the first four bytes: all must be zero here, or
# the test would only show the old "does not start with zeroes".
magic ()
{
    od -An -tx4 -N4 "$1" | tr -d ' '
}

# expect_refused FILE TEXT: snapcow create FILE exits 1 with exactly one
# line on stderr containing TEXT, and FILE is unchanged.
expect_refused ()
{
    local f=$1 text=$2 sum st=0
    test "$(magic "$f")" = 00000000
    sum=$(md5sum < "$f")
    snapcow_tool create "$f" 2> $d/err || st=$?
    cat $d/err
    test $st -eq 1
    test "$(grep -vc '^+' $d/err)" -eq 1      # (set -x lines start with +)
    grep -qF "snapcow create: $f: $text found on the COW device: not initialising a store over it (wipe it on purpose with wipefs -a, or snapcow create --force)" $d/err
    test "$(md5sum < "$f")" = "$sum"
}

# plugin_refuses FILE TEXT: nbdkit starts (a read-only client could
# still read the origin), a writable client is turned away, the log has
# one line naming TEXT, and FILE is unchanged.
plugin_refuses ()
{
    local f=$1 text=$2 sum
    sum=$(md5sum < "$f")
    start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin cow="$f" \
                 2> $d/log
    $PYTHON - $sock <<'EOF'
import nbd, sys
h = nbd.NBD()
try:
    h.connect_unix(sys.argv[1])
except nbd.Error as e:
    print("refused as expected:", e)
    sys.exit(0)
sys.exit("a writable client was accepted")
EOF
    stop_nbdkit $d/pid
    cat $d/log
    test "$(grep -c '^nbdkit: .*error' $d/log)" -eq 1
    grep -qF "$f: $text found on the COW device: not initialising a store over it" $d/log
    test "$(md5sum < "$f")" = "$sum"
}

# ext4.
truncate -s 8M $d/ext4.img
mkfs.ext4 -q -F $d/ext4.img
cp $d/ext4.img $d/victim.img
expect_refused $d/victim.img "ext4 filesystem"
plugin_refuses $d/victim.img "ext4 filesystem"
cmp $d/ext4.img $d/victim.img

# Partition tables.
if command -v sfdisk >/dev/null; then
    for label in dos gpt; do
        truncate -s 8M $d/$label.img
        printf 'label: %s\n,4M\n' $label | sfdisk -q $d/$label.img
        expect_refused $d/$label.img "$label partition table"
        plugin_refuses $d/$label.img "$label partition table"
    done
else
    echo "$0: no sfdisk: partition tables not tested"
fi

# Swap.
if command -v mkswap >/dev/null; then
    truncate -s 8M $d/swap.img
    mkswap -q $d/swap.img
    expect_refused $d/swap.img "swap signature"
    plugin_refuses $d/swap.img "swap signature"
else
    echo "$0: no mkswap: swap not tested"
fi

# --force initialises over the filesystem on purpose.
snapcow_tool create --force --chunk-size=4K $d/victim.img
test "$(magic $d/victim.img)" = 70416e53
snapcow_tool check $d/victim.img

# Stale garbage: random bytes whose first four are zero hold no known
# signature, and are initialised as the kernel would: chunk 0 becomes
# the header, chunk 1 a zeroed area, and nothing past them is touched.
$PYTHON - $d/garbage.img <<'EOF'
import random, sys
data = bytearray(random.Random(9).randbytes(1 << 20))
data[0:4] = bytes(4)
open(sys.argv[1], "wb").write(data)
EOF
cp $d/garbage.img $d/garbage2.img
snapcow_tool create --chunk-size=4K $d/garbage.img
test "$(magic $d/garbage.img)" = 70416e53
cmp -n 8176 -i 16:0 $d/garbage.img /dev/zero
cmp -i 8192 $d/garbage.img $d/garbage2.img

# The plugin initialises garbage too, and serves writes.
start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" $d/origin \
             cow=$d/garbage2.img chunk-size=4K
nbdsh -u "nbd+unix://?socket=$sock" -c '
h.pwrite(b"x" * 5000, 100000)
h.flush()
assert h.pread(5002, 99999) == b"\0" + b"x" * 5000 + b"\0"
'
stop_nbdkit $d/pid
test "$(magic $d/garbage2.img)" = 70416e53
snapcow_tool check --origin=$d/origin $d/garbage2.img

# A zeroed file and a new file hold nothing either.
truncate -s 1M $d/zero.img
snapcow_tool create $d/zero.img
snapcow_tool create $d/new.img
test "$(magic $d/zero.img)" = 70416e53
test "$(magic $d/new.img)" = 70416e53
