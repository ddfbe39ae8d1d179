#!/usr/bin/env bash
# bench/scale.sh: what opening a big store costs, for 10^4 to 10^7
# records with random and with consecutive old chunks (issue 11, "Ten
# million records").  Run by `make bench-scale`, which builds the two
# helpers first; never part of `make check`.
#
# For each store (made by make-big-store, 4K chunks, sparse):
#   open     cow_store_open as the server calls it, timed by scale-open
#            (the median of 3 runs, page cache warm: wall time, and CPU
#            time, which a busy machine disturbs less), and the memory
#            the process holds after it, per record; peak is the most it
#            held during the open.
#   info     `snapcow info STORE`, wall and CPU time and maximum
#            resident set
#   check    `snapcow check --origin=ORIGIN STORE`, the same
# Wall times include reading the store, from the page cache unless
# something drops it meanwhile (bench/run.sh does, between its runs):
# on a shared machine, TMPDIR=/dev/shm keeps the stores in memory, so
# that the figures are the loader's and not the disk's.
# The tools' memory per record is their maximum resident set less that
# of the same command on a store with no records.
#
# Environment: SCALE_SIZES (default "10000 100000 1000000 10000000"),
# SCALE_RUN (run length of the consecutive stores, default 1000),
# TMPDIR (where the stores go; about 16 bytes of disk per record).
set -e

bindir=${BENCH_BINDIR:-.}
snapcow=${SNAPCOW:-../tool/snapcow}
sizes=${SCALE_SIZES:-"10000 100000 1000000 10000000"}
run=${SCALE_RUN:-1000}
make_store="$bindir/make-big-store"
open_store="$bindir/scale-open"
gnutime=/usr/bin/time

for p in "$make_store" "$open_store" "$snapcow" "$gnutime"; do
  if [ ! -x "$p" ]; then
    echo "$0: $p is missing (run it through make bench-scale)" >&2
    exit 1
  fi
done

dir=$(mktemp -d "${TMPDIR:-/var/tmp}/snapcow-scale.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# Wall seconds, CPU seconds (user and system) and maximum resident set
# in bytes of a command (stdout discarded) into m_secs, m_cpu and
# m_bytes; the command must succeed.
measure ()
{
  local kib user sys
  if ! "$gnutime" -f '%e %U %S %M' -o "$dir/time" "$@" > /dev/null; then
    echo "$0: failed: $*" >&2
    exit 1
  fi
  read -r m_secs user sys kib < "$dir/time"
  m_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  m_bytes=$((kib * 1024))
}

per_record ()
{
  awk -v b="$1" -v n="$2" 'BEGIN { printf "%.1f", n ? b / n : 0 }'
}

median3 ()
{
  printf '%s\n' "$@" | sort -n | sed -n 2p
}

# The tools' own footprint, with no records to load.
"$make_store" 0 "$dir/s" "$dir/o" > /dev/null
measure "$snapcow" info "$dir/s"
info_base=$m_bytes
measure "$snapcow" check --origin="$dir/o" "$dir/s"
check_base=$m_bytes

printf '| records | old chunks | open (s) | open CPU (s) | held (B/record) | peak (B/record) | info (s) | info CPU (s) | info (B/record) | check (s) | check CPU (s) | check (B/record) |\n'
printf '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for n in $sizes; do
  for kind in random consecutive; do
    "$make_store" --"$kind" --run="$run" "$n" "$dir/s" "$dir/o" > /dev/null
    times=() cpus=()
    for i in 1 2 3; do
      line=$("$open_store" "$dir/s" "$dir/o")
      eval "${line// /; }"  # records= open_s= cpu_s= held_bytes= peak_bytes=
      if [ "$records" != "$n" ]; then
        echo "$0: scale-open loaded $records records, not $n" >&2
        exit 1
      fi
      times+=("$open_s") cpus+=("$cpu_s")
    done
    measure "$snapcow" info "$dir/s"
    info_s=$m_secs info_cpu=$m_cpu info_rss=$m_bytes
    measure "$snapcow" check --origin="$dir/o" "$dir/s"
    check_s=$m_secs check_cpu=$m_cpu check_rss=$m_bytes
    label=$kind
    [ "$kind" = consecutive ] && label="runs of $run"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
           "$n" "$label" "$(median3 "${times[@]}")" "$(median3 "${cpus[@]}")" \
           "$(per_record "$held_bytes" "$n")" \
           "$(per_record "$peak_bytes" "$n")" \
           "$info_s" "$info_cpu" \
           "$(per_record $((info_rss - info_base)) "$n")" \
           "$check_s" "$check_cpu" \
           "$(per_record $((check_rss - check_base)) "$n")"
  done
done
