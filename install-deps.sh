#!/bin/bash
# install-deps.sh: install everything snapcow needs to build, test and
# demo, on Debian 12 (bookworm).  Safe to run again: when every package
# is already installed it does nothing.
#
# To add a dependency, add its Debian package to PACKAGES below.
set -euo pipefail

PACKAGES=(
    # Build.
    gcc
    make
    autoconf
    automake
    libtool
    pkg-config
    # Libraries: nbdkit's plugin headers, libnbd, the Check unit tests.
    nbdkit
    nbdkit-plugin-dev
    libnbd-dev
    check
    # libblkid: the signature probe that keeps a new store off real data.
    libblkid-dev
    # Test and demo tools: nbdinfo, nbdcopy, nbdsh, qemu-img, qemu-io, fio.
    libnbd-bin
    python3-libnbd
    qemu-utils
    fio
    # The kernel tests (test-kernel-*.sh): qemu boots Debian's kernel with
    # an initramfs built from dmsetup, cpio, kmod (depmod) and xz-utils.
    qemu-system-x86
    dmsetup
    cpio
    kmod
    xz-utils
    # test-kernel-nbd.sh: the kernel's NBD client in the guest (nbd-client,
    # socat) and ext4 on it (e2fsprogs: mke2fs, e2fsck, debugfs).
    nbd-client
    socat
    e2fsprogs
    # test-reflink-xfs.sh: first writes that share the origin's blocks,
    # on a loop-mounted XFS with reflink (mkfs.xfs).
    xfsprogs
    # test-refuse-signatures.sh: a partition table to refuse (sfdisk).
    fdisk
    # The benchmark (bench/run.sh, make bench): jq reads fio's figures,
    # perf counts the servers' syncs per flush.
    jq
    linux-perf
    # Man pages: pod2man and podchecker.
    perl
    # The fuzzer (make fuzz): clang and its libFuzzer runtime.
    clang
    libclang-rt-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing+=("$p") ;;
    esac
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps.sh: all ${#PACKAGES[@]} packages are installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null; then
    SUDO=(sudo)
else
    echo "install-deps.sh: must run as root (or have sudo) to install:" \
         "${missing[*]}" >&2
    exit 1
fi

echo "install-deps.sh: installing ${missing[*]}"
log=$(mktemp /tmp/snapcow-install-deps.XXXXXX)
trap 'rm -f "$log"' EXIT

# Quiet on success; on failure show apt's whole output.
run() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-deps.sh: failed: $*" >&2
        exit 1
    fi
}

run "${SUDO[@]}" apt-get update
run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps.sh: done"
