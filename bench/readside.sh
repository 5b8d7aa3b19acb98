#!/usr/bin/env bash
# bench/readside.sh — the read side over a big decision log: GET /ui and GET /v1/kpis (and a
# few variants) against a log of N decisions (default 1,000,000), answered by the real
# service. The log is built once by bench/build_log (through dlog_append, so it holds exactly
# what the service writes: decisions, per-deal state, per-day counters, KPI state) and kept in
# DIR for the next run. Each endpoint is requested WARM times, then REQS times one after the
# other (curl, keep-alive off, time to the last byte); prints the median and p90 in ms and
# checks the target: /ui and /v1/kpis under 200 ms at p50.
# Usage: bench/readside.sh [N] [REQS]    (defaults 1000000 and 21)
# Env:   DG_BENCH_DIR (default /tmp/dealgate-readside-N), BUILD (default build), WARM (3)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-1000000}
REQS=${2:-21}
WARM=${WARM:-3}
BUILD=${BUILD:-build}
DIR=${DG_BENCH_DIR:-/tmp/dealgate-readside-$N}
command -v curl >/dev/null && command -v sqlite3 >/dev/null || scripts/deps.sh test
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_WERROR=ON >/dev/null
cmake --build "$BUILD" -j2 --target dealgate build_log >/dev/null

mkdir -p "$DIR"
DB="$DIR/var/dealgate.db"
have=0
[ -f "$DB" ] && have=$(sqlite3 "$DB" "SELECT count(*) FROM decisions" 2>/dev/null || echo 0)
if [ "$have" -lt "$N" ]; then
  rm -rf "$DIR/var"
  echo "building a log of $N decisions in $DIR/var (once; kept for the next run)..."
  "$BUILD/bench/build_log" "$DIR/var" "$N" 64 365 2> >(grep -v '^build_log: [0-9]* decisions$' >&2)
fi
have=$(sqlite3 "$DB" "SELECT count(*) FROM decisions")
deals=$(sqlite3 "$DB" "SELECT count(*) FROM deals")
blocked=$(sqlite3 "$DB" "SELECT count(*) FROM deals WHERE blocked = 1")
size=$(du -sh "$DIR/var" | cut -f1)
echo "log: $have decisions, $deals deals, $blocked blocked now, $size on disk"

PORT=$(bench_free_port)
READER=reader-token-0123456789
COMP=comp-token-0123456789
cat > "$DIR/bench.ini" <<INI
[server]
listen = 127.0.0.1:$PORT
threads = 8
data_dir = $DIR/var
[auth]
webhook_tokens = webhook-token-0123456789
reader_tokens = $READER, $COMP
comp_reader_tokens = $COMP
$(bench_pipeline_ini)
accept.azure = Accepted, Won
[cloud:aws]
name = AWS ACE
connector = none
[cloud:azure]
name = Microsoft Partner Center
connector = none
INI
"$BUILD/dealgate" serve -c "$DIR/bench.ini" 2>"$DIR/dealgate.log" &
DG_PID=$!
trap 'kill $DG_PID 2>/dev/null || true' EXIT
bench_wait_healthz "$PORT" 200

year_ago=$(date -u -d '-365 days' +%F)
today=$(date -u +%F)
measure() { # label token path
  local label=$1 token=$2 path=$3 url="http://127.0.0.1:$PORT$3" t code
  for _ in $(seq "$WARM"); do curl -fs -o /dev/null -H "Authorization: Bearer $token" "$url"; done
  for _ in $(seq "$REQS"); do
    read -r code t < <(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
      -H "Authorization: Bearer $token" -H 'Connection: close' "$url")
    [ "$code" = 200 ] || { echo "$label: HTTP $code" >&2; exit 1; }
    echo "$t"
  done | sort -g | awk -v label="$label" -v path="$path" '{a[NR]=$1*1000}
    END {p50 = NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; p90 = a[int(NR*0.9+0.999)];
         printf "%-34s p50 %7.1f ms   p90 %7.1f ms   %s\n", label, p50, p90, path}'
}
echo "median of $REQS sequential requests each (after $WARM warm-up):"
results=$(
  measure "/v1/kpis (last 30 days)" $READER "/v1/kpis"
  measure "/v1/kpis (365 days)" $READER "/v1/kpis?since=$year_ago&until=$today"
  measure "/v1/kpis (365 days, cloud=aws)" $READER "/v1/kpis?since=$year_ago&until=$today&cloud=aws"
  measure "/v1/kpis (365 days, comp token)" $COMP "/v1/kpis?since=$year_ago&until=$today"
  measure "/ui" $READER "/ui"
  measure "/ui (comp token)" $COMP "/ui"
  measure "/ui?owner=" $READER "/ui?owner=rep007%40example.com"
  measure "/ui?cloud=azure&reason=" $READER "/ui?cloud=azure&reason=registration_not_accepted"
  measure "/ui?since= (365-day KPI tiles)" $READER "/ui?since=$year_ago"
  measure "/ui/deal?id=" $READER "/ui/deal?id=006B00000001234"
  measure "/metrics" $READER "/metrics"
)
echo "$results"
slow=$(echo "$results" | awk '/^\/(ui|v1\/kpis)/ && match($0, /p50 +[0-9.]+/) {
  if (substr($0, RSTART + 4, RLENGTH - 4) + 0 >= 200) print }')
if [ -n "$slow" ]; then
  echo "FAIL: over 200 ms at p50:"; echo "$slow"; exit 1
fi
echo "OK: /ui and /v1/kpis under 200 ms at p50 over $have decisions"
