#!/bin/bash
# bench/run.sh: snapcow's own benchmark, side by side with what users
# have instead: nbdkit's file plugin on a copy of the origin (the
# ceiling: no COW at all), nbdkit's cow filter, a qcow2 overlay served by
# qemu-nbd, and snapcow at 4K, 16K and 64K chunks.  fio drives each
# server over NBD on its own Unix socket, with its nbd engine.
#
#   bench/run.sh [--quick] [--repeat N] [--json FILE]
#                [--size SIZE] [--runtime SECONDS] [--dir DIR]
#                [--servers LIST] [--workloads LIST]
#
# Every run starts from a fresh overlay; runs are repeated and the
# median is reported.  `make bench` runs it against the build.  It is
# never part of `make check`: figures depend on the machine.
set -euo pipefail

BENCH_NAME=run.sh
bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"

usage ()
{
    cat <<EOF
usage: bench/run.sh [--quick] [--repeat N] [--json FILE] [--size SIZE]
                    [--runtime SECONDS] [--dir DIR] [--servers LIST]
                    [--workloads LIST]

  --quick          a 256 MiB origin, 1 s runs, no repeat (1-2 minutes)
  --repeat N       runs of each workload on each server; the median is
                   reported (default 3; 1 with --quick)
  --json FILE      write every figure, run by run, to FILE
  --size SIZE      origin size (default 1G; 256M with --quick)
  --runtime SEC    length of each timed run (default 1.5; 1 with --quick)
  --dir DIR        where the origin and overlays go (default \$TMPDIR or
                   /var/tmp); must be a disk filesystem, not tmpfs
  --servers LIST   comma-separated subset of:
                   $ALL_SERVERS
  --workloads LIST comma-separated subset of:
                   $ALL_WORKLOADS

Environment: SNAPCOW_PLUGIN, the plugin to load (default: the installed
"snapcow"; make bench sets the build's).
EOF
}

ALL_SERVERS="ceiling,cow,qcow2,snapcow-4k,snapcow-16k,snapcow-64k"
ALL_WORKLOADS="first-touch,first-flush,steady,flush,seq-write,rand-read,seq-read,conn4"

quick=0 repeat= json= size= runtime= parent= servers=$ALL_SERVERS
workloads=$ALL_WORKLOADS
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --repeat) repeat=${2:?--repeat needs a number}; shift ;;
        --repeat=*) repeat=${1#*=} ;;
        --json) json=${2:?--json needs a file}; shift ;;
        --json=*) json=${1#*=} ;;
        --size) size=${2:?--size needs a size}; shift ;;
        --size=*) size=${1#*=} ;;
        --runtime) runtime=${2:?--runtime needs seconds}; shift ;;
        --runtime=*) runtime=${1#*=} ;;
        --dir) parent=${2:?--dir needs a directory}; shift ;;
        --dir=*) parent=${1#*=} ;;
        --servers) servers=${2:?}; shift ;;
        --servers=*) servers=${1#*=} ;;
        --workloads) workloads=${2:?}; shift ;;
        --workloads=*) workloads=${1#*=} ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 1 ;;
    esac
    shift
done
if [ $quick = 1 ]; then
    : "${repeat:=1}" "${size:=256M}" "${runtime:=1}"
else
    : "${repeat:=3}" "${size:=1G}" "${runtime:=1.5}"
fi
[[ $repeat =~ ^[1-9][0-9]*$ ]] || bench_die "--repeat: not a positive number: $repeat"
[[ $runtime =~ ^[0-9]+(\.[0-9]+)?$ ]] || bench_die "--runtime: not a number of seconds: $runtime"
runtime_ms=$(awk -v r="$runtime" 'BEGIN { printf "%d", r * 1000 }')
(( runtime_ms >= 100 )) || bench_die "--runtime: at least 0.1 s"
size_bytes=$(numfmt --from=iec "$size" 2>/dev/null) ||
    bench_die "--size: not a size: $size"
(( size_bytes >= 64 * 1048576 && size_bytes % 1048576 == 0 )) ||
    bench_die "--size: at least 64M, a whole number of MiB"
for s in ${servers//,/ }; do
    [[ ",$ALL_SERVERS," == *",$s,"* ]] || bench_die "--servers: unknown server $s"
done
for w in ${workloads//,/ }; do
    [[ ",$ALL_WORKLOADS," == *",$w,"* ]] || bench_die "--workloads: unknown workload $w"
done

need nbdkit nbdkit
need_fio_nbd
need qemu-nbd qemu-utils
need qemu-img qemu-utils
need jq jq
need numfmt coreutils
need_plugin
nbdkit --filter=cow null --dump-plugin >/dev/null 2>&1 ||
    bench_die "nbdkit has no cow filter: install the Debian package nbdkit"
sync_counter=0
if have_sync_counter; then
    sync_counter=1
else
    bench_log "perf cannot count syscalls here (Debian package linux-perf," \
              "and root): syncs per flush will not be reported"
fi

BENCH_WORK=$(bench_workdir "$parent")
W=$BENCH_WORK
CEILING_PIN_PID=
cleanup ()
{
    local p
    set +e
    unpin_overlay
    pin_stop "$CEILING_PIN_PID"
    for p in "$W"/*.pid; do [ -e "$p" ] && stop_pid "$p"; done
    unpin_files
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT QUIT TERM

# The workload geometry.  IODEPTH for every job; the steady workloads
# write in the first quarter of the disk, pre-written in full.
IODEPTH=16
region=$(( size_bytes / 4 ))
blocks64k=$(( size_bytes / 65536 ))
# The flush workload is a fixed number of writes (a replayed log, see
# below): about as many as a timed run at 16K IOPS.
flush_writes=$(( 16384 * runtime_ms / 1000 / 16 * 16 ))

ceiling=$W/ceiling.img
origin=$W/origin.img
sock=$W/server.sock
pidf=$W/server.pid

bench_log "work directory $W; making a $size origin of random data"
# The page cache of the ceiling's copy.  Its folio size follows the
# write that made a page: on kernels whose ext4 has large folios (6.x
# since about 6.11; Debian 12's 6.1 has none), a 1M write at a 1M
# boundary makes a 1M folio, cp's splice 64K ones, an mmap fault's
# read-around up to 2M ones.  A later 4K write into a cached page walks
# and dirties every buffer of its folio (ext4_block_write_begin,
# mark_buffer_dirty), so it costs more the bigger the folio: on the 6.18
# test machine nbdkit's file plugin spent, per steady 4K write, about
# 7 us of CPU in 4K folios, 9 us in 64K ones, 13.5 us in 1M ones and
# 23 us in 2M ones.  A copy made by cp and kept in memory for the whole
# run thus won or lost by its cache alone.  So every server starts a
# write workload as an overlay does, with none of its file's pages in
# the cache: the ceiling's copy is dropped from the cache before each of
# its write runs (ceiling_cold), and the prepare's or the run's own
# writes make its folios, as they make the overlays'.  (Its blocks stay
# allocated: that is what a copy has over an overlay.)  For the read
# workloads the copy plays the origin's part, and is kept in memory
# like the origin: both are made with 1M writes, each page pinned as
# soon as written (common.sh, pin_start --make).
pin_files --make /dev/urandom "$size_bytes" "$origin"
if [ -z "$PIN_PID" ]; then
    # No python3: the same writes, unpinned.
    dd if=/dev/urandom of="$origin" bs=1M count=$(( size_bytes >> 20 )) \
       iflag=fullblock status=none
fi
dd if="$origin" of="$ceiling" bs=1M status=none
sync
ceiling_cold ()
{
    pin_stop "$CEILING_PIN_PID"
    CEILING_PIN_PID=
    sync "$ceiling"
    dd if="$ceiling" iflag=nocache count=0 status=none
}
ceiling_warm ()
{
    [ -z "$CEILING_PIN_PID" ] || return 0
    pin_start "$W/pin-ceiling.ready" --make "$origin" "$size_bytes" "$ceiling"
    CEILING_PIN_PID=$PINNED
    sync "$ceiling"
}
if can_drop_caches; then
    cache_note="caches dropped between runs (origin kept in memory; the ceiling's copy too for the reads, never for the writes)"
else
    cache_note="page cache synced between runs; not dropped (needs root and python3)"
fi
load_start=$(loadavg)

# Server start and stop.  overlay_file is the file whose size on disk
# is reported; the cow filter's overlay is a deleted temporary file, so
# its size is read through the server's descriptor before it stops.
overlay_file=
start_server ()
{
    local srv=$1
    rm -f "$W"/store.cow "$W"/overlay.qcow2
    rm -rf "$W/cowtmp"
    case "$srv" in
        ceiling)
            overlay_file=$ceiling
            start_nbdkit "$sock" "$pidf" file file="$ceiling" ;;
        cow)
            overlay_file=
            mkdir "$W/cowtmp"
            TMPDIR=$W/cowtmp start_nbdkit "$sock" "$pidf" \
                --filter=cow file file="$origin" ;;
        qcow2)
            overlay_file=$W/overlay.qcow2
            qemu-img create -q -f qcow2 -o cluster_size=65536 \
                     -b "$origin" -F raw "$overlay_file"
            rm -f "$sock" "$pidf"
            qemu-nbd --fork --pid-file="$pidf" -k "$sock" -f qcow2 \
                     --cache=writeback -e 8 -t "$overlay_file" ||
                bench_die "qemu-nbd failed to start"
            ;;
        snapcow-*)
            overlay_file=$W/store.cow
            start_nbdkit "$sock" "$pidf" "$SNAPCOW_PLUGIN" "$origin" \
                         cow="$overlay_file" chunk-size="${srv#snapcow-}" ;;
    esac
}

# The cow filter's overlay, a deleted file, through its server's
# descriptor.
cow_overlay_fd ()
{
    local fd link
    for fd in /proc/"$(cat "$pidf")"/fd/*; do
        link=$(readlink "$fd" 2>/dev/null) || continue
        case "$link" in
            "$W/cowtmp/"*) echo "$fd"; return 0 ;;
        esac
    done
}

# Prints the overlay's bytes on disk, then stops the server.
stop_server ()
{
    local srv=$1 bytes=- fd
    if [ "$srv" = cow ]; then
        fd=$(cow_overlay_fd)
        [ -z "$fd" ] || bytes=$(stat -L -c '%b %B' "$fd" | awk '{ print $1 * $2 }')
    fi
    unpin_overlay
    stop_pid "$pidf"
    [ -n "$overlay_file" ] && bytes=$(disk_bytes "$overlay_file")
    echo "$bytes"
}

# Replayed logs.  fio's fsync=16 sends far more than one flush per 16
# writes when iodepth > 1 (the write count stays a multiple of 16 while
# the flush is queued), so the flush workload replays a log with exactly
# one flush after every 16th write.  First-touch writes replay
# make_first_touch_log's permutation (common.sh).
make_flush_log ()
{
    awk -v seed="$2" -v n="$flush_writes" -v blocks=$(( region / 4096 )) '
        BEGIN { srand(seed)
                print "fio version 2 iolog"; print "nbd add"; print "nbd open"
                for (i = 1; i <= n; i++) {
                    printf "nbd write %d 4096\n", int(rand() * blocks) * 4096
                    if (i % 16 == 0) print "nbd sync 0 0"
                }
                print "nbd close" }' > "$1"
}

title ()
{
    case "$1" in
        first-touch) echo "first-touch 4K random writes ($blocks64k writes, one in each 64K block, random order)" ;;
        first-flush) echo "first-touch 4K random writes, a flush after every 16th (the same $blocks64k writes)" ;;
        steady) echo "steady 4K random writes (first $(( region >> 20 )) MiB, pre-written)" ;;
        flush) echo "steady 4K random writes, a flush after every 16th ($flush_writes writes)" ;;
        seq-write) echo "1M sequential writes (the whole disk, fresh overlay)" ;;
        rand-read) echo "4K random reads over a half-written overlay (every other 64K written)" ;;
        seq-read) echo "64K sequential reads over a half-written overlay (the same one, after the random reads)" ;;
        conn4) echo "4 connections of steady 4K random writes (iodepth $IODEPTH each)" ;;
    esac
}

unit ()
{
    case "$1" in
        seq-write|seq-read) echo MiB/s ;;
        *) echo IOPS ;;
    esac
}

# prepare WORKLOAD SERVER: bring a fresh overlay to the state the
# workload starts from.  Flushed at the end and written back, so that
# the measured run pays for none of it; its pages are then pinned, so
# that another process's drop_caches cannot change them (common.sh,
# pin_overlay).
prepare ()
{
    case "$1" in
        steady|flush|conn4)
            run_fio "$W/pre.json" "$sock" --rw=write --bs=1M --iodepth=$IODEPTH \
                    --size="$region" --end_fsync=1 ;;
        rand-read|seq-read)
            run_fio "$W/pre.json" "$sock" --rw=write:64k --bs=64k \
                    --iodepth=$IODEPTH --end_fsync=1 ;;
        *) return 0 ;;
    esac
    case "$2" in
        ceiling) [ -n "$CEILING_PIN_PID" ] || pin_overlay --resident "$ceiling" ;;
        cow) pin_overlay "$(cow_overlay_fd)" ;;
        *) pin_overlay "$overlay_file" ;;
    esac
    sync
}

# measure WORKLOAD OUT.json REP
measure ()
{
    local common=(--iodepth=$IODEPTH)
    local timed=(--time_based --runtime="${runtime_ms}ms")
    case "$1" in
        first-touch)
            run_fio "$2" "$sock" "${common[@]}" --read_iolog="$W/first-touch.$3.log" \
                    --replay_no_stall=1 ;;
        steady)
            run_fio "$2" "$sock" "${common[@]}" "${timed[@]}" --rw=randwrite \
                    --bs=4k --size="$region" --norandommap --randrepeat=0 ;;
        first-flush)
            run_fio "$2" "$sock" "${common[@]}" --read_iolog="$W/first-flush.$3.log" \
                    --replay_no_stall=1 ;;
        flush)
            run_fio "$2" "$sock" "${common[@]}" --read_iolog="$W/flush.$3.log" \
                    --replay_no_stall=1 ;;
        seq-write)
            run_fio "$2" "$sock" "${common[@]}" --rw=write --bs=1M ;;
        rand-read)
            run_fio "$2" "$sock" "${common[@]}" "${timed[@]}" --rw=randread \
                    --bs=4k --norandommap --randrepeat=0 ;;
        seq-read)
            run_fio "$2" "$sock" "${common[@]}" "${timed[@]}" --rw=read --bs=64k ;;
        conn4)
            run_fio "$2" "$sock" "${common[@]}" "${timed[@]}" --rw=randwrite \
                    --bs=4k --size="$region" --norandommap --randrepeat=0 \
                    --numjobs=4 --group_reporting ;;
    esac
}

# The workloads that send flushes, whose syncs per flush are counted.
has_flushes ()
{
    case "$1" in flush|first-flush) return 0 ;; *) return 1 ;; esac
}

direction ()
{
    case "$1" in rand-read|seq-read) echo read ;; *) echo write ;; esac
}

# Sessions: the workloads measured on one server start.  The two read
# workloads read the same half-written overlay, which reads leave as it
# was, so one preparation serves both.
sessions=()
for w in ${workloads//,/ }; do
    case "$w" in
        rand-read|seq-read)
            case " ${sessions[*]:-} " in
                *" reads "*) ;;
                *) sessions+=(reads) ;;
            esac ;;
        *) sessions+=("$w") ;;
    esac
done
session_workloads ()
{
    local w
    if [ "$1" = reads ]; then
        for w in ${workloads//,/ }; do
            case "$w" in rand-read|seq-read) echo "$w" ;; esac
        done
    else
        echo "$1"
    fi
}

# One line per run: workload server rep value p99_ns disk_bytes syncs flushes
results=$W/results.tsv
: > "$results"
nstarts=0
for se in "${sessions[@]}"; do
    for s in ${servers//,/ }; do nstarts=$(( nstarts + repeat )); done
done
run=0
t0=$(date +%s)
settle
for se in "${sessions[@]}"; do
    sw=$(session_workloads "$se")
    for (( rep = 1; rep <= repeat; rep++ )); do
        case "$se" in
            first-touch) make_first_touch_log "$W/first-touch.$rep.log" "$rep" "$size_bytes" ;;
            first-flush) make_first_touch_log "$W/first-flush.$rep.log" "$rep" "$size_bytes" 16 ;;
            flush) make_flush_log "$W/flush.$rep.log" "$rep" ;;
        esac
        # Servers take turns within a repetition, so that a change in
        # the machine's load falls on all of them alike.
        for s in ${servers//,/ }; do
            run=$(( run + 1 ))
            bench_log "[$run/$nstarts] $(echo $sw) on $s, run $rep"
            if [ "$s" = ceiling ]; then
                if [ "$se" = reads ]; then ceiling_warm; else ceiling_cold; fi
            fi
            start_server "$s"
            prepare "${sw%%$'\n'*}" "$s"
            lines=()
            for w in $sw; do
                out=$W/$w.$s.$rep.json
                syncs=- flushes=-
                if has_flushes "$w" && [ $sync_counter = 1 ]; then
                    count_syncs_start "$(cat "$pidf")" "$W/perf.out"
                    measure "$w" "$out" "$rep"
                    count_syncs_stop
                    syncs=$SYNC_COUNT
                    flushes=$(fio_figure "$out" write syncs)
                else
                    measure "$w" "$out" "$rep"
                fi
                dir=$(direction "$w")
                if [ "$(unit "$w")" = IOPS ]; then
                    value=$(fio_figure "$out" "$dir" iops)
                else
                    value=$(fio_figure "$out" "$dir" mibs)
                fi
                p99=$(fio_figure "$out" "$dir" p99)
                lines+=("$w"$'\t'"$s"$'\t'"$rep"$'\t'"$value"$'\t'"$p99"$'\t'BYTES$'\t'"$syncs"$'\t'"$flushes")
            done
            bytes=$(stop_server "$s")
            for l in "${lines[@]}"; do
                echo "${l/BYTES/$bytes}" >> "$results"
            done
            rm -f "$W"/store.cow "$W"/overlay.qcow2
            settle
        done
    done
done
elapsed=$(( $(date +%s) - t0 ))
load_end=$(loadavg)

# Medians per workload and server:
# workload server value p99_ns disk_bytes syncs_per_flush
summary=$W/summary.tsv
: > "$summary"
col ()
{
    awk -F'\t' -v w="$1" -v s="$2" -v c="$3" '$1 == w && $2 == s && $c != "-" { print $c }' \
        "$results" | median
}
for w in ${workloads//,/ }; do
    for s in ${servers//,/ }; do
        spf=-
        if has_flushes "$w"; then
            spf=$(awk -F'\t' -v w="$w" -v s="$s" '$1 == w && $2 == s && $7 != "-" && $8 > 0 { print $7 / $8 }' \
                      "$results" | median)
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$s" "$(col "$w" "$s" 4)" \
               "$(col "$w" "$s" 5)" "$(col "$w" "$s" 6)" "$spf" >> "$summary"
    done
done
med ()
{
    awk -F'\t' -v w="$1" -v s="$2" '$1 == w && $2 == s { print $3; found = 1 }
        END { if (!found) print "-" }' "$summary"
}

label ()
{
    case "$1" in
        ceiling) echo "file (ceiling)" ;;
        cow) echo "cow filter" ;;
        qcow2) echo "qcow2 (qemu-nbd)" ;;
        snapcow-*) echo "snapcow ${1#snapcow-}" | tr k K ;;
    esac
}

fmt_value ()
{
    awk -v v="$1" 'BEGIN { if (v == "-") print "-";
        else if (v >= 10000) printf "%.1fK\n", v / 1000;
        else printf "%.0f\n", v }'
}
fmt_ms ()
{
    awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else printf "%.2f\n", v / 1e6 }'
}
fmt_bytes ()
{
    if [ "$1" = - ]; then echo -; else numfmt --to=iec --round=nearest --format=%.1f "$1"; fi
}

echo
echo "# snapcow benchmark"
echo
echo "Machine: $(machine_line)."
echo "Load average $load_start at the start, $load_end at the end; $nstarts server starts in ${elapsed} s."
echo "Origin: $size of random data.  Each figure is the median of $repeat run(s);"
echo "timed runs last $runtime s; iodepth $IODEPTH; $cache_note."
echo "Ratios: × ceiling is against nbdkit's file plugin on a copy (no COW);"
echo "× snapcow-16K against snapcow at its default chunk size."
echo "The cow filter's overlay is a deleted temporary file and it ignores"
echo "flush (nothing is synced), so its flush figures are not comparable."
for w in ${workloads//,/ }; do
    u=$(unit "$w")
    echo
    echo "## $(title "$w")"
    echo
    echo "| server | $u | p99 ms | × ceiling | × snapcow-16K | on disk | syncs/flush |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for s in ${servers//,/ }; do
        IFS=$'\t' read -r _ _ v p b spf < <(awk -F'\t' -v w="$w" -v s="$s" \
            '$1 == w && $2 == s' "$summary")
        [ "$spf" = - ] || spf=$(awk -v x="$spf" 'BEGIN { printf "%.2f", x }')
        echo "| $(label "$s") | $(fmt_value "$v") | $(fmt_ms "$p") |" \
             "$(ratio "$v" "$(med "$w" ceiling)") |" \
             "$(ratio "$v" "$(med "$w" snapcow-16k)") | $(fmt_bytes "$b") | $spf |"
    done
done

# The summary: each server's ratio to the ceiling, workload by workload.
echo
echo "## Summary: × ceiling (the ceiling's own figure in its column)"
echo
line="| workload |"
rule="|---|"
for s in ${servers//,/ }; do line="$line $(label "$s") |"; rule="$rule---:|"; done
echo "$line"
echo "$rule"
for w in ${workloads//,/ }; do
    line="| $w ($(unit "$w")) |"
    for s in ${servers//,/ }; do
        if [ "$s" = ceiling ]; then
            line="$line $(fmt_value "$(med "$w" ceiling)") |"
        else
            line="$line $(ratio "$(med "$w" "$s")" "$(med "$w" ceiling)") |"
        fi
    done
    echo "$line"
done

if [ -n "$json" ]; then
    jq -n --rawfile runs "$results" --rawfile summary "$summary" \
       --arg machine "$(machine_line)" --arg load_start "$load_start" \
       --arg load_end "$load_end" --arg size "$size" \
       --argjson size_bytes "$size_bytes" --argjson repeat "$repeat" \
       --argjson runtime "$runtime" --argjson iodepth $IODEPTH \
       --argjson elapsed "$elapsed" --arg cache "$cache_note" \
       --arg workloads "$workloads" \
       --argjson titles "$(for w in ${workloads//,/ }; do
                              jq -n --arg w "$w" --arg t "$(title "$w")" \
                                    --arg u "$(unit "$w")" '{($w): {title: $t, unit: $u}}'
                          done | jq -s add)" '
      def num: if . == "-" or . == "" then null else tonumber end;
      def rows($t): $t | split("\n") | map(select(length > 0) | split("\t"));
      (rows($summary) | map({w: .[0], s: .[1], value: (.[2] | num),
                             p99_ns: (.[3] | num), disk_bytes: (.[4] | num),
                             syncs_per_flush: (.[5] | num)})) as $sum
      | (rows($runs) | map({w: .[0], s: .[1], rep: (.[2] | tonumber),
                            value: (.[3] | num), p99_ns: (.[4] | num),
                            disk_bytes: (.[5] | num), syncs: (.[6] | num),
                            flushes: (.[7] | num)})) as $runs
      | def med($w; $s): ([$sum[] | select(.w == $w and .s == $s) | .value] | first);
        def ratio($a; $b): if $a == null or $b == null or $b == 0 then null
                           else ($a / $b * 100 | round) / 100 end;
      { machine: $machine, load_average: {start: $load_start, end: $load_end},
        origin_size: $size, origin_bytes: $size_bytes, repeat: $repeat,
        runtime_s: $runtime, iodepth: $iodepth, elapsed_s: $elapsed,
        cache: $cache,
        workloads: [ $workloads | split(",")[] as $w
          | { id: $w, title: $titles[$w].title, unit: $titles[$w].unit,
              servers: [ $sum[] | select(.w == $w) | . as $x
                | { id: .s, median: .value, p99_ns, disk_bytes, syncs_per_flush,
                    ratio_ceiling: ratio(.value; med($w; "ceiling")),
                    ratio_snapcow_16k: ratio(.value; med($w; "snapcow-16k")),
                    runs: [ $runs[] | select(.w == $w and .s == $x.s)
                            | del(.w, .s) ] } ] } ] }' > "$json"
    bench_log "figures written to $json"
fi
