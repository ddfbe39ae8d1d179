#!/bin/bash
# bench/origin.sh: what origin mode and the offline merge cost (issue 10,
# "Speed").
#
#   bench/origin.sh [--quick] [--repeat N] [--json FILE] [--size SIZE]
#                   [--chunk-size SIZE] [--dir DIR] [--part origin|merge]
#
# First overwrites of origin chunks, with 0 snapshots (nbdkit's file
# plugin on the origin: the same writes with nothing to copy), 1 and 4
# (snapcow mode=origin with one and four cow=), and 1 again with
# origin-writes=synchronous (the kernel's timing), 4K random and 1M
# sequential; and `snapcow merge` against dd copying the same number of
# bytes from the store into a copy of the origin.  Medians of the
# repetitions; servers and copies take turns within a repetition.  The
# origin is 512M by default: 1M writes over four snapshots write four
# times the origin into the stores, which took half of an 8-minute run
# at 1G.  Never part of `make check`.
set -euo pipefail

BENCH_NAME=origin.sh
bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"

usage ()
{
    cat <<EOF
usage: bench/origin.sh [--quick] [--repeat N] [--json FILE] [--size SIZE]
                       [--chunk-size SIZE] [--dir DIR] [--part origin|merge]

  --quick           a 256 MiB origin, no repeat
  --repeat N        repetitions; the median is reported (default 3)
  --json FILE       write every figure to FILE
  --size SIZE       origin size (default 512M; 256M with --quick)
  --chunk-size SIZE chunk size of every store (default 16K)
  --dir DIR         where the files go (default \$TMPDIR or /var/tmp)
  --part PART       only the origin writes, or only the merge (default both)

Environment: SNAPCOW_PLUGIN and SNAPCOW_TOOL, the plugin and the
snapcow command (default: the installed ones; make bench-origin sets
the build's).
EOF
}

quick=0 repeat= json= size= chunk=16K parent= part=all
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --repeat) repeat=${2:?--repeat needs a number}; shift ;;
        --repeat=*) repeat=${1#*=} ;;
        --json) json=${2:?--json needs a file}; shift ;;
        --json=*) json=${1#*=} ;;
        --size) size=${2:?--size needs a size}; shift ;;
        --size=*) size=${1#*=} ;;
        --chunk-size) chunk=${2:?--chunk-size needs a size}; shift ;;
        --chunk-size=*) chunk=${1#*=} ;;
        --dir) parent=${2:?--dir needs a directory}; shift ;;
        --dir=*) parent=${1#*=} ;;
        --part) part=${2:?--part needs origin or merge}; shift ;;
        --part=*) part=${1#*=} ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 1 ;;
    esac
    shift
done
if [ $quick = 1 ]; then
    : "${repeat:=1}" "${size:=256M}"
else
    : "${repeat:=3}" "${size:=512M}"
fi
case "$part" in
    all|origin|merge) ;;
    *) bench_die "--part: origin or merge, not $part" ;;
esac
[[ $repeat =~ ^[1-9][0-9]*$ ]] || bench_die "--repeat: not a positive number: $repeat"
size_bytes=$(numfmt --from=iec "$size" 2>/dev/null) ||
    bench_die "--size: not a size: $size"
(( size_bytes >= 64 * 1048576 && size_bytes % 1048576 == 0 )) ||
    bench_die "--size: at least 64M, a whole number of MiB"

need nbdkit nbdkit
need_fio_nbd
need jq jq
need numfmt coreutils
need dd coreutils
need md5sum coreutils
[ "$part" = origin ] || need nbdcopy libnbd-bin
need_plugin
command -v "$SNAPCOW_TOOL" >/dev/null 2>&1 ||
    bench_die "the snapcow command '$SNAPCOW_TOOL' is not found: run" \
              "'make bench-origin' in a build directory, install it, or set SNAPCOW_TOOL"
# Origin mode and merge are refused with a clear line by a plugin or a
# tool that predates them.
[ "$part" = origin ] || "$SNAPCOW_TOOL" merge --help >/dev/null 2>&1 ||
    bench_die "'$SNAPCOW_TOOL merge --help' fails: this snapcow has no merge command"
sync_counter=0
have_sync_counter && sync_counter=1

BENCH_WORK=$(bench_workdir "$parent")
W=$BENCH_WORK
cleanup ()
{
    local p
    set +e
    for p in "$W"/*.pid; do [ -e "$p" ] && stop_pid "$p"; done
    unpin_files
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT QUIT TERM

IODEPTH=16
chunk_size=$(numfmt --from=iec "$chunk")
origin=$W/origin.img
sock=$W/server.sock
pidf=$W/server.pid

bench_log "work directory $W; making a $size origin of random data"
head -c "$size_bytes" /dev/urandom > "$origin"
sync
pin_files "$origin"
load_start=$(loadavg)

# The origin is written in place by every run; its contents do not
# change what a write costs, so one file serves all runs, and only the
# stores are new each time.
# start_config N: N snapshots; "1s" is one snapshot with
# origin-writes=synchronous (the kernel's timing: each origin write
# waits for its copy's commit), for comparison with the default.
start_config ()
{
    local n=${1%s} i cows=() writes=deferred
    [ "$1" = "$n" ] || writes=synchronous
    rm -f "$W"/snap*.cow
    if [ "$n" = 0 ]; then
        start_nbdkit "$sock" "$pidf" file file="$origin"
        return
    fi
    for (( i = 1; i <= n; i++ )); do cows+=(cow="$W/snap$i.cow"); done
    start_nbdkit "$sock" "$pidf" "$SNAPCOW_PLUGIN" "$origin" mode=origin \
                 "${cows[@]}" chunk-size="$chunk" origin-writes=$writes
}

# Stops the server; prints the stores' bytes on disk.
stop_config ()
{
    stop_pid "$pidf"
    local b=0 f
    for f in "$W"/snap*.cow; do
        [ -e "$f" ] && b=$(( b + $(disk_bytes "$f") ))
    done
    echo "$b"
}

# Part 1: first overwrites of the origin.
# One line per run: workload snaps rep value p99_ns store_bytes syncs writes
results=$W/origin.tsv
: > "$results"
t0=$(date +%s)
settle
origin_workloads="rand4k seq1m"
[ "$part" = merge ] && origin_workloads=
for w in $origin_workloads; do
    for (( rep = 1; rep <= repeat; rep++ )); do
        [ $w = rand4k ] && make_first_touch_log "$W/ft.$rep.log" "$rep" "$size_bytes"
        for n in 0 1 4 1s; do
            bench_log "$w, $n snapshot(s), run $rep"
            start_config "$n"
            out=$W/$w.$n.$rep.json
            [ $sync_counter = 1 ] && count_syncs_start "$(cat "$pidf")" "$W/perf.out"
            case $w in
                rand4k) run_fio "$out" "$sock" --iodepth=$IODEPTH \
                                --read_iolog="$W/ft.$rep.log" --replay_no_stall=1 ;;
                seq1m) run_fio "$out" "$sock" --iodepth=$IODEPTH --rw=write --bs=1M ;;
            esac
            syncs=-
            if [ $sync_counter = 1 ]; then
                count_syncs_stop
                syncs=$SYNC_COUNT
            fi
            if [ $w = rand4k ]; then
                value=$(fio_figure "$out" write iops)
            else
                value=$(fio_figure "$out" write mibs)
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$n" "$rep" "$value" \
                   "$(fio_figure "$out" write p99)" "$(stop_config)" "$syncs" \
                   "$(fio_figure "$out" write ios)" >> "$results"
            settle
        done
    done
done
unpin_files
DROP_UNPINNED=1

# Part 2: the offline merge.  A store is filled through a snapshot-mode
# server (sequentially, 1M writes over the whole disk, so that its
# records run on in old and new chunks and the merge can copy runs; or
# whole chunks of a random quarter of the disk, in random order, so
# that few records run on), then, from a cold cache both times, dd
# copies as many bytes as the store holds chunks from the store into a
# copy of the origin (sequential 1M blocks over blocks already
# allocated, as the origin's are, then fdatasync; not into the origin
# itself, which must stay as the store expects), and `snapcow merge`
# merges it.
# The snapshot's view is read before the merge (nbdcopy) and the origin
# after it: a merge that did not put the snapshot into the origin stops
# the benchmark instead of looking fast.
merges=$W/merge.tsv
: > "$merges"
fill_store ()
{
    rm -f "$W/merge.cow"
    start_nbdkit "$sock" "$pidf" "$SNAPCOW_PLUGIN" "$origin" \
                 cow="$W/merge.cow" chunk-size="$chunk"
    case $1 in
        sequential) run_fio "$W/fill.json" "$sock" --iodepth=4 --rw=write \
                            --bs=1M --end_fsync=1 ;;
        random) run_fio "$W/fill.json" "$sock" --iodepth=$IODEPTH --rw=randwrite \
                        --bs="$chunk" --number_ios=$(( size_bytes / chunk_size / 4 )) \
                        --randseed="$2" --end_fsync=1 ;;
    esac
    nbdcopy "$(nbd_uri "$sock")" - | md5sum | cut -d' ' -f1 > "$W/view.md5" ||
        { tail -5 "$W/server.log" >&2; bench_die "nbdcopy could not read the snapshot"; }
    stop_pid "$pidf"
}

# The bytes the chunks of the store hold: records x chunk size, as
# snapcow info prints them.
chunk_bytes ()
{
    "$SNAPCOW_TOOL" info "$W/merge.cow" |
        awk '/^records:/ { r = $2 } /^chunk_size:/ { c = $2 } END { print r * c }'
}

merge_kinds="sequential random"
[ "$part" = origin ] && merge_kinds=
[ -z "$merge_kinds" ] || cp "$origin" "$W/dd-target.img"
for kind in $merge_kinds; do
    for (( rep = 1; rep <= repeat; rep++ )); do
        bench_log "merge of a $kind store, run $rep"
        fill_store "$kind" "$rep"
        bytes=$(chunk_bytes)
        (( bytes > 0 )) || bench_die "the $kind store holds no chunk after its fill"
        settle
        t=$(date +%s.%N)
        dd if="$W/merge.cow" of="$W/dd-target.img" bs=1M count=$(( bytes / 1048576 )) \
           conv=notrunc,fdatasync status=none
        dd_s=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
        settle
        t=$(date +%s.%N)
        "$SNAPCOW_TOOL" merge --quiet "$origin" "$W/merge.cow" ||
            bench_die "snapcow merge failed"
        merge_s=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
        left=$(chunk_bytes)
        [ "$left" = 0 ] || bench_die "the store still holds $left bytes of chunks after the merge"
        [ "$(md5sum < "$origin" | cut -d' ' -f1)" = "$(cat "$W/view.md5")" ] ||
            bench_die "after the merge the origin is not the snapshot's view"
        printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$rep" "$bytes" "$dd_s" "$merge_s" >> "$merges"
        settle
    done
done
elapsed=$(( $(date +%s) - t0 ))
load_end=$(loadavg)

# Report.
med ()
{
    awk -F'\t' -v w="$1" -v n="$2" -v c="$3" '$1 == w && $2 == n && $c != "-" { print $c }' \
        "$results" | median
}
fmt_stores ()
{
    if [ "$1" = - ] || [ "$1" = 0 ]; then echo -; else numfmt --to=iec --round=nearest --format=%.1f "$1"; fi
}
mib ()
{
    awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f\n", b / 1048576 / s }'
}

echo
echo "# snapcow origin mode and merge"
echo
echo "Machine: $(machine_line)."
echo "Load average $load_start at the start, $load_end at the end; ${elapsed} s."
echo "Origin: $size of random data; stores of $chunk chunks; the median of $repeat run(s)."
verdicts=()
if [ -n "$origin_workloads" ]; then
echo
echo "## First overwrites of the origin (iodepth $IODEPTH)"
echo
echo "4K random: one 4K write in each 64K block of the origin, in random order,"
echo "so every write copies a chunk into every store.  1M sequential: the"
echo "whole origin once.  0 snapshots is nbdkit's file plugin on the origin."
echo
echo "| workload | snapshots | IOPS or MiB/s | p99 ms | ratio | target | stores on disk | syncs per write |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for w in $origin_workloads; do
    v0=$(med $w 0 4) v1=$(med $w 1 4) v4=$(med $w 4 4)
    for n in 0 1 4 1s; do
        v=$(med $w $n 4)
        case $n in
            0) r=- t= target=- ;;
            1) r=$(ratio "$v1" "$v0") t=0.5 target="≥ 0.5 × 0 snapshots" ;;
            4) r=$(ratio "$v4" "$v1") t=0.7 target="≥ 0.7 × 1 snapshot" ;;
            1s) r=$(ratio "$v" "$v0") t= target="none: the kernel's timing, × 0 snapshots" ;;
        esac
        if [ -n "$t" ]; then
            verdicts+=("$w, $n snapshot(s): $r, target $t: $(awk -v r="$r" -v t="$t" \
                'BEGIN { print (r != "-" && r >= t) ? "met" : "MISSED" }')")
        fi
        spw=$(awk -F'\t' -v w=$w -v n=$n '$1 == w && $2 == n && $7 != "-" && $8 > 0 { print $7 / $8 }' \
                  "$results" | median)
        [ "$spw" = - ] || spw=$(awk -v x="$spw" 'BEGIN { printf "%.3f", x }')
        label=$([ $w = rand4k ] && echo "4K random" || echo "1M sequential")
        unit=$([ $w = rand4k ] && echo IOPS || echo MiB/s)
        fmtv=$(awk -v v="$v" -v u="$unit" 'BEGIN { if (u == "IOPS" && v >= 10000) printf "%.1fK IOPS", v / 1000;
                                                   else printf "%.0f %s", v, u }')
        echo "| $label | ${n/1s/1, synchronous} | $fmtv | $(awk -v p="$(med $w $n 5)" 'BEGIN { printf "%.2f", p / 1e6 }') |" \
             "$r | ${target} | $(fmt_stores "$(med $w $n 6)") | $spw |"
    done
done
fi

if [ -n "$merge_kinds" ]; then
echo
echo "## Offline merge against dd (the same bytes, store to origin)"
echo
echo "| store | chunks merged | dd MiB/s | merge MiB/s | merge / dd | target |"
echo "|---|---:|---:|---:|---:|---:|"
for kind in $merge_kinds; do
    b=$(awk -F'\t' -v k=$kind '$1 == k { print $3 }' "$merges" | median)
    d=$(awk -F'\t' -v k=$kind '$1 == k { print $4 }' "$merges" | median)
    m=$(awk -F'\t' -v k=$kind '$1 == k { print $5 }' "$merges" | median)
    r=$(ratio "$d" "$m")
    echo "| $kind | $(numfmt --to=iec --round=nearest --format=%.1f "$b") | $(mib "$b" "$d") | $(mib "$b" "$m") | $r | ≥ 0.8 |"
    verdicts+=("merge of a $kind store: $r × dd, target 0.8: $(awk -v r="$r" 'BEGIN { print (r != "-" && r >= 0.8) ? "met" : "MISSED" }')")
done
fi
echo
for v in "${verdicts[@]}"; do echo "- $v"; done

if [ -n "$json" ]; then
    jq -n --rawfile runs "$results" --rawfile merges "$merges" \
       --arg machine "$(machine_line)" --arg load_start "$load_start" \
       --arg load_end "$load_end" --arg size "$size" --arg chunk "$chunk" \
       --argjson repeat "$repeat" --argjson elapsed "$elapsed" '
      def num: if . == "-" or . == "" then null else tonumber end;
      def rows($t): $t | split("\n") | map(select(length > 0) | split("\t"));
      def div($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
      def median: sort | if length == 0 then null
                         elif length % 2 == 1 then .[length / 2 | floor]
                         else (.[length / 2 - 1] + .[length / 2]) / 2 end;
      (rows($runs) | map({workload: .[0], snapshots: (.[1] | tonumber? // .),
                          rep: (.[2] | tonumber), value: (.[3] | num),
                          p99_ns: (.[4] | num), store_bytes: (.[5] | num),
                          syncs: (.[6] | num), writes: (.[7] | num)})) as $r
      | (rows($merges) | map({store: .[0], rep: (.[1] | tonumber),
                              bytes: (.[2] | num), dd_s: (.[3] | num),
                              merge_s: (.[4] | num)})) as $m
      | def med($w; $n): [$r[] | select(.workload == $w and .snapshots == $n) | .value] | median;
      { machine: $machine, load_average: {start: $load_start, end: $load_end},
        origin_size: $size, chunk_size: $chunk, repeat: $repeat, elapsed_s: $elapsed,
        origin_writes: [ $r | map(.workload) | unique[] as $w
          | { workload: $w, unit: (if $w == "rand4k" then "IOPS" else "MiB/s" end),
              median: { "0": med($w; 0), "1": med($w; 1), "4": med($w; 4),
                        "1 synchronous": med($w; "1s") },
              ratio_1_to_0: div(med($w; 1); med($w; 0)),
              ratio_4_to_1: div(med($w; 4); med($w; 1)),
              runs: [ $r[] | select(.workload == $w) ] } ],
        merge: [ $m | map(.store) | unique[] as $k
          | [ $m[] | select(.store == $k) ] as $x
          | { store: $k, bytes: ([$x[].bytes] | median),
              dd_s: ([$x[].dd_s] | median), merge_s: ([$x[].merge_s] | median),
              ratio_merge_to_dd: div([$x[].dd_s] | median; [$x[].merge_s] | median),
              runs: $x } ] }' > "$json"
    bench_log "figures written to $json"
fi
