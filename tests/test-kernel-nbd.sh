#!/usr/bin/env bash
# test-kernel-nbd.sh: an ext4 file system on nbdkit snapcow, through the
# real Linux kernel's NBD client and through qemu's.
#
# Boot 1, the kernel's nbd.ko driven by nbd-client: nbdkit snapcow runs on
# the host on a Unix socket; qemu bridges it to a virtio-serial port (no
# network anywhere), and in the guest socat turns the port back into a
# Unix socket for "nbd-client -unix".  The guest makes an ext4 file system
# on /dev/nbd0 (mke2fs discards the whole device first), mounts it, writes
# files, unmounts it, and "e2fsck -fn" must find it clean; it detaches and
# tells the host over a control port.  The host stops the server and
# starts it again (on a second socket and port, with the log filter), and
# tells the guest, which attaches again: the files' sha256s must be the
# same.  It deletes a file, runs fstrim, unmounts, and e2fsck -fn again.
# On the host, the store decoded by decode-store.py must pass e2fsck -fn,
# hold the files (debugfs), and, wherever fstrim trimmed and nothing
# wrote later, read zeroes in chunks the store holds and the origin's
# bytes in the others (trim follows the kernel's discard_zeroes_cow).
# mke2fs's discard of the whole device must add no record of its own.
#
# Boot 2, qemu's NBD client: the guest's /dev/vda is
# "-drive file=nbd:unix:SOCK" on a host nbdkit snapcow; the guest makes
# ext4 on it, writes files, unmounts, and e2fsck -fn must find it clean;
# the host checks the decoded store the same way.

source ./functions.sh
source $abs_srcdir/kernel-lib.sh
set -e

requires nbdsh --version
requires $PYTHON -c 'import nbd'
requires e2fsck -V
requires debugfs -V
requires mkfifo --version
kernel_require nbd-client socat mke2fs e2fsck

d=$(mktemp -d /tmp/snapcow-kernel.XXXXXX)
cleanup_fn rm -rf "$d"
decode=$abs_srcdir/decode-store.py
: "${SNAPCOW_KERNEL_TIMEOUT:=240}"
export SNAPCOW_KERNEL_TIMEOUT

SIZE=$(( 32 << 20 ))
head -c $SIZE /dev/urandom > $d/origin
origin_sha=$(sha256sum < $d/origin)
truncate -s 64M $d/cow
cp $d/origin $d/origin2
truncate -s 64M $d/cow2

# check_store ORIGIN COW SUMS: the decoded store is a clean ext4 holding
# the files of SUMS ("sha256  path" lines).
check_store ()
{
    local sum path
    $PYTHON $decode "$1" "$2" $d/image
    e2fsck -fn $d/image
    while read -r sum path; do
        rm -f $d/file
        debugfs -R "dump /$path $d/file" $d/image 2>/dev/null
        echo "host: /$path $(sha256sum < $d/file | cut -d' ' -f1)"
        test "$(sha256sum < $d/file | cut -d' ' -f1)" = "$sum"
    done < "$3"
}

# The guest's side of boot 1.  busybox has applets of the same names as
# nbd-client, mke2fs and e2fsck, which its sh runs whatever PATH says: the
# guest runs the real ones by their paths.
cat > $d/guest1.sh <<'GUEST'
set -e
load-extra-modules
ln -sf /proc/mounts /etc/mtab
portdev ()
{
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat $p/name)" = "$1" ] && echo /dev/${p##*/}
  done
}
attach ()
{
  /sbin/socat UNIX-LISTEN:/tmp/$1.sock OPEN:$(portdev $1) &
  i=0
  while [ ! -S /tmp/$1.sock ]; do
    i=$((i + 1)); [ $i -lt 100 ] || return 1; sleep 0.1
  done
  /sbin/nbd-client -unix /tmp/$1.sock /dev/nbd0 -b 512 > /tmp/nc.log 2>&1 ||
    { cat /tmp/nc.log; return 1; }
  echo "attached $1: $(blockdev --getsize64 /dev/nbd0) bytes," \
       "discard_max_bytes $(cat /sys/block/nbd0/queue/discard_max_bytes)"
}
fsck ()
{
  rc=0
  /sbin/e2fsck -fn /dev/nbd0 > /tmp/fsck 2>&1 || rc=$?
  cat /tmp/fsck
  echo "fsck-$1 $rc"
}
ctl=$(portdev ctl)

attach nbd1
/sbin/mke2fs -q -t ext4 /dev/nbd0
mkdir /mnt
mount -t ext4 /dev/nbd0 /mnt
dd if=/dev/urandom of=/mnt/big bs=64k count=48 2>/dev/null
mkdir /mnt/dir
dd if=/dev/urandom of=/mnt/dir/small bs=1000 count=7 2>/dev/null
echo hello > /mnt/dir/hello
dd if=/dev/urandom of=/mnt/junk bs=64k count=64 2>/dev/null
(cd /mnt && sha256sum big dir/small dir/hello) > /tmp/sums
sed 's/^/sum /' /tmp/sums
umount /mnt
fsck 1
/sbin/nbd-client -d /dev/nbd0 > /dev/null 2>&1
wait
echo stopped > $ctl
read go < $ctl
echo "host: $go"

attach nbd2
mount -t ext4 /dev/nbd0 /mnt
rc=0
(cd /mnt && sha256sum -c /tmp/sums) || rc=$?
echo "sums-after-restart $rc"
rm /mnt/junk
sync
echo "fstrim $(fstrim -v /mnt)"
umount /mnt
fsck 2
/sbin/nbd-client -d /dev/nbd0 > /dev/null 2>&1
wait
GUEST

start_nbdkit -P $d/pid1 -U $d/sock1 "$SNAPCOW_PLUGIN" $d/origin cow=$d/cow
mkfifo $d/ctl.in $d/ctl.out
exec 5<>$d/ctl.out 6<>$d/ctl.in
SNAPCOW_KERNEL_QEMU_ARGS="-device virtio-serial-pci
 -chardev socket,id=n1,path=$d/sock1
 -device virtserialport,chardev=n1,name=nbd1
 -chardev socket,id=n2,path=$d/sock2,reconnect=1
 -device virtserialport,chardev=n2,name=nbd2
 -chardev pipe,id=ctl,path=$d/ctl
 -device virtserialport,chardev=ctl,name=ctl" \
    kernel_boot $d/guest1.sh $d/out1 &
boot=$!
line=
while kill -0 $boot 2>/dev/null; do
    read -r -t 1 -u 5 line && break
done
echo "guest: $line"
if [ "$line" = stopped ]; then
    stop_nbdkit $d/pid1
    start_nbdkit -P $d/pid2 -U $d/sock2 --filter=log "$SNAPCOW_PLUGIN" \
                 $d/origin cow=$d/cow logfile=$d/log2
    # qemu connects to the new socket within a second.
    sleep 2
    echo "server restarted" >&6
fi
status=0
wait $boot || status=$?
cat $d/out1
test $status = 0
test "$line" = stopped
grep -q '^fsck-1 0$' $d/out1
grep -q '^sums-after-restart 0$' $d/out1
grep -q '^fstrim /mnt: [1-9][0-9]* bytes trimmed' $d/out1
grep -q '^fsck-2 0$' $d/out1
stop_nbdkit $d/pid2
test "$(sha256sum < $d/origin)" = "$origin_sha"

sed -n 's/^sum //p' $d/out1 > $d/sums1
check_store $d/origin $d/cow $d/sums1
# Every byte fstrim trimmed that nothing wrote later reads as zeroes if
# its chunk has an exception, and as the origin if it has none.
snapcow_tool dump --json $d/cow > $d/records.json
$PYTHON - $d/log2 $d/image $d/origin $d/records.json <<'PY'
import json, re, sys
req = re.compile(r" (Write|Trim|Zero) id=\d+ offset=(0x[0-9a-f]+) "
                 r"count=(0x[0-9a-f]+)")
trimmed = {}
for line in open(sys.argv[1]):
    m = req.search(line)
    if not m:
        continue
    op, off, cnt = m.group(1), int(m.group(2), 16), int(m.group(3), 16)
    for s in range(off // 512, (off + cnt) // 512):
        if op == "Trim":
            trimmed[s] = True
        else:
            trimmed.pop(s, None)
image = open(sys.argv[2], "rb").read()
origin = open(sys.argv[3], "rb").read()
mapped = {r["old_chunk"] for r in json.load(open(sys.argv[4]))}
chunk = 16384
def want(s):
    if (s * 512) // chunk in mapped:
        return bytes(512)
    return origin[s * 512:(s + 1) * 512]
bad = [s for s in trimmed if image[s * 512:(s + 1) * 512] != want(s)]
zeroed = sum(1 for s in trimmed if (s * 512) // chunk in mapped)
print("host: %d sectors trimmed and not written since, %d in chunks the "
      "store holds, %d wrong" % (len(trimmed), zeroed, len(bad)))
if not zeroed or bad:
    sys.exit("trimmed sectors wrong: %s" % sorted(bad)[:10])
# mke2fs discarded all 2048 chunks; only what ext4 wrote has a record.
if len(mapped) >= 2048 // 2:
    sys.exit("%d records: the discard allocated chunks" % len(mapped))
PY

# Boot 2: qemu's own NBD client.
cat > $d/guest2.sh <<'GUEST'
set -e
load-extra-modules
ln -sf /proc/mounts /etc/mtab
echo "vda $(blockdev --getsize64 /dev/vda) bytes"
/sbin/mke2fs -q -t ext4 /dev/vda
mkdir /mnt
mount -t ext4 /dev/vda /mnt
dd if=/dev/urandom of=/mnt/big bs=64k count=40 2>/dev/null
mkdir /mnt/dir
dd if=/dev/urandom of=/mnt/dir/small bs=1000 count=9 2>/dev/null
(cd /mnt && sha256sum big dir/small) > /tmp/sums
sed 's/^/sum /' /tmp/sums
umount /mnt
rc=0
/sbin/e2fsck -fn /dev/vda > /tmp/fsck 2>&1 || rc=$?
cat /tmp/fsck
echo "fsck $rc"
GUEST
start_nbdkit -P $d/pid3 -U $d/sock3 "$SNAPCOW_PLUGIN" $d/origin2 cow=$d/cow2
kernel_boot $d/guest2.sh $d/out2 "nbd:unix:$d/sock3"
cat $d/out2
grep -q '^fsck 0$' $d/out2
stop_nbdkit $d/pid3
test "$(sha256sum < $d/origin2)" = "$origin_sha"
sed -n 's/^sum //p' $d/out2 > $d/sums2
check_store $d/origin2 $d/cow2 $d/sums2
