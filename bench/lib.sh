# bench/lib.sh — shell helpers the benchmark scripts share; sourced (". bench/lib.sh") from
# the repository root, after `cd "$(dirname "$0")/.."`. Defines functions only.

# Prints a free TCP port on 127.0.0.1.
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_wait_healthz PORT [TRIES]: waits until http://127.0.0.1:PORT/healthz answers 2xx,
# polling every 0.1 s, at most TRIES times (default 100); returns 0 either way.
bench_wait_healthz() {
  for _ in $(seq "${2:-100}"); do
    curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
}

# Median of the numbers on stdin, one a line (the mean of the middle two for an even count).
bench_median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Prints the INI sections every service benchmark runs with: the [pipeline] and the
# registration rule on Demo for cloud aws. The output ends inside
# [rule:demo-needs-registration], so a script may add keys to that rule right after it.
bench_pipeline_ini() {
  cat <<'INI'
[pipeline]
stages = Prospecting, Qualification, Demo, Proposal, Negotiation, Closed Won, Closed Lost
won = Closed Won
lost = Closed Lost
[rule:demo-needs-registration]
type = registration
stage = Demo
accept.aws = Submitted, In review, Approved
INI
}

# bench_gate_setup DIR PORT THREADS: writes DIR/bench.ini (and the registrations file it
# names) for POST /v1/gate/stage benchmarks: the file connector, the durable log in DIR/var,
# bearer auth with $DG_BENCH_TOKEN (exported here), the registration rule on Demo.
bench_gate_setup() {
  export DG_BENCH_TOKEN=bench-token-0123456789abcdef
  cat > "$1/registrations.csv" <<CSV
cloud,registration_id,crm_opportunity_id,status,created_at,origin
aws,O1000001,,Approved,2026-10-01T09:00:00Z,partner
CSV
  cat > "$1/bench.ini" <<INI
[server]
listen = 127.0.0.1:$2
threads = $3
data_dir = $1/var
[auth]
webhook_tokens = \${DG_BENCH_TOKEN}
reader_tokens = reader-token-0123456789
$(bench_pipeline_ini)
[cloud:aws]
name = AWS ACE
connector = file
path = $1/registrations.csv
INI
}

# bench_thread_cpu PID REGEX: CPU seconds (user + system) of PID's threads whose name
# matches REGEX (dealgate names its threads; see top -H).
bench_thread_cpu() {
  local tick t name
  tick=$(getconf CLK_TCK)
  for t in /proc/"$1"/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    [[ $name =~ $2 ]] && awk -v k="$tick" '{sub(/^.*\) /, ""); print ($12 + $13) / k}' "$t/stat"
  done | awk '{s += $1} END {printf "%.2f", s}'
}

# bench_cpu_split PID DECISIONS: dealgate's CPU per decision (us) by thread group.
bench_cpu_split() {
  local g out=""
  for g in '^civetweb-worker$' '^dg-log-writer$' '^dg-log-syncer$' '^dg-log-ckpt$' '.'; do
    out="$out $(bench_thread_cpu "$1" "$g")"
  done
  echo "$out" | awk -v n="$2" '{if (n <= 0) {print "?"; exit}
    printf "request threads %.0f, log writer %.0f, syncer %.0f, checkpointer %.0f, all %.0f\n",
      $1*1e6/n, $2*1e6/n, $3*1e6/n, $4*1e6/n, $5*1e6/n}'
}

# bench_wrk_summary: reads `wrk --latency` output on stdin, prints
# "req/s p99_ms non2xx requests".
bench_wrk_summary() {
  awk '/Requests\/sec/ {rps=$2} / 99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
       /requests in/ {n=$1} /Non-2xx/ {non2xx=$NF}
       END {printf "%s %s %s %s\n", rps, p99, (non2xx==""?0:non2xx), (n==""?0:n)}'
}

# bench_wrk PORT SECONDS [CONNECTIONS]: bench/gate.lua's load (2 wrk threads, 64 connections
# unless given) on 127.0.0.1:PORT for SECONDS; prints bench_wrk_summary's fields and wrk's
# own CPU seconds (user + system): "req/s p99_ms non2xx requests wrk_cpu_s".
bench_wrk() {
  local out cpu
  out=$(mktemp)
  cpu=$( { TIMEFORMAT='%3U %3S'; time wrk -t2 -c"${3:-64}" -d"$2s" --latency -s bench/gate.lua \
    "http://127.0.0.1:$1" > "$out" 2>&1; } 2>&1 )
  echo "$(bench_wrk_summary < "$out") $(echo "$cpu" | awk '{print $1 + $2}')"
  rm -f "$out"
}

# bench_gate_run WORKDIR BINARY SECONDS [NAME=VALUE ...]: starts BINARY serve on a fresh log
# under WORKDIR with bench_gate_setup's configuration (the NAME=VALUE pairs in its
# environment), drives it with bench_wrk for SECONDS, stops it and prints
# "req/s p99_ms peak_rss_kB requests non2xx CPU-split". With BENCH_PREP_SQL set, the service is
# started once to create its schema and stopped, and the SQL run on the log before the
# measured start.
bench_gate_run() {
  local dir port pid rps p99 non2xx req rss
  dir=$(mktemp -d "$1/run.XXXXXX")
  port=$(bench_free_port)
  bench_gate_setup "$dir" "$port" 64
  if [ -n "${BENCH_PREP_SQL:-}" ]; then
    env "${@:4}" "$2" serve -c "$dir/bench.ini" 2>"$dir/prep.log" &
    pid=$!
    bench_wait_healthz "$port"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    sqlite3 "$dir/var/dealgate.db" "$BENCH_PREP_SQL"
  fi
  env "${@:4}" "$2" serve -c "$dir/bench.ini" 2>"$dir/dealgate.log" &
  pid=$!
  bench_wait_healthz "$port"
  read -r rps p99 non2xx req _ < <(bench_wrk "$port" "$3")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  echo "$rps $p99 $rss $req $non2xx $(bench_cpu_split "$pid" "$req")"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
