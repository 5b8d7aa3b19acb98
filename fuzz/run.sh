#!/usr/bin/env bash
# fuzz/run.sh — builds dealgate's libFuzzer targets with clang and runs each for a set time.
#
# Usage: fuzz/run.sh [-t SECONDS] [-b BUILD_DIR] [--cc CLANG] [--build-only | --no-build]
#                    [TARGET...]
#   -t SECONDS     per target (default 60; `make fuzz` uses the default, CTest 10)
#   -b BUILD_DIR   the clang build dir (default build-fuzz at the repository root)
#   TARGET         fuzz_event, fuzz_cfg, ... (default: every fuzz/fuzz_*.c)
#
# Each target starts from its committed seed corpus fuzz/corpus/NAME (never written to) and
# the inputs earlier runs found, kept in BUILD_DIR/corpus/NAME; fuzz/dict/NAME.dict is used
# when present. A crash, leak, timeout (10 s for one input) or broken invariant leaves the
# input in BUILD_DIR/artifacts/NAME/ and makes the script exit 1 after the other targets
# ran. One summary line per target: executions, executions per second, coverage, corpus.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
SECS=60
BUILD=$SRC/build-fuzz
CC_BIN=${CC:-clang}
MODE=all
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) SECS=$2; shift 2 ;;
    -b) BUILD=$2; shift 2 ;;
    --cc) CC_BIN=$2; shift 2 ;;
    --build-only) MODE=build; shift ;;
    --no-build) MODE=run; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
case "$CC_BIN" in *clang*) ;; *) CC_BIN=clang ;; esac
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in "$SRC"/fuzz/fuzz_*.c; do TARGETS+=("$(basename "$f" .c)"); done
fi

if [ "$MODE" != run ]; then
  # One configure/build at a time per build dir (CTest may start several of us).
  mkdir -p "$BUILD"
  exec 9>"$BUILD/.lock"
  flock 9
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CC=$CC_BIN cmake -S "$SRC" -B "$BUILD" -DDG_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$BUILD" -j"${JOBS:-2}" --target "${TARGETS[@]}" >"$BUILD/build.log" 2>&1 || {
    tail -40 "$BUILD/build.log"; echo "fuzz: build failed (full log: $BUILD/build.log)"; exit 1; }
  flock -u 9
  [ "$MODE" = build ] && { echo "fuzz: built ${#TARGETS[@]} targets in $BUILD"; exit 0; }
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for t in "${TARGETS[@]}"; do
  bin=$BUILD/fuzz/$t
  [ -x "$bin" ] || { echo "fuzz: $bin is not built"; failed=1; continue; }
  seeds=$SRC/fuzz/corpus/$t
  work=$BUILD/corpus/$t
  arts=$BUILD/artifacts/$t
  mkdir -p "$work" "$arts"
  args=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$arts/")
  [ -f "$SRC/fuzz/dict/$t.dict" ] && args+=(-dict="$SRC/fuzz/dict/$t.dict")
  dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  log=$BUILD/$t.log
  if "$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1; then status=ok; else status=FAILED; failed=1; fi
  execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(grep -aEo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  corp=$(grep -Eo 'corp: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  printf '%-22s %-6s %10s execs  %7s exec/s  cov %6s  corpus %5s  (%ss)\n' \
    "$t" "$status" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${corp:-?}" "$SECS"
  if [ "$status" = FAILED ]; then
    grep -E 'ERROR|SUMMARY|invariant|Test unit written|==[0-9]+==' "$log" | head -20
    echo "  full log: $log"
  fi
done
exit $failed
