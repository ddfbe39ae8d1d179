#!/usr/bin/env bash
# test-kernel-status-overflow.sh: "snapcow info" against the real
# kernel's "dmsetup status", and a full store (cow-format.md,
# "Allocating a chunk" and "Usage figures"), in one boot.
#
# 1. snapcow info prints exactly the <alloc>/<total> <meta> (or Invalid)
#    of the guest's status line for: stores snapcow wrote at 4K (three
#    areas) and 16K chunks; a store the kernel wrote (P, 4K, a few
#    hundred oflag=direct writes, whole and sub-chunk); a new store made
#    by "snapcow create --chunk-size=16K" on a zeroed 8 MiB file
#    (64/16384 64).
# 2. A COW of header + area + E data chunks (4K: 258 chunks, 1056768
#    bytes) holds E-1 records.  The kernel (P, 4K) takes 255 distinct
#    single-chunk writes, fails the 256th and shows Invalid.  snapcow,
#    overflow=enospc (the default): the 256th new chunk fails with
#    ENOSPC, the store stays valid, and the kernel reads it with the sha256
#    snapcow served.  overflow=invalidate: the 256th fails with EIO and
#    snapcow info then prints "usage: Invalid".
# 3. The store snapcow invalidated: the guest shows Invalid and every
#    read of the snapshot fails; invalidation changed only chunk 0
#    (magic, valid=0, version 1, chunk size 8, then zeros).

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires nbdsh --version
requires $PYTHON -c 'import nbd'
kernel_require

d=$(mktemp -d /tmp/snapcow-kernel.XXXXXX)
cleanup_fn rm -rf "$d"
export D=$d

usage_of () { snapcow_tool info "$1" | sed -n 's/^usage: //p'; }

SIZE=$(( 4 << 20 ))
head -c $SIZE /dev/urandom > $d/origin
origin_sha=$(sha256sum < $d/origin)
OV=$(( 258 * 4096 ))            # header + area 0 + 256 data chunks

# 1. Stores snapcow writes: N distinct new chunks of CB, whole ones and
# sub-chunk writes (which copy the rest from the origin).
for spec in 4096:700 16384:180; do
    cb=${spec%:*}
    export CB=$cb N=${spec#*:}
    start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
                 cow=$d/s$cb chunk-size=$cb
    nbdsh -u "nbd+unix:///?socket=$d/sock" -c - <<'PY'
import os, random
h.set_debug(False)
cb, n = int(os.environ["CB"]), int(os.environ["N"])
rng = random.Random(cb)
for k, c in enumerate(rng.sample(range(h.get_size() // cb), n)):
    if k % 5 == 0:
        off = rng.randrange(cb - 1000)
        h.pwrite(os.urandom(1000), c * cb + off)
    else:
        h.pwrite(os.urandom(cb), c * cb)
h.flush()
PY
    stop_nbdkit $d/pid
done
truncate -s 8M $d/k4096 $d/c16384
snapcow_tool create --chunk-size=16K $d/c16384
test "$(usage_of $d/c16384)" = "64/16384 64"

# 2. Three identical fresh files of header + area + E data chunks.
truncate -s $OV $d/kov $d/sov $d/sinv
export SIZE
over='
import errno, os, random, shutil
h.set_debug(False)
cb = 4096
rng = random.Random(3)
chunks = rng.sample(range(h.get_size() // cb), 256)
for c in chunks[:255]:
    h.pwrite(os.urandom(cb), c * cb)
h.flush()
shutil.copyfile(os.environ["COW"], os.environ["COW"] + ".before")
try:
    h.pwrite(os.urandom(cb), chunks[255] * cb)
    raise SystemExit("the 256th new chunk was written")
except nbd.Error as e:
    print("256th write: %s (errno %s)" % (e.string, errno.errorcode.get(e.errnum)))
    assert e.errnum == getattr(errno, os.environ["WANT"]), e.errnum
'
served='
import hashlib, os, random
h.set_debug(False)
cb = 4096
rng = random.Random(3)
chunks = rng.sample(range(h.get_size() // cb), 256)
# A copied chunk can still be rewritten.
h.pwrite(os.urandom(cb), chunks[7] * cb)
h.flush()
data = h.pread(h.get_size(), 0)
print("served sha256 %s" % hashlib.sha256(data).hexdigest())
'
start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
             cow=$d/sov chunk-size=4K cow-size=$OV
COW=$d/sov WANT=ENOSPC nbdsh -u "nbd+unix:///?socket=$d/sock" \
    -c "$over" -c "$served" > $d/sov.out
stop_nbdkit $d/pid
cat $d/sov.out
served_sha=$(sed -n 's/^served sha256 //p' $d/sov.out)
snapcow_tool check $d/sov
snapcow_tool info $d/sov | grep '^usage: [0-9]*/[0-9]* [0-9]*$'
test $(stat -c %s $d/sov) -eq $OV

start_nbdkit -P $d/pid -U $d/sock "$SNAPCOW_PLUGIN" $d/origin \
             cow=$d/sinv chunk-size=4K cow-size=$OV overflow=invalidate
COW=$d/sinv WANT=EIO nbdsh -u "nbd+unix:///?socket=$d/sock" -c "$over"
stop_nbdkit $d/pid
snapcow_tool info $d/sinv | grep -x 'usage: Invalid'
test $(stat -c %s $d/sinv) -eq $OV

# 3. Only chunk 0 changed, and to the invalidated header.
cmp <(tail -c +4097 $d/sinv.before) <(tail -c +4097 $d/sinv)
$PYTHON - $d/sinv <<'PY'
import struct, sys
c0 = open(sys.argv[1], "rb").read(4096)
assert struct.unpack_from("<4I", c0) == (0x70416E53, 0, 1, 8), c0[:16].hex()
assert c0[16:] == bytes(4080), "chunk 0 is not all zeros after the header"
PY
od -A d -t x4 -N 16 $d/sinv

for f in s4096 s16384 c16384 sov sinv; do
    sha256sum < $d/$f > $d/$f.sha
    usage_of $d/$f > $d/$f.usage
done

cat > $d/guest.sh <<'EOF'
n=$(blockdev --getsz /dev/vda)
snap () { dmsetup create $1 --table "0 $n snapshot /dev/vda /dev/$2 P $3"; }
for t in s4096:vdb:8 s16384:vdc:32 c16384:vde:32 sov:vdg:8; do
  name=${t%%:*}; t=${t#*:}
  snap $name ${t%:*} ${t#*:} || exit 1
  echo "status $name $(dmsetup status $name)"
  [ $name = sov ] && echo "sha sov $(sha256sum < /dev/mapper/sov | cut -d' ' -f1)"
  dmsetup remove $name || exit 1
done
# The kernel writes a store: whole chunks in one run, then sub-chunk
# writes (copies from the origin) and rewrites.
snap k4096 vdd 8 || exit 1
dd if=/dev/urandom of=/dev/mapper/k4096 bs=4096 count=300 seek=100 oflag=direct 2>/dev/null
echo "dd-k4096 $?"
for s in 3 17 2000 2001 4100 6999 8190 8191 7000 900; do
  dd if=/dev/urandom of=/dev/mapper/k4096 bs=512 count=1 seek=$s oflag=direct 2>/dev/null ||
    echo "dd-k4096-sub $s failed"
done
echo "status k4096 $(dmsetup status k4096)"
dmsetup remove k4096 || exit 1
# Overflow: 256 single-chunk writes to chunks 0..255.
snap kov vdf 8 || exit 1
dd if=/dev/urandom of=/dev/mapper/kov bs=4096 count=256 oflag=direct 2>/tmp/err
echo "dd-kov $?"
sed 's/^/dd-kov-says /' /tmp/err
echo "status kov $(dmsetup status kov)"
dmsetup remove kov || exit 1
# The store snapcow invalidated.
snap sinv vdh 8
echo "create-sinv $?"
echo "status sinv $(dmsetup status sinv)"
for c in 0 1 5 255 256 1023; do
  if dd if=/dev/mapper/sinv of=/dev/null bs=4096 count=1 skip=$c iflag=direct 2>/dev/null
  then echo "read-sinv $c ok"
  else echo "read-sinv $c failed"
  fi
done
cat /dev/mapper/sinv > /dev/null 2>&1
echo "cat-sinv $?"
dmsetup remove sinv || exit 1
EOF
start=$(date +%s)
kernel_boot $d/guest.sh $d/out $d/origin $d/s4096 $d/s16384 $d/k4096 \
            $d/c16384 $d/kov $d/sov $d/sinv
cat $d/out
echo "$0: boot took $(( $(date +%s) - start )) s"
test "$(sha256sum < $d/origin)" = "$origin_sha"

# 1. Byte for byte, each store.
prefix="0 $(( SIZE / 512 )) snapshot "
for f in s4096 s16384 c16384 k4096 kov sov sinv; do
    line=$(sed -n "s/^status $f //p" $d/out)
    info=$(usage_of $d/$f)
    echo "$f: kernel '$line', snapcow info '$info'"
    test "$line" = "$prefix$info"
done
test "$(sed -n 's/^status c16384 //p' $d/out)" = "${prefix}64/16384 64"
# The kernel changed none of snapcow's stores.
for f in s4096 s16384 c16384 sov sinv; do
    test "$(sha256sum < $d/$f)" = "$(cat $d/$f.sha)"
    test "$(usage_of $d/$f)" = "$(cat $d/$f.usage)"
done
test "$(sed -n 's/^dd-k4096 //p' $d/out)" = 0
! grep -q '^dd-k4096-sub' $d/out
snapcow_tool check $d/k4096

# 2. The kernel: 255 writes, the 256th failed, Invalid.
test "$(sed -n 's/^dd-kov //p' $d/out)" != 0
grep -qx 'dd-kov-says 255+0 records out' $d/out
test "$(sed -n 's/^status kov //p' $d/out)" = "${prefix}Invalid"
test "$(snapcow_tool info $d/kov | sed -n 's/^usage: //p')" = Invalid
# The kernel reads snapcow's full store as snapcow served it.
echo "sov: kernel sha256 $(sed -n 's/^sha sov //p' $d/out), served $served_sha"
test "$(sed -n 's/^sha sov //p' $d/out)" = "$served_sha"

# 3. The kernel activates snapcow's invalidated store, shows Invalid,
# and fails every read.
test "$(sed -n 's/^create-sinv //p' $d/out)" = 0
test "$(sed -n 's/^status sinv //p' $d/out)" = "${prefix}Invalid"
test "$(grep -c '^read-sinv [0-9]* failed$' $d/out)" = 6
test "$(sed -n 's/^cat-sinv //p' $d/out)" != 0
