#!/usr/bin/env bash
# bench/soak.sh — dealgate under wrk load for a while, with the co-sell upstream failing on
# purpose. The real service (release build, durable SQLite log, bearer auth) verifies every
# deal against tests/fakes/fake_ace.py, which answers 30 % of the registrations with a
# fault: HTTP 500 InternalServerException, malformed JSON, a 3 s delay (past the 1 s
# decision budget) or a 5 MiB answer (over the response cap), in equal parts; look-ups are
# cached for 2 s only, so the faults keep coming. 5 % of the requests are cut-short JSON.
#
# Prints: requests and rate, answers by status, transport errors, p50/p99/max latency, RSS
# after a warm-up and at the end (growth), upstream calls and faults injected, and requests
# lost: answered 200 but missing from the decision log (must be 0).
# Usage: bench/soak.sh [SECONDS] [CONNECTIONS]   (defaults 60 and 64; BUILD_DIR=build)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${1:-60}
CONNS=${2:-64}
BUILD_DIR=${BUILD_DIR:-build}
IDS=1000
command -v wrk >/dev/null || scripts/deps.sh test
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j2 --target dealgate >/dev/null

work=$(mktemp -d /tmp/dgsoak.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# the fake ACE with IDS registrations O3000000.. (deal BENCH-i), 30 % of them faulty
export DG_TESTDATA=${DG_TESTDATA:-$PWD/../shared/testdata}
python3 tests/fakes/fake_ace.py --generate "$IDS" > "$work/ace.port" 2>"$work/ace.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/ace.port" ] && break; sleep 0.1; done
ACE=$(head -1 "$work/ace.port")

# inject_faults: makes 30 % of the fake ACE's registrations faulty (its /__behave), one of
# the four kinds in turn; again after each /__reset.
inject_faults() {
  python3 - "$ACE" "$IDS" <<'PY'
import json, sys, urllib.request
port, ids = int(sys.argv[1]), int(sys.argv[2])
kinds = [{"status": 500, "error_type": "InternalServerException"}, {"malformed": True},
         {"delay_ms": 3000}, {"huge": True}]
for i in range(ids):
    if i % 10 < 3:  # 30 %: one of the four kinds, in turn
        b = dict(kinds[(i // 10 + i) % len(kinds)], key="O%d" % (3000000 + i))
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:%d/__behave" % port, json.dumps(b).encode(),
            {"Content-Type": "application/json"})).read()
PY
}
inject_faults

PORT=$(bench_free_port)
export DG_BENCH_TOKEN=soak-token-0123456789abcdef
cat > "$work/soak.ini" <<INI
[server]
listen = 127.0.0.1:$PORT
threads = 64
max_body = 64k
request_timeout_ms = 5000
decision_budget_ms = 1000
data_dir = $work/var
[auth]
webhook_tokens = \${DG_BENCH_TOKEN}
reader_tokens = reader-token-0123456789
$(bench_pipeline_ini)
on_lookup_error = block
[cloud:aws]
name = AWS ACE
connector = ace
endpoint = http://127.0.0.1:$ACE
access_key_id = AKIDEXAMPLE
secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
timeout_ms = 1500
cache_ttl_s = 2
negative_cache_ttl_s = 1
INI
"./$BUILD_DIR/dealgate" serve -c "$work/soak.ini" 2>"$work/dealgate.log" &
DG_PID=$!
pids+=($DG_PID)
bench_wait_healthz "$PORT"

run_wrk() { # seconds phase
  DG_SOAK_IDS=$IDS DG_SOAK_PHASE=$2 wrk -t2 -c"$CONNS" -d"${1}s" --timeout 10s \
    -s bench/soak.lua "http://127.0.0.1:$PORT" | awk '/^(status|requests|duration_us|errors_[a-z]+|p50_us|p99_us|max_us) /'
}
echo "warm-up: 5 s"
run_wrk 5 w >/dev/null
curl -fs -X POST "http://127.0.0.1:$ACE/__reset" -d '{}' >/dev/null || true
inject_faults
RSS0=$(rss_mb $DG_PID)
echo "soak: ${DUR} s, $CONNS connections, 2 wrk threads, 64 server threads"
run_wrk "$DUR" s > "$work/wrk.out"
RSS1=$(rss_mb $DG_PID)
HWM=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$DG_PID/status")
sleep 2 # look-ups past the budget finish in the background; the writer commits
curl -fs "http://127.0.0.1:$ACE/__calls" > "$work/calls.json"
ROWS=$(sqlite3 "$work/var/dealgate.db" "select count(*) from decisions where event_id like 's-%'")
alive=yes
kill -0 $DG_PID 2>/dev/null || alive=no

python3 - "$work/wrk.out" "$work/calls.json" "$IDS" "$ROWS" "$RSS0" "$RSS1" "$HWM" "$DUR" "$alive" \
  "$work/dealgate.log" <<'PY'
import json, sys
out, calls, ids, rows, rss0, rss1, hwm, dur, alive, dglog = sys.argv[1:]
v, st = {}, {}
for line in open(out):
    k, *rest = line.split()
    if k == "status":
        st[int(rest[0])] = int(rest[1])
    else:
        v[k] = int(rest[0])
c = json.load(open(calls))
ids = int(ids)
faulty = {"O%d" % (3000000 + i) for i in range(ids) if i % 10 < 3}
upstream = c.get("GetOpportunity", 0)
faults = sum(n for k, n in c.items() if k.startswith("GetOpportunity:") and k[15:] in faulty)
n = v["requests"]
answered = sum(st.values())
print("requests:        %d in %s s (%.0f/s), %d answered" % (n, dur, n / (v["duration_us"] / 1e6), answered))
for code in sorted(st):
    print("  HTTP %d:       %8d  %6.2f %%" % (code, st[code], 100.0 * st[code] / max(answered, 1)))
print("transport errors: connect %d, read %d, write %d, timeout %d" % (
    v["errors_connect"], v["errors_read"], v["errors_write"], v["errors_timeout"]))
print("latency:         p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
    v["p50_us"] / 1e3, v["p99_us"] / 1e3, v["max_us"] / 1e3))
ms = []  # the service's own time per request, from its access log (soak phase only)
for line in open(dglog, errors="replace"):
    if line.startswith('{"ts"') and '"event":"request"' in line:
        try:
            ms.append(json.loads(line)["ms"])
        except (ValueError, KeyError):
            pass
ms = sorted(ms[-answered:]) if answered else []
if ms:
    print("in the service:  p50 %.1f ms, p99 %.1f ms, max %.1f ms (access log)" % (
        ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))], ms[-1]))
print("RSS:             %s MB after warm-up, %s MB at the end (%+.1f MB), peak %s MB" % (
    rss0, rss1, float(rss1) - float(rss0), hwm))
print("upstream:        %d look-ups reached the fake ACE, %d faults injected" % (upstream, faults))
ok = st.get(200, 0)
lost = max(0, ok - int(rows))
print("decision log:    %s rows for %d answers 200: %d lost" % (rows, ok, lost))
print("service alive:   %s" % alive)
bad5 = sum(n for code, n in st.items() if code >= 500)
sys.exit(1 if lost or alive != "yes" or bad5 else 0)
PY
