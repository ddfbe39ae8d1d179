# tests/kernel-lib.sh: boot a real Linux kernel (Debian 12's) under qemu
# to use its dm-snapshot target as a test peer.  Sourced by the
# test-kernel-*.sh tests after functions.sh.
#
#   kernel_require [BIN...]    skip the test (exit 77) unless qemu and the
#                              tools are there and the kernel and initramfs
#                              can be fetched and built (once, cached); each
#                              BIN (one of the optional ones below) must be
#                              on the host and is then in the initramfs
#   kernel_boot SCRIPT OUT DISK...
#                              boot the kernel with each DISK file attached
#                              as a raw virtio disk (/dev/vda, /dev/vdb, ...
#                              in order), run the busybox sh SCRIPT as root
#                              in the guest, and put what it printed in OUT;
#                              returns the script's exit status (124: no
#                              answer in time; 125: the guest died without
#                              one)
#
# The kernel image package (whatever linux-image-amd64 depends on) and
# busybox-static are fetched with "apt-get download" and unpacked with
# dpkg-deb into the cache; nothing is installed on the host.  The guest
# has no network device.  The initramfs holds busybox, dmsetup with its
# libraries, and the modules virtio_pci, virtio_blk and dm-snapshot with
# their dependencies, loaded at boot.  It also holds, when the host has
# them, the optional programs nbd-client, socat, mke2fs and e2fsck (with
# their libraries) and the modules nbd, virtio_console, ext4 and
# crc32c_generic, which a guest script loads with "load-extra-modules".
#
# Environment:
#   SNAPCOW_KERNEL_CACHE   cache directory (default /tmp/snapcow-kernel-cache)
#   SNAPCOW_KERNEL_TIMEOUT seconds a boot may take (default 150)
#   SNAPCOW_KERNEL_CONSOLE file to keep the guest's kernel log in
#   SNAPCOW_KERNEL_QEMU_ARGS
#                          more qemu arguments (split on blanks), e.g. a
#                          virtio-serial port bridged to a host socket

: "${SNAPCOW_KERNEL_CACHE:=/tmp/snapcow-kernel-cache}"
_kcache=$SNAPCOW_KERNEL_CACHE
_kvmlinux=
_kinitrd=

_kskip ()
{
    echo "$0: $*: test skipped"
    exit 77
}

# _kfetch PKG: unpack the .deb of PKG into $_kcache/PKG (once).
_kfetch ()
{
    local pkg="$1" dir="$_kcache/$1"
    [ -f "$dir/.unpacked" ] && return 0
    rm -rf "$dir"
    mkdir -p "$dir/deb"
    if ! (cd "$dir/deb" && apt-get download -q "$pkg") >/dev/null 2>&1; then
        # A fresh machine may have no package lists yet.
        [ "$(id -u)" -eq 0 ] && apt-get update -qq >/dev/null 2>&1
        (cd "$dir/deb" && apt-get download -q "$pkg") >/dev/null 2>&1 ||
            return 1
    fi
    dpkg-deb -x "$dir"/deb/*.deb "$dir/root" || return 1
    rm -rf "$dir/deb"
    touch "$dir/.unpacked"
}

# _kpackage: the kernel image package of this Debian release.
_kpackage ()
{
    local p
    p=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
    if [ -z "$p" ] && [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq >/dev/null 2>&1
        p=$(apt-cache depends linux-image-amd64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
    fi
    echo "$p"
}

# _kinit: the guest's /init.
_kinit ()
{
    cat <<'EOF'
#!/bin/sh
# /init of the snapcow test initramfs (tests/kernel-lib.sh).
PATH=/sbin:/bin
DM_DISABLE_UDEV=1
export PATH DM_DISABLE_UDEV
mount -t proc none /proc
mount -t sysfs none /sys
mount -t devtmpfs none /dev
mkdir -p /dev/mapper
for m in $(cat /etc/modules.order); do
  insmod /lib/modules/$m.ko || echo "init: insmod $m failed" > /dev/console
done
disks=$(sed -n 's/.*snapcow.disks=\([0-9]*\).*/\1/p' /proc/cmdline)
tries=0
until [ "$(ls /sys/block | grep -c '^vd')" -ge "$disks" ] || [ $tries -ge 200 ]
do
  sleep 0.05
  tries=$((tries + 1))
done
# Each disk carries its position as its serial: check the order.
status=0
i=0
for dev in $(ls /sys/block | grep '^vd' | sort); do
  if [ "$(cat /sys/block/$dev/serial)" != "snapcow$i" ]; then
    echo "init: /dev/$dev is not disk $i" > /dev/console
    status=125
  fi
  i=$((i + 1))
done
exec 4> /dev/ttyS1
echo "@@snapcow-guest-start" >&4
if [ $status -eq 0 ]; then
  (cd /tmp && sh /test/guest.sh < /dev/null) >&4 2>&4
  status=$?
fi
echo "@@snapcow-guest-exit $status" >&4
exec 4>&-
sync
poweroff -f
EOF
}

# _kvmlinux_from VMLINUZ OUT: the ELF kernel inside a bzImage, if it can
# be entered directly (PVH), which saves seconds of each boot under TCG.
_kvmlinux_from ()
{
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import lzma, struct, sys, zlib
img = open(sys.argv[1], "rb").read()
setup_sects = img[0x1f1] or 4
payload_offset, payload_length = struct.unpack_from("<II", img, 0x248)
start = (setup_sects + 1) * 512 + payload_offset
payload = img[start:start + payload_length]
if payload.startswith(b"\xfd7zXZ\0"):
    elf = lzma.decompress(payload, format=lzma.FORMAT_XZ)
elif payload.startswith(b"\x1f\x8b"):
    elf = zlib.decompressobj(31).decompress(payload)
else:
    sys.exit("unknown kernel compression")
if not elf.startswith(b"\x7fELF\x02"):
    sys.exit("not a 64-bit ELF")
# Look for the PVH entry point note (Xen, type 18).
phoff, = struct.unpack_from("<Q", elf, 0x20)
phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
found = False
for i in range(phnum):
    p_type, _, p_offset, _, _, p_filesz = \
        struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
    if p_type != 4:
        continue
    off = p_offset
    while off + 12 <= p_offset + p_filesz:
        namesz, descsz, ntype = struct.unpack_from("<III", elf, off)
        name = elf[off + 12:off + 12 + namesz].rstrip(b"\0")
        found = found or (name == b"Xen" and ntype == 18)
        off += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
if not found:
    sys.exit("no PVH entry point")
open(sys.argv[2], "wb").write(elf)
EOF
}

# Optional programs and modules (see above).
_kextra_bins="nbd-client socat mke2fs e2fsck"
_kextra_modules="nbd virtio_console ext4 crc32c_generic"

# _kcopybin BIN STAGE: BIN from the host into STAGE/sbin, with the
# libraries it loads.
_kcopybin ()
{
    local path lib
    path=$(command -v "$1") || return 1
    cp -L "$path" "$2/sbin/$1" || return 1
    for lib in $(ldd "$path" | grep -o '/[^ ]*'); do
        mkdir -p "$2$(dirname "$lib")"
        cp -L "$lib" "$2$lib" || return 1
    done
}

# _kbuild: fetch the kernel and busybox and build the initramfs into
# the cache.  Prints why on failure.
_kbuild ()
{
    local kpkg kroot bb kver mdir stage lib m rel dep b
    local -a order=()
    local -A added=()

    kpkg=$(_kpackage)
    [ -n "$kpkg" ] || { echo "no linux-image-amd64 package"; return 1; }
    _kfetch "$kpkg" || { echo "cannot download $kpkg"; return 1; }
    _kfetch busybox-static || { echo "cannot download busybox-static"; return 1; }
    kroot=$_kcache/$kpkg/root
    bb=$_kcache/busybox-static/root/bin/busybox
    kver=$(ls "$kroot/lib/modules" | head -1)
    mdir=$kroot/lib/modules/$kver
    [ -f "$kroot/boot/vmlinuz-$kver" ] && [ -x "$bb" ] ||
        { echo "no kernel or busybox in the packages"; return 1; }
    [ -s "$mdir/modules.dep" ] || depmod -b "$kroot" "$kver" ||
        { echo "depmod failed"; return 1; }

    stage=$(mktemp -d /tmp/snapcow-initramfs.XXXXXX)
    mkdir -p "$stage"/bin "$stage"/sbin "$stage"/proc "$stage"/sys \
          "$stage"/dev "$stage"/tmp "$stage"/lib/modules "$stage"/etc
    cp "$bb" "$stage/bin/busybox"
    for b in $("$bb" --list); do
        [ -e "$stage/bin/$b" ] || ln -s busybox "$stage/bin/$b"
    done
    # dmsetup from the host, with the libraries it loads.
    _kcopybin dmsetup "$stage" || { rm -rf "$stage"; echo "no dmsetup"; return 1; }
    : > "$stage/etc/bins"
    for b in $_kextra_bins; do
        command -v "$b" >/dev/null || continue
        _kcopybin "$b" "$stage" ||
            { rm -rf "$stage"; echo "cannot copy $b"; return 1; }
        echo "$b" >> "$stage/etc/bins"
    done
    [ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$stage/etc/"

    # Modules, each after the ones it depends on (modules.dep).
    _kadd ()
    {
        local rel="$1" dep
        [ -n "${added[$rel]}" ] && return 0
        added[$rel]=1
        for dep in $(grep "^$rel:" "$mdir/modules.dep" | cut -d: -f2); do
            _kadd "$dep"
        done
        order+=("$rel")
    }
    for m in virtio_pci virtio_blk dm-snapshot; do
        rel=$(grep -o "^[^:]*/$m\.ko[^:]*" "$mdir/modules.dep" | head -1)
        [ -n "$rel" ] || { echo "no module $m"; rm -rf "$stage"; return 1; }
        _kadd "$rel"
    done
    _kunpack ()
    {
        local rel b
        for rel in "${order[@]}"; do
            b=$(basename "$rel")
            b=${b%%.ko*}
            case "$rel" in
                *.ko.xz) xz -dc "$mdir/$rel" > "$stage/lib/modules/$b.ko" ;;
                *.ko.zst) zstd -qdc "$mdir/$rel" > "$stage/lib/modules/$b.ko" ;;
                *) cp "$mdir/$rel" "$stage/lib/modules/$b.ko" ;;
            esac || { echo "cannot unpack $rel"; return 1; }
            echo "$b" >> "$1"
        done
    }
    _kunpack "$stage/etc/modules.order" || { rm -rf "$stage"; return 1; }
    # The optional modules, each after the ones it needs that were not
    # loaded at boot.
    order=()
    : > "$stage/etc/modules.extra"
    for m in $_kextra_modules; do
        rel=$(grep -o "^[^:]*/$m\.ko[^:]*" "$mdir/modules.dep" | head -1)
        [ -n "$rel" ] && _kadd "$rel"
    done
    _kunpack "$stage/etc/modules.extra" || { rm -rf "$stage"; return 1; }
    printf '%s\n' '#!/bin/sh' \
        'for m in $(cat /etc/modules.extra); do' \
        '  insmod /lib/modules/$m.ko || { echo "insmod $m failed"; exit 1; }' \
        'done' > "$stage/sbin/load-extra-modules"
    chmod +x "$stage/sbin/load-extra-modules"
    cp "$stage/etc/bins" "$_kcache/initramfs.bins.tmp"

    _kinit > "$stage/init"
    chmod +x "$stage/init"
    (cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
        > "$_kcache/initramfs.tmp" || { rm -rf "$stage"; return 1; }
    rm -rf "$stage"
    if _kvmlinux_from "$kroot/boot/vmlinuz-$kver" "$_kcache/vmlinux.tmp"; then
        mv "$_kcache/vmlinux.tmp" "$_kcache/kernel"
    else
        cp "$kroot/boot/vmlinuz-$kver" "$_kcache/kernel"
    fi
    mv "$_kcache/initramfs.bins.tmp" "$_kcache/initramfs.bins"
    mv "$_kcache/initramfs.tmp" "$_kcache/initramfs.cpio"
    echo "$kver" > "$_kcache/kernel.version"
}

kernel_require ()
{
    local t why rebuild=
    requires qemu-system-x86_64 --version
    for t in dmsetup cpio dpkg-deb apt-get apt-cache xz ldd depmod "$@"; do
        command -v $t >/dev/null || _kskip "missing $t"
    done
    mkdir -p "$_kcache" || _kskip "cannot create $_kcache"
    # Several tests may build at once: one builds, the others wait.
    exec 8>"$_kcache/.lock"
    flock 8
    # A rebuild when this file changes (it holds /init).
    # And when a program asked for was missing when it was built.
    for t in "$@"; do
        grep -qx "$t" "$_kcache/initramfs.bins" 2>/dev/null || rebuild=1
    done
    if [ -n "$rebuild" ] || ! [ -s "$_kcache/initramfs.cpio" ] ||
       ! [ "$_kcache/initramfs.cpio" -nt "$abs_srcdir/kernel-lib.sh" ]; then
        why=$(_kbuild 2>&1) || { exec 8>&-; _kskip "kernel: $why"; }
    fi
    for t in "$@"; do
        grep -qx "$t" "$_kcache/initramfs.bins" ||
            { exec 8>&-; _kskip "$t is not in the initramfs"; }
    done
    exec 8>&-
    _kvmlinux=$_kcache/kernel
    _kinitrd=$_kcache/initramfs.cpio
    echo "$0: kernel $(cat "$_kcache/kernel.version")"
}

# _kboot_once W DISK...: one boot with the initrd in W; the guest's
# serial output goes to W/out.
_kboot_once ()
{
    local w="$1" d i=0 pid start
    local -a args
    shift
    # no_timer_check: on a loaded host, TCG can be too slow for the
    # kernel's IO-APIC timer check, which then panics.
    args=(-nodefaults -no-user-config -machine pc -accel tcg -cpu max
          -smp 1 -m 512 -display none -monitor none -nic none -no-reboot
          -serial "file:$w/console" -serial "file:$w/out"
          -kernel "$_kvmlinux" -initrd "$w/initrd"
          -append "console=ttyS0 quiet panic=-1 no_timer_check snapcow.disks=$#"
          ${SNAPCOW_KERNEL_QEMU_ARGS})
    for d in "$@"; do
        args+=(-drive "file=$d,format=raw,if=none,id=disk$i,cache=writeback"
               -device "virtio-blk-pci,drive=disk$i,serial=snapcow$i")
        i=$((i + 1))
    done
    start=$(date +%s)
    qemu-system-x86_64 "${args[@]}" < /dev/null > "$w/qemu" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
        if [ $(( $(date +%s) - start )) -ge "${SNAPCOW_KERNEL_TIMEOUT:-150}" ]
        then
            kill -9 $pid 2>/dev/null
            touch "$w/timed-out"
            break
        fi
        sleep 0.2
    done
    wait $pid 2>/dev/null
    echo "$0: guest ran for $(( $(date +%s) - start )) s"
}

kernel_boot ()
{
    local script="$1" out="$2" w status
    shift 2
    w=$(mktemp -d /tmp/snapcow-boot.XXXXXX)
    mkdir -p "$w/add/test"
    cp "$script" "$w/add/test/guest.sh"
    (cd "$w/add" && find . | cpio -o -H newc -R 0:0 --quiet) > "$w/add.cpio"
    cat "$_kinitrd" "$w/add.cpio" > "$w/initrd"
    _kboot_once "$w" "$@"
    # A guest that died before the script started touched no disk: one
    # more try.
    if ! grep -q '^@@snapcow-guest-start' "$w/out" && ! [ -f "$w/timed-out" ]
    then
        echo "$0: the guest died before the test began; kernel log:" >&2
        tail -20 "$w/console" | tr -d '\r' >&2
        rm -f "$w/out" "$w/console"
        _kboot_once "$w" "$@"
    fi
    tr -d '\r' < "$w/out" |
        sed -n '/^@@snapcow-guest-start$/,/^@@snapcow-guest-exit/p' |
        sed '1d;$d' > "$out"
    status=$(tr -d '\r' < "$w/out" |
             sed -n 's/^@@snapcow-guest-exit \([0-9]*\)$/\1/p')
    if [ -z "$status" ]; then
        if [ -f "$w/timed-out" ]; then status=124; else status=125; fi
        echo "$0: the guest gave no answer; qemu and kernel log:" >&2
        cat "$w/qemu" >&2
        tail -40 "$w/console" | tr -d '\r' >&2
    fi
    [ -n "$SNAPCOW_KERNEL_CONSOLE" ] && cp "$w/console" "$SNAPCOW_KERNEL_CONSOLE"
    rm -rf "$w"
    return $status
}
