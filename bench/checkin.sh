#!/usr/bin/env bash
# Mutual-TLS check-ins, a new connection per check-in: Ferrocore vs nginx (client-certificate
# verification, fixed 200 answer) vs the floor (`tls_floor`: Ferrocore's own rustls
# configuration and certificate verification with a fixed answer, no HTTP routing, domain or
# database), same certificates, alternating runs; with full handshakes and with each device
# resuming its TLS session (tickets; nginx with `ssl_session_tickets on`).
#
# Usage: bench/checkin.sh [--rev GITREV] [--no-build]
#   --rev GITREV   benchmark a committed revision: `git archive GITREV` into the temp dir and
#                  build it there (target dir: target/bench-rev), so uncommitted edits in the
#                  working tree do not affect (or break) the measurement.
#   --no-build     use the binaries already in target/release (or $BIN_DIR).
#
# Knobs (environment, defaults in brackets):
#   DEVICES [200]          devices enrolled (mutual TLS, Windows 10 agent, ECDSA P-256 keys)
#   ROUNDS [3]             rounds; each round runs every target once, in order
#   DURATION [10]          seconds per run
#   CONCURRENCY [16]       concurrent connections of the load generator
#   THREADS [1]            tokio worker threads of the load generator
#   NGINX_WORKERS ["1 2"]  nginx instances to compare, one per worker_processes value
#   MODES ["full resume"]  full: a full handshake per check-in; resume: each device resumes its
#                          previous session (swarm run --resume; nginx with tickets on)
#   WARMUP [2]             unrecorded warm-up seconds per target before round 1
#   PERF [0]               1: after the rounds, `perf record --call-graph dwarf` on Ferrocore during one
#                          extra run; perf.data and text reports go to $PERF_OUT [target/bench-perf]
#   WAIT_IDLE [600]        before measuring, wait up to this many seconds for the machine to be idle
#                          (< 15% CPU busy over 3 s, e.g. someone else's cargo build) before each run;
#                          0: don't wait
#   OTHER_MAX [0.15]       a run during which other processes used more CPU than this (cores) is
#   RETRIES [3]            repeated, up to RETRIES times (the last attempt is kept, and shows in the table)
#   KEEP [0]               1: keep the temp dir (otherwise removed at exit)
#   BIN_DIR                take ferrocore / ferrocore-agent from here (implies --no-build)
#
# Requires: cargo, nginx (apt-get install -y nginx), python3 (free ports, JSON). Binds 127.0.0.1 only.
# Server CPU time is read from /proc/PID/stat (utime+stime, all threads; nginx: master + workers)
# before and after each run; the load generator's own CPU time is measured with bash `time`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVICES="${DEVICES:-200}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONCURRENCY="${CONCURRENCY:-16}"
THREADS="${THREADS:-1}"
NGINX_WORKERS="${NGINX_WORKERS:-1 2}"
WARMUP="${WARMUP:-2}"
PERF="${PERF:-0}"
KEEP="${KEEP:-0}"
WAIT_IDLE="${WAIT_IDLE:-600}"
OTHER_MAX="${OTHER_MAX:-0.15}"
RETRIES="${RETRIES:-3}"
MODES="${MODES:-full resume}"
REV=""
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rev) REV="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

die() { echo "checkin.sh: $*" >&2; exit 1; }
command -v nginx >/dev/null || die "nginx is not installed: apt-get install -y nginx"
command -v python3 >/dev/null || die "python3 is required"
if [ "$PERF" = 1 ]; then command -v perf >/dev/null || die "perf is not installed: apt-get install -y linux-perf"; fi

W="$(mktemp -d /tmp/ferrocore-bench.XXXXXX)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$KEEP" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------- build
if [ -n "${BIN_DIR:-}" ]; then
    BUILD=0
elif [ -n "$REV" ]; then
    git -C "$REPO" rev-parse --verify "$REV^{commit}" >/dev/null || die "unknown revision $REV"
    mkdir -p "$W/src"
    git -C "$REPO" archive "$REV" | tar -x -C "$W/src"
    export CARGO_TARGET_DIR="$REPO/target/bench-rev"
    BIN_DIR="$CARGO_TARGET_DIR/release"
    log "building $(git -C "$REPO" rev-parse --short "$REV") (release) in $W/src"
    (cd "$W/src" && cargo build --release -p ferrocore && cargo build --release -p ferrocore-server --example tls_floor) >&2
    BUILD=0
else
    BIN_DIR="$REPO/target/release"
fi
if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    (cd "$REPO" && cargo build --release -p ferrocore && cargo build --release -p ferrocore-server --example tls_floor) >&2
fi
FC="$BIN_DIR/ferrocore"
AGENT="$BIN_DIR/ferrocore-agent"
FLOOR="$BIN_DIR/examples/tls_floor"
[ -x "$FC" ] && [ -x "$AGENT" ] && [ -x "$FLOOR" ] || die "binaries not found in $BIN_DIR"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # port
    local i
    for i in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
# utime+stime (clock ticks) of a process, all its threads; 0 if gone.
ticks() {
    local s
    s="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
    s="${s##*) }"              # drop "pid (comm) "
    set -- $s                  # field 3 (state) is now $1; utime=$12 stime=$13
    echo $(( ${12} + ${13} ))
}
# Sum over a pid list.
ticks_sum() {
    local t=0 p
    for p in "$@"; do t=$(( t + $(ticks "$p") )); done
    echo "$t"
}
# Aggregate machine CPU: "busy total" jiffies from /proc/stat.
machine_cpu() {
    awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; idle=$5+$6; print t-idle, t}' /proc/stat
}
HZ="$(getconf CLK_TCK)"

# ---------------------------------------------------------------- Ferrocore
P_DEV="$(free_port)"; P_SYNC="$(free_port)"; P_ADMIN="$(free_port)"; P_STORE="$(free_port)"
DATA="$W/data"
log "starting Ferrocore (device :$P_DEV, admin :$P_ADMIN) in $DATA"
FERROCORE_LISTENERS_DEVICE="127.0.0.1:$P_DEV" \
FERROCORE_LISTENERS_SYNC_TLS="127.0.0.1:$P_SYNC" \
FERROCORE_LISTENERS_ADMIN="127.0.0.1:$P_ADMIN" \
FERROCORE_LISTENERS_STOREFRONT="127.0.0.1:$P_STORE" \
FERROCORE_SERVER_HOSTNAMES="localhost,127.0.0.1" \
    "$FC" serve --data-dir "$DATA" >"$W/ferrocore.log" 2>&1 &
FC_PID=$!
PIDS+=("$FC_PID")
for _ in $(seq 1 300); do
    grep -q "ferrocore ready" "$W/ferrocore.log" 2>/dev/null && break
    kill -0 "$FC_PID" 2>/dev/null || { cat "$W/ferrocore.log" >&2; die "ferrocore exited"; }
    sleep 0.1
done
grep -q "ferrocore ready" "$W/ferrocore.log" || { cat "$W/ferrocore.log" >&2; die "ferrocore not ready"; }

"$FC" admin --url "https://127.0.0.1:$P_ADMIN" --data-dir "$DATA" users add bench --password 'Bench-pass1' >/dev/null
log "enrolling $DEVICES devices"
"$AGENT" swarm enroll --state "$W/swarm" --url "https://127.0.0.1:$P_DEV" --ca "$DATA/ca/ca.pem" \
    --user bench --password 'Bench-pass1' --devices "$DEVICES" --platform windows \
    --client-kind agent --client-version 10.0 --json >"$W/enroll.json"
python3 - "$W/enroll.json" "$DEVICES" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if r["mutual"] != int(sys.argv[2]) or r["errors"]:
    sys.exit(f"enrolment failed: {r}")
EOF

# ---------------------------------------------------------------- nginx
# ---------------------------------------------------------------- the floor
P_FLOOR="$(free_port)"
"$FLOOR" "$DATA" "127.0.0.1:$P_FLOOR" >"$W/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
wait_port "$P_FLOOR" || { cat "$W/floor.log" >&2; die "tls_floor did not start"; }

declare -A NGX_PORT NGX_PID
for nw in $NGINX_WORKERS; do
  for mode in $MODES; do
    name="w$nw"; tickets=off
    if [ "$mode" = resume ]; then name="w$nw+resume"; tickets=on; fi
    d="$W/nginx-$name"
    mkdir -p "$d/logs" "$d/tmp"
    cp "$DATA/tls/server.pem" "$d/server.pem"
    cp "$DATA/tls/server.key" "$d/server.key"
    cp "$DATA/ca/ca.pem" "$d/ca.pem"
    port="$(free_port)"
    cat >"$d/nginx.conf" <<EOF
worker_processes $nw;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate server.pem;
        ssl_certificate_key server.key;
        ssl_client_certificate ca.pem;
        ssl_verify_client on;
        ssl_session_cache off;
        ssl_session_tickets $tickets;
        default_type application/json;
        location = /api/v1/checkin { return 200 '{"ok":true}'; }
        location / { return 404; }
    }
}
EOF
    nginx -p "$d/" -e "$d/logs/error.log" -c nginx.conf -t -q || die "nginx config test failed ($d)"
    nginx -p "$d/" -e "$d/logs/error.log" -c nginx.conf -g 'daemon off;' &
    NGX_PID[$name]=$!
    NGX_PORT[$name]=$port
    PIDS+=("$!")
    wait_port "$port" || die "nginx ($name) did not start"
  done
done
nginx_pids() { # master pid -> master + workers
    echo "$1"
    pgrep -P "$1" || true
}

# ---------------------------------------------------------------- runs
# Target names: ferrocore, floor, nginx-wN, each with "+resume" in resume mode.
TARGETS=()
for mode in $MODES; do
    sfx=""; [ "$mode" = resume ] && sfx="+resume"
    TARGETS+=("ferrocore$sfx" "floor$sfx")
    for nw in $NGINX_WORKERS; do TARGETS+=("nginx-w$nw$sfx"); done
done

target_url() {
    case "$1" in
        ferrocore*) echo "https://127.0.0.1:$P_DEV" ;;
        floor*) echo "https://127.0.0.1:$P_FLOOR" ;;
        nginx-w*) echo "https://127.0.0.1:${NGX_PORT[${1#nginx-}]}" ;;
    esac
}
target_pids() {
    case "$1" in
        ferrocore*) echo "$FC_PID" ;;
        floor*) echo "$FLOOR_PID" ;;
        nginx-w*) nginx_pids "${NGX_PID[${1#nginx-}]}" ;;
    esac
}
swarm() { # target duration out.json
    local resume=()
    case "$1" in *+resume) resume=(--resume) ;; esac
    "$AGENT" swarm run --state "$W/swarm" --url "$(target_url "$1")" "${resume[@]}" \
        --concurrency "$CONCURRENCY" --duration "$2" --threads "$THREADS" --json >"$3"
}

busy_pct() { # machine CPU busy % over $1 seconds
    local a b
    a=($(machine_cpu)); sleep "$1"; b=($(machine_cpu))
    echo $(( 100 * (b[0] - a[0]) / (b[1] - a[1] > 0 ? b[1] - a[1] : 1) ))
}
wait_idle() { # up to $WAIT_IDLE seconds for < 15% busy over 3 s
    [ "$WAIT_IDLE" = 0 ] && return 0
    local waited=0 pct
    while :; do
        pct="$(busy_pct 3)"
        [ "$pct" -lt 15 ] && return 0
        [ "$waited" -ge "$WAIT_IDLE" ] && { log "machine still ${pct}% busy after ${waited}s; measuring anyway"; return 0; }
        [ "$waited" = 0 ] && log "machine ${pct}% busy (another build?); waiting for it to go idle"
        waited=$((waited + 3))
    done
}
RES="$W/results.jsonl"
: >"$RES"
run_one() { # target round: measure, and measure again (up to $RETRIES times) if another process
            # used more than $OTHER_MAX cores meanwhile
    local try
    for try in $(seq 0 "$RETRIES"); do
        wait_idle
        measure "$1" "$2"
        python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["other_cores"] <= float(sys.argv[2]) else 1)' \
            "$W/last.json" "$OTHER_MAX" && break
        log "run disturbed by other processes: $(cat "$W/last.json")"
        [ "$try" = "$RETRIES" ] && log "keeping it (no retries left)"
    done
    cat "$W/last.json" >>"$RES"
    log "$(cat "$W/last.json")"
}
measure() { # target round -> $W/last.json
    local t="$1" r="$2" pids b0 b1 m0 m1 out="$W/run-$1-$2.json" tf="$W/time-$1-$2.txt"
    mapfile -t pids < <(target_pids "$t")
    b0="$(ticks_sum "${pids[@]}")"
    m0="$(machine_cpu)"
    TIMEFORMAT='%U %S'
    { time swarm "$t" "$DURATION" "$out"; } 2>"$tf"
    m1="$(machine_cpu)"
    b1="$(ticks_sum "${pids[@]}")"
    python3 - "$t" "$r" "$out" "$tf" "$b0" "$b1" "$m0" "$m1" "$HZ" >"$W/last.json" <<'EOF'
import json, sys
t, r, out, tf, b0, b1, m0, m1, hz = sys.argv[1:]
s = json.load(open(out))
u, sy = (float(x) for x in open(tf).read().split()[-2:])
hz = int(hz)
server_ms = (int(b1) - int(b0)) * 1000 / hz
mb0, mt0 = (int(x) for x in m0.split()); mb1, mt1 = (int(x) for x in m1.split())
n = max(s["requests"], 1)
print(json.dumps({
    "target": t, "round": int(r), "rps": s["requests_per_sec"], "ok_rps": s["ok_per_sec"],
    "requests": s["requests"], "errors": s["errors"], "errors_by_kind": s["errors_by_kind"],
    "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"],
    "server_cpu_ms": server_ms, "server_cpu_ms_per_req": server_ms / n,
    "server_cores": server_ms / 1000 / s["elapsed_secs"],
    "client_cpu_ms_per_req": (u + sy) * 1000 / n,
    "machine_busy": (mb1 - mb0) / max(mt1 - mt0, 1),
    # CPU used by anything other than the server and the load generator during the run, in cores
    # (should be ~0: otherwise another process disturbed the measurement).
    "other_cores": ((mb1 - mb0) / hz - server_ms / 1000 - (u + sy)) / s["elapsed_secs"],
}))
EOF
}

wait_idle
log "load average: $(cut -d' ' -f1-3 /proc/loadavg); machine busy $(busy_pct 1)% before measuring"
if [ "$WARMUP" != 0 ]; then
    for t in "${TARGETS[@]}"; do swarm "$t" "$WARMUP" /dev/null; done
fi
for r in $(seq 1 "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do run_one "$t" "$r"; done
done

if [ "$PERF" = 1 ]; then
    wait_idle
    log "perf: recording Ferrocore during one extra ${DURATION}s run"
    perf record --call-graph "${PERF_CALLGRAPH:-dwarf,16384}" -F "${PERF_FREQ:-250}" -p "$FC_PID" -o "$W/perf.data" -- sleep "$DURATION" 2>"$W/perf-record.log" &
    PERF_PID=$!
    swarm ferrocore "$DURATION" "$W/run-perf.json"
    wait "$PERF_PID" || true
    PO="${PERF_OUT:-$REPO/target/bench-perf}"
    mkdir -p "$PO"
    rep() { perf report -i "$W/perf.data" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/ *$//' || true; }
    rep --no-children --sort comm -g none >"$PO/perf-threads.txt"
    rep --no-children --sort comm,dso -g none --percent-limit 0.5 >"$PO/perf-dso.txt"
    rep --no-children --sort comm,dso,symbol -g none --percent-limit 0.2 >"$PO/perf-self.txt"
    rep --children --sort symbol -g none --percent-limit 1 >"$PO/perf-children.txt"
    cp "$W/run-perf.json" "$W/perf.data" "$PO/"
    log "perf data and reports in $PO/"
fi

# ---------------------------------------------------------------- report
echo
echo "Mutual-TLS check-ins, a new connection each ($MODES): $DEVICES devices, $ROUNDS rounds x ${DURATION}s per target," \
     "concurrency $CONCURRENCY, load generator --threads $THREADS; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
python3 - "$RES" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
targets = list(dict.fromkeys(r["target"] for r in rows))
med = lambda t, k: statistics.median(r[k] for r in rows if r["target"] == t)
print("| target | runs | requests/s (median) | p50 ms | p99 ms | errors | server CPU ms / check-in | server cores used | load-gen CPU ms / req | machine busy | other procs (cores) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for t in targets:
    rs = [r for r in rows if r["target"] == t]
    each = ", ".join("%.0f" % r["rps"] for r in rs)
    print(f"| {t} | {len(rs)} | {med(t,'rps'):.0f} ({each}) "
          f"| {med(t,'p50_ms'):.2f} | {med(t,'p99_ms'):.2f} | {sum(r['errors'] for r in rs)} "
          f"| {med(t,'server_cpu_ms_per_req'):.3f} | {med(t,'server_cores'):.2f} "
          f"| {med(t,'client_cpu_ms_per_req'):.3f} | {100*med(t,'machine_busy'):.0f}% "
          f"| {max(r['other_cores'] for r in rs):.2f} |")
print()
for sfx in ("", "+resume"):
    fcn = "ferrocore" + sfx
    if fcn not in targets:
        continue
    fc = med(fcn, "rps"); fcc = med(fcn, "server_cpu_ms_per_req")
    if "floor" + sfx in targets:
        print(f"- {fcn}: server CPU per check-in = **{fcc / med('floor' + sfx, 'server_cpu_ms_per_req'):.2f}x the floor** "
              f"(TLS and certificate verification alone); requests/s {fc / med('floor' + sfx, 'rps'):.2f}x the floor's")
    for t in targets:
        if t.endswith("+resume") != (sfx == "+resume") or t.startswith(("ferrocore", "floor")):
            continue
        print(f"- {fcn} / {t}: requests/s **{fc / med(t,'rps'):.2f}x**; "
              f"server CPU per check-in {t} / {fcn} = {med(t,'server_cpu_ms_per_req') / fcc:.2f}x "
              f"(>1 means Ferrocore spends less CPU per check-in)")
if "ferrocore" in targets and "ferrocore+resume" in targets:
    print(f"- resumed / full handshakes, Ferrocore: requests/s **{med('ferrocore+resume','rps') / med('ferrocore','rps'):.2f}x**, "
          f"server CPU per check-in {med('ferrocore','server_cpu_ms_per_req') / med('ferrocore+resume','server_cpu_ms_per_req'):.2f}x less")
errs = {}
for r in rows:
    for k, v in r["errors_by_kind"].items():
        errs[f"{r['target']}:{k}"] = errs.get(f"{r['target']}:{k}", 0) + v
if errs:
    print(f"- errors by kind: {errs}")
EOF
