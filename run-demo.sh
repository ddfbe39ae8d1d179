#!/bin/bash
# run-demo.sh [ORIGIN [COW]]: install the dependencies, build snapcow,
# and serve a writable snapshot of ORIGIN on a Unix socket, in the
# foreground, until Ctrl-C.
#
# Without ORIGIN a 64 MiB demo origin is made in demo/ (sparse, with a
# line of text at the start of every MiB).  The COW store goes in demo/
# too (COW, default demo/NAME.cow for an origin called NAME), so a
# second run serves the same snapshot.  The build is out of tree, in
# build/demo; nothing is installed except Debian packages.
set -euo pipefail

# Debian's python3 has the nbd module that nbdsh needs.
export PATH=/usr/bin:$PATH

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"

if [ $# -gt 2 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    echo "usage: $0 [ORIGIN [COW]]" >&2
    exit 2
fi

./install-deps.sh

# Build.  autoreconf only when the generated files are missing or older
# than their sources; configure only once; make decides the rest.
builddir=$top/build/demo
if [ ! -x configure ] || [ configure.ac -nt configure ] ||
   [ -n "$(find . -name Makefile.am -newer configure -not -path './build/*')" ]
then
    echo "run-demo.sh: autoreconf -fi"
    mkdir -p m4      # not in git; aclocal warns if it is missing
    autoreconf -fi
fi
mkdir -p "$builddir"
if [ ! -f "$builddir/config.status" ]; then
    echo "run-demo.sh: configure (in build/demo)"
    (cd "$builddir" && "$top/configure" -q)
fi
echo "run-demo.sh: make"
make -C "$builddir" -s -j"$(nproc)"

plugin=$builddir/plugin/.libs/nbdkit-snapcow-plugin.so
test -f "$plugin"

# The origin and the COW store.
mkdir -p demo
if [ $# -ge 1 ]; then
    origin=$1
    if [ ! -e "$origin" ]; then
        echo "run-demo.sh: $origin: no such file" >&2
        exit 1
    fi
    name=$(basename "$origin")
    cow=${2:-demo/${name%.*}.cow}
else
    origin=demo/origin.img
    cow=${2:-demo/origin.cow}
    if [ ! -f "$origin" ]; then
        echo "run-demo.sh: making a 64 MiB demo origin, $origin"
        tmp=$origin.tmp
        rm -f "$tmp"
        truncate -s 64M "$tmp"
        for i in $(seq 0 63); do
            printf 'snapcow demo origin: this is MiB %d of 64\n' "$i" |
                dd of="$tmp" bs=1M seek="$i" conv=notrunc status=none
        done
        chmod a-w "$tmp"
        mv "$tmp" "$origin"
    fi
fi

sock=$top/demo/snapcow.sock
if [ -S "$sock" ]; then
    if nbdinfo --can connect "nbd+unix:///?socket=$sock" 2>/dev/null; then
        echo "run-demo.sh: a server is already running on $sock" >&2
        exit 1
    fi
    rm -f "$sock"
fi

if [ -f "$cow" ]; then
    state="existing COW store $cow ($(du -h "$cow" | cut -f1) used)"
else
    state="new COW store $cow (created on the first connection)"
fi
uri="nbd+unix:///?socket=$sock"

cat <<MSG

Serving a writable snapshot of $origin
  with the $state
  on the Unix socket $sock

The origin is never written; everything written to the snapshot goes
to the COW store, which keeps it across restarts.  From another shell:

  Inspect it:
    nbdinfo '$uri'
    nbdinfo --map '$uri'
  Read and write it from Python (nbdsh needs Debian's /usr/bin/python3):
    PATH=/usr/bin:\$PATH nbdsh -u '$uri' -c 'print(h.pread(64, 0))'
  Copy it out:
    nbdcopy '$uri' snapshot.img
    qemu-img convert -p -O qcow2 '$uri' snapshot.qcow2
  Boot a VM on it:
    qemu-system-x86_64 -m 1G -drive file=nbd:unix:$sock,format=raw
  Attach it as a kernel block device (as root, with the nbd module):
    modprobe nbd && nbd-client -unix $sock /dev/nbd0
    ...  nbd-client -d /dev/nbd0   # detach

Stop the server with Ctrl-C: it commits the COW store and exits.  Run
$0 again to serve the same snapshot.

MSG

exec nbdkit -f -U "$sock" "$plugin" origin="$origin" cow="$cow"
