#!/usr/bin/env bash
# bench/lookup.sh — dealgate's added latency on a live co-sell look-up, and call collapsing.
#
# Builds bench/lookup_bench (RelWithDebInfo) and runs it RUNS times against
# tests/fakes/fake_ace.py answering every call after DELAY ms (see lookup_bench.c for the
# series A-D). Each run prints its own p50/p90/p99; the summary is the median over runs of
# each p50: "added" = client time minus the fake's own time for the same call (request line
# read to answer flushed), and A-B = what dealgate's code costs over one bare libcurl call.
# Targets (issue 4): added p50 < 1 ms; 64 concurrent look-ups of 8 registrations -> at most
# 8 upstream calls per cache TTL.
# Usage: bench/lookup.sh [N] [RUNS] [DELAY]   (defaults 300, 3, 20)
# Env: DG_BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300}
RUNS=${2:-3}
DELAY=${3:-20}
BUILD=${DG_BUILD_DIR:-build}

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target lookup_bench >/dev/null

out=$(mktemp /tmp/dglookup.XXXXXX)
trap 'rm -f "$out"' EXIT
status=0
for r in $(seq 1 "$RUNS"); do
  echo "== run $r/$RUNS"
  if ! DG_SOURCE_DIR="$PWD" "$BUILD/bench/lookup_bench" --n "$N" --delay-ms "$DELAY" | tee -a "$out" | grep -v '^#'; then
    status=1
  fi
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }
field() { grep "^# $1 " "$out" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }

a=$(field A added_p50 | median)
b=$(field B added_p50 | median)
c=$(field C added_p50 | median)
up=$(field A upstream_p50 | median)
ac=$(field A client_p50 | median)
bc=$(field B client_p50 | median)
calls=$(field D calls_per_ttl | sort -n | tail -1)
echo
echo "== summary: medians over $RUNS runs of $N look-ups, upstream answering after ${DELAY} ms"
echo "upstream's own time p50:                 ${up} us"
echo "A. ace backend by_id: client p50 ${ac} us, added p50 ${a} us"
echo "B. bare libcurl:      client p50 ${bc} us, added p50 ${b} us"
echo "   dealgate's code over a bare libcurl call (A-B client p50): $((ac - bc)) us"
echo "C. conn_lookup through the connector set (cache miss): added p50 ${c} us"
echo "D. 64 concurrent look-ups of 8 registrations: at most ${calls} upstream calls per cache TTL (limit 8)"
verdict="PASS"
[ "$a" != "n/a" ] && [ "$a" -lt 1000 ] && [ "$c" -lt 1000 ] || verdict="FAIL"
[ "${calls:-99}" -le 8 ] || verdict="FAIL"
echo "targets (added p50 < 1000 us, <= 8 calls per TTL): $verdict"
[ "$verdict" = PASS ] || status=1
exit $status
