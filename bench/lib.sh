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
