# bench/common.sh: helpers shared by bench/run.sh and bench/origin.sh:
# tool checks, servers on Unix sockets, fio runs and their figures,
# the page cache between runs, medians.  Sourced, never run.

bench_die ()
{
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

bench_log ()
{
    echo "$BENCH_NAME: $*" >&2
}

# need CMD PACKAGE: a clear error, naming the Debian package, when CMD
# is missing.
need ()
{
    command -v "$1" >/dev/null 2>&1 ||
        bench_die "$1 not found: install the Debian package $2" \
                  "(./install-deps.sh installs everything)"
}

# The plugin: $SNAPCOW_PLUGIN (make bench sets it to the uninstalled
# build), else the installed one by name.  Likewise the tool.
: "${SNAPCOW_PLUGIN:=snapcow}"
: "${SNAPCOW_TOOL:=snapcow}"

need_plugin ()
{
    nbdkit "$SNAPCOW_PLUGIN" --dump-plugin >/dev/null 2>&1 ||
        bench_die "nbdkit cannot load the snapcow plugin" \
                  "'$SNAPCOW_PLUGIN': run 'make bench' in a build directory," \
                  "install it, or set SNAPCOW_PLUGIN=/path/to/nbdkit-snapcow-plugin.so"
}

need_fio_nbd ()
{
    need fio fio
    fio --enghelp=nbd >/dev/null 2>&1 ||
        bench_die "this fio has no nbd engine (fio --enghelp=nbd fails):" \
                  "fio 3.17 or later built with libnbd is needed (Debian 12's is)"
}

# A work directory on a real disk filesystem: tmpfs would make every
# sync free and the figures meaningless.
bench_workdir ()
{
    local parent=${1:-${TMPDIR:-/var/tmp}} d fs
    mkdir -p "$parent"
    d=$(mktemp -d "$parent/snapcow-bench.XXXXXX")
    fs=$(stat -f -c %T "$d")
    case "$fs" in
        tmpfs|ramfs) rm -rf "$d"
                     bench_die "$parent is on $fs: give a directory on a disk with --dir" ;;
    esac
    echo "$d"
}

# Servers.  Each is started in the background on its own socket; the pid
# file is written once it listens.  stop_pid sends SIGTERM (nbdkit
# commits the store on a clean stop) and waits until the process is gone.
start_nbdkit ()
{
    local sock=$1 pidf=$2
    shift 2
    rm -f "$sock" "$pidf"
    nbdkit --log=stderr -U "$sock" -P "$pidf" "$@" 2>>"$BENCH_WORK/server.log" ||
        { tail -5 "$BENCH_WORK/server.log" >&2
          bench_die "nbdkit failed to start: nbdkit $*"; }
}

# A daemonised server is reparented to init, which may take its time to
# reap it: a zombie has finished.
pid_running ()
{
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

stop_pid ()
{
    local pidf=$1 pid i
    [ -s "$pidf" ] || return 0
    pid=$(cat "$pidf")
    kill -TERM "$pid" 2>/dev/null || { rm -f "$pidf"; return 0; }
    for (( i = 0; i < 1200; i++ )); do
        pid_running "$pid" || break
        sleep 0.02
    done
    if pid_running "$pid"; then
        bench_log "pid $pid did not stop in 60 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidf"
}

nbd_uri ()
{
    echo "nbd+unix:///${2:-}?socket=$1"
}

# run_fio OUT.json SOCK [FIO OPTIONS...]: one fio run with the nbd
# engine against the default export of SOCK ("--export=NAME" as the first
# option picks another), total latency percentiles on.
run_fio ()
{
    local out=$1 sock=$2 export=
    shift 2
    case "${1:-}" in
        --export=*) export=${1#--export=}; shift ;;
    esac
    fio --name=bench --ioengine=nbd --uri="$(nbd_uri "$sock" "$export")" \
        --lat_percentiles=1 --output-format=json --output="$out" \
        "$@" >"$out.log" 2>&1 ||
        { cat "$out.log" >&2; tail -5 "$BENCH_WORK/server.log" >&2
          bench_die "fio failed: fio $*"; }
}

# make_first_touch_log FILE SEED SIZE [FLUSH_EVERY]: a log for fio's
# read_iolog with a random permutation of the 64K blocks of a disk of
# SIZE bytes, one 4K write at a random 4K slot in each, and a flush
# after every FLUSH_EVERY-th write when given (the same writes as
# without: the flushes come from no random numbers).  Every write lands in a chunk not
# yet copied, at every chunk size up to 64K (and in a new qcow2 cluster
# or cow filter block), and every server given the same SEED gets the
# same offsets.  (fio's own blockalign=64k would turn off its random
# map, and so repeat blocks.)
#
# fio 3.33 ends a replay without waiting for the requests in flight: up
# to iodepth of the last ones are counted but cut off (at most 16 of
# thousands, well under 1% of a figure), and the abrupt close can make
# nbdkit 1.32 abort on a reply to the closed socket (connections.c
# "sock >= 0").  The server of a measured run is discarded anyway; a
# run whose data matters (origin.sh's merge) uses no replay.
make_first_touch_log ()
{
    {
        echo "fio version 2 iolog"
        echo "nbd add"
        echo "nbd open"
        awk -v seed="$2" -v n=$(( $3 / 65536 )) -v every="${4:-0}" 'BEGIN {
                srand(seed)
                for (i = 0; i < n; i++) b[i] = i
                for (i = n - 1; i > 0; i--) {
                    j = int(rand() * (i + 1)); t = b[i]; b[i] = b[j]; b[j] = t
                }
                for (i = 0; i < n; i++) {
                    printf "nbd write %d 4096\n", b[i] * 65536 + int(rand() * 16) * 4096
                    if (every > 0 && (i + 1) % every == 0) print "nbd sync 0 0"
                }
            }'
        echo "nbd close"
    } > "$1"
}

# fio_figure JSON DIR FIELD: a figure of the first job (the group with
# group_reporting).  DIR is read or write; FIELD is iops, mibs (MiB/s),
# p99 (total latency, ns), ios, or syncs (flushes the job sent).
fio_figure ()
{
    local json=$1 dir=$2 field=$3
    case "$field" in
        iops) jq -r ".jobs[0].$dir.iops" "$json" ;;
        mibs) jq -r ".jobs[0].$dir.bw_bytes / 1048576" "$json" ;;
        p99)  jq -r ".jobs[0].$dir.lat_ns.percentile[\"99.000000\"] // 0" "$json" ;;
        ios)  jq -r ".jobs[0].$dir.total_ios" "$json" ;;
        syncs) jq -r '[.jobs[].sync.total_ios] | add' "$json" ;;
    esac
}

# The page cache between runs.  pin_files keeps the named files (the
# origin, the ceiling's copy) in memory by mapping them, because
# drop_caches leaves mapped pages alone: every run then reads its origin
# from memory, as the first run does, while everything a previous run
# left behind is dropped.  Re-reading a 1 GiB origin from disk after
# every drop would take seconds per run and measure the disk instead.
# A pin keeps the pages, and so the folios, that the files have: it
# makes none unless a page is missing.
#
# pin_overlay FILE does the same for an overlay once its workload is
# prepared, until unpin_overlay.  Another process's drop_caches (other
# benchmarks on a shared machine) would otherwise evict the overlay's
# clean pages, and a 4K write into an evicted page makes a 4K folio,
# cheaper than a write into the large folio it replaces (run.sh): a
# server's figure would then depend on the neighbours' timing.  The
# ceiling's copy, dropped from the cache before a write run, is pinned
# likewise after its prepare, its cached pages only (--resident).
PIN_PID=
OVERLAY_PIN_PID=

# pin_start READY [--make SRC BYTES | --resident] FILE...: sets PINNED to the pid of
# a process that maps each FILE and touches every page, or to nothing
# without python3 or when it cannot map them.  With --make, the next
# FILE is first made from the first BYTES of SRC with 1M writes, each
# mapped and touched at once: another process's sync and drop_caches
# could otherwise evict it half-made, and the pin would fault the
# missing pages back in as other folios than a 1M write makes (run.sh).
# With --resident, only the pages of the next FILE that are in the cache
# are pinned.  READY then holds, per FILE, the MiB that were not in the page cache
# when it was pinned (0 when the pin keeps exactly what was there).
pin_start ()
{
    local ready=$1
    shift
    PINNED=
    command -v python3 >/dev/null 2>&1 || return 0
    rm -f "$ready"
    python3 -c '
import ctypes, mmap, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
PAGE = mmap.PAGESIZE
MIB = 1 << 20

def address(m, path, size):
    # The start of the mapping, from /proc/self/maps (a read-only mmap
    # object gives no address).
    real = os.path.realpath(path)
    for line in open("/proc/self/maps"):
        f = line.split()
        if len(f) >= 6 and os.path.realpath(f[5]) == real:
            a, b = (int(x, 16) for x in f[0].split("-"))
            if b - a >= size:
                return a
    return None

def data_ranges(fd, size):
    # The data of the file, page-aligned: the holes of a grown store need no pin.
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        start -= start % PAGE
        yield start, end
        off = end

def missing(m, path, ranges):
    # Pages of the ranges not in the page cache (mincore).
    a = address(m, path, len(m))
    if a is None:
        return -1
    lost = 0
    for start, end in ranges:
        n = (end - start + PAGE - 1) // PAGE
        vec = ctypes.create_string_buffer(n)
        if libc.mincore(ctypes.c_void_p(a + start), ctypes.c_size_t(end - start), vec) != 0:
            return -1
        lost += sum(1 for c in vec.raw if not c & 1)
    return lost

maps = []
report = []
args = sys.argv[2:]
while args:
    src = None
    resident = False
    if args[0] == "--make":
        src, nbytes, args = args[1], int(args[2]), args[3:]
    elif args[0] == "--resident":
        resident, args = True, args[1:]
    path, args = args[0], args[1:]
    if src is not None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, nbytes)
        sfd = os.open(src, os.O_RDONLY)
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        for off in range(0, nbytes, MIB):
            buf = os.read(sfd, MIB) if src == "/dev/urandom" else os.pread(sfd, MIB, off)
            while len(buf) < MIB:
                more = os.read(sfd, MIB - len(buf))
                if not more:
                    sys.exit("%s: short" % src)
                buf += more
            os.pwrite(fd, buf, off)
            for p in range(off, off + MIB, PAGE):
                m[p]
        os.close(sfd)
        lost = 0
    else:
        fd = os.open(path, os.O_RDONLY)
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        ranges = list(data_ranges(fd, len(m)))
        if resident:
            # Only the pages in the cache, found with mincore.
            lost, a, keep = 0, address(m, path, len(m)), []
            for start, end in ranges:
                vec = ctypes.create_string_buffer((end - start + PAGE - 1) // PAGE)
                if a is None or libc.mincore(ctypes.c_void_p(a + start), ctypes.c_size_t(end - start), vec) != 0:
                    break
                keep += [start + i * PAGE for i, c in enumerate(vec.raw) if c & 1]
            for off in keep:
                m[off]
        else:
            lost = missing(m, path, ranges)
            for start, end in ranges:
                for off in range(start, end, PAGE):
                    m[off]
    maps.append(m)
    report.append("%s %d" % (path, lost * PAGE // MIB if lost > 0 else lost))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("\n".join(report) + "\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.pause()
' "$ready" "$@" 2>/dev/null &
    PINNED=$!
    while [ ! -e "$ready" ]; do
        kill -0 "$PINNED" 2>/dev/null || { PINNED=; return 0; }
        sleep 0.02
    done
    # Pages evicted before the pin: the figures of this run may be off.
    awk -v name="$BENCH_NAME" '$2 > 0 { printf "%s: %s had lost %d MiB of its page cache before it was pinned (another process dropped caches?)\n", name, $1, $2 }' \
        "$ready" >&2
}

pin_stop ()
{
    if [ -n "$1" ]; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

pin_files ()
{
    pin_start "$BENCH_WORK/pin.ready" "$@"
    PIN_PID=$PINNED
}

unpin_files ()
{
    pin_stop "$PIN_PID"
    PIN_PID=
}

pin_overlay ()
{
    pin_start "$BENCH_WORK/pin-overlay.ready" "$@"
    OVERLAY_PIN_PID=$PINNED
}

unpin_overlay ()
{
    pin_stop "$OVERLAY_PIN_PID"
    OVERLAY_PIN_PID=
}

# Whether to drop the caches: as root, and when the files to keep are
# pinned, or when nothing needs keeping (DROP_UNPINNED=1: the merge
# runs from a cold cache on purpose).
DROP_UNPINNED=0
can_drop_caches ()
{
    [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/drop_caches ] &&
        { [ -n "$PIN_PID" ] || [ "$DROP_UNPINNED" = 1 ]; }
}

# settle: between runs.  Write back what the last run left dirty, so
# that its writeback does not slow the next one, then drop the caches.
settle ()
{
    sync
    if can_drop_caches; then
        echo 3 > /proc/sys/vm/drop_caches
    fi
}

# Bytes a file takes on disk.
disk_bytes ()
{
    du --block-size=1 "$1" | cut -f1
}

# Syncs: fdatasync and fsync calls of a process and all its threads,
# counted by the kernel's syscall tracepoints (perf stat -p), which do
# not stop the process as strace would.  count_syncs_start PID OUT,
# then count_syncs_stop sets SYNC_COUNT (not in a subshell: it must wait
# for perf, its child, to write the count).
SYNC_PERF_PID=
SYNC_PERF_OUT=
have_sync_counter ()
{
    command -v perf >/dev/null 2>&1 &&
        perf stat -x, -e syscalls:sys_enter_fdatasync -- true >/dev/null 2>&1
}

count_syncs_start ()
{
    SYNC_PERF_OUT=$2
    perf stat -x, -o "$SYNC_PERF_OUT" \
         -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync \
         -p "$1" >/dev/null 2>&1 &
    SYNC_PERF_PID=$!
    # perf writes nothing until it stops; give it time to attach.
    sleep 0.5
}

count_syncs_stop ()
{
    kill -INT "$SYNC_PERF_PID" 2>/dev/null || true
    wait "$SYNC_PERF_PID" 2>/dev/null || true
    SYNC_COUNT=$(awk -F, '/syscalls:sys_enter_f/ { n += $1 } END { print n + 0 }' \
                     "$SYNC_PERF_OUT")
}

# median of the numbers on stdin, one a line ("-" when there are none).
median ()
{
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "-";
              else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.15g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with two decimals, "-" when either is missing.
ratio ()
{
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-";
        else printf "%.2f\n", a / b }'
}

machine_line ()
{
    echo "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
         "Linux $(uname -r), $(findmnt -n -o FSTYPE -T "$BENCH_WORK") under $BENCH_WORK," \
         "$(fio --version), $(nbdkit --version | head -1), $(qemu-nbd --version | head -1 | sed 's/ (.*//')"
}

loadavg ()
{
    cut -d' ' -f1-3 /proc/loadavg
}
