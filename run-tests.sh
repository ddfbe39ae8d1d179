#!/bin/bash
# run-tests.sh: install the dependencies, build snapcow from scratch and
# run the whole test suite, in four stages:
#
#   normal     configure --enable-werror; make; make check
#   asan       configure --enable-sanitizers (ASan + UBSan); make check
#   fuzz       make fuzz FUZZ_SECONDS=60 (from the normal build): libFuzzer
#              on the store loader; fails on a crash (fuzz/artifacts/)
#   distcheck  make distcheck (from the normal build)
#
# Each build is out of tree, under build/, recreated on every run; the
# source tree itself is never configured.  Every stage runs even when an
# earlier one failed (except fuzz and distcheck, which need the normal
# build to configure).  A failing stage has its test-suite.log printed.  At the
# end a summary shows each stage's result, time and automake's test
# counts; the exit status is 0 only if every stage passed.
#
# Environment:
#   SNAPCOW_STAGE_TIMEOUT  seconds each stage may take (default 2400), so
#                          a hung test still ends with its logs printed.
set -uo pipefail

# Debian's python3 has the nbd module that nbdsh needs.
export PATH=/usr/bin:$PATH

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
jobs=$(nproc)
stage_timeout=${SNAPCOW_STAGE_TIMEOUT:-2400}

./install-deps.sh || exit 1

if [ -f config.status ]; then
    echo "run-tests.sh: the source tree has been configured in place," \
         "which breaks out-of-tree builds: run 'make distclean' in $top" >&2
    exit 1
fi

echo "run-tests.sh: autoreconf -fi"
mkdir -p m4          # not in git; aclocal warns if it is missing
autoreconf -fi || exit 1

names=()
results=()
times=()
logs=()

# run_stage NAME DIR DESCRIPTION COMMAND...: run COMMAND in DIR, under
# the timeout.
run_stage() {
    local name=$1 dir=$2 desc=$3 start r
    shift 3
    echo
    echo "=== run-tests.sh: $name: $desc (in ${dir#$top/})"
    start=$(date +%s)
    (cd "$dir" && timeout -k 30 "$stage_timeout" "$@")
    r=$?
    names+=("$name")
    times+=($(( $(date +%s) - start )))
    if [ $r -eq 0 ]; then
        results+=(PASS)
    elif [ $r -eq 124 ]; then
        results+=("FAIL (timed out after ${stage_timeout}s)")
    else
        results+=("FAIL (exit $r)")
    fi
    # The newest test-suite.log under DIR is this stage's.
    logs+=("$(find "$dir" -name test-suite.log -newermt "@$start" \
                   -printf '%T@ %p\n' 2>/dev/null |
              sort -n | tail -1 | cut -d' ' -f2-)")
    if [ $r -ne 0 ] && [ -n "${logs[-1]}" ]; then
        echo
        echo "=== run-tests.sh: $name failed; ${logs[-1]#$top/}:"
        cat "${logs[-1]}"
    fi
    return $r
}

# build NAME CONFIGURE-ARGS...: configure, make and make check in build/NAME.
build() {
    local name=$1 dir=$top/build/$1
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    run_stage "$name" "$dir" \
        "configure $* && make -j$jobs && make -j$jobs check" sh -c '
        "$0/configure" "$@" &&
        make -j'"$jobs"' &&
        make -j'"$jobs"' check' "$top" "$@"
}

build normal --enable-werror
build asan --enable-sanitizers
if [ -f build/normal/Makefile ]; then
    run_stage fuzz "$top/build/normal" "make fuzz FUZZ_SECONDS=60" \
        make fuzz FUZZ_SECONDS=60
fi
if [ -f build/normal/Makefile ]; then
    run_stage distcheck "$top/build/normal" "make -j$jobs distcheck" make -j"$jobs" distcheck
fi

echo
echo "=== run-tests.sh: summary"
status=0
for i in "${!names[@]}"; do
    printf '%-10s %5ss  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
    if [ -n "${logs[$i]}" ]; then
        grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' \
            "${logs[$i]}" | sed 's/^/             /'
    fi
    if [ "${names[$i]}" = fuzz ] && [ -f build/normal/fuzz/fuzz.log ]; then
        sed -n 's/^stat::number_of_executed_units: */executions: /p' \
            build/normal/fuzz/fuzz.log | sed 's/^/             /'
    fi
    [ "${results[$i]}" = PASS ] || status=1
done
if [ ${#names[@]} -lt 4 ]; then
    echo "fuzz, distcheck  not run: the normal build did not configure"
    status=1
fi
[ $status -eq 0 ] && echo "run-tests.sh: all stages passed" ||
    echo "run-tests.sh: FAILED"
exit $status
