#!/usr/bin/env bash
# The database under sustained load (issue 22): WAL size, database size, server RSS and the
# check-in rate and p99, sampled every 10 s, for builds run alternately.
#
# Usage: bench/wal.sh LABEL=BIN_DIR[@WAL_LIMIT_MB] [LABEL=BIN_DIR[@WAL_LIMIT_MB] ...]
#   Each BIN_DIR holds release `ferrocore` and `ferrocore-agent` binaries (e.g. one built from
#   main, one from the branch: `cargo build --release -p ferrocore`, then copy target/release).
#   @WAL_LIMIT_MB sets FERROCORE_STORE_WAL_LIMIT_MB for that build's server (65536: a limit
#   never reached, i.e. only the PASSIVE checkpoints of before the change).
#
# Knobs (environment, defaults in brackets):
#   LOADS ["checkin mixed"]  checkin: `swarm run --concurrency 16 --rate 1700 --threads 1`
#                            against 200 enrolled mutual-TLS agents, in back-to-back 10 s slices
#                            (each slice gives rate and p99); mixed: the same plus SCEP
#                            enrollments (`scep-bench -c 2`, static challenge, plain-HTTP PKI
#                            listener) running without pause in the background
#   DURATION [600]           seconds of load per run (a multiple of 10)
#   ROUNDS [1]               rounds; each round runs every LOAD with every build, alternating
#   DEVICES [200]  RATE [1700]  CONCURRENCY [16]
#   OUT [target/bench-wal]   per-run series (JSON lines) and the summary table
#
# Per run it prints a summary: max WAL, max DB, RSS at the first sample after 30 s and at the end,
# RSS slope after 30 s (MB/min, least squares), check-in rate and p99 (median of the slices;
# worst slice), SCEP enrollments/s. The machine may be shared: other processes' CPU use during
# the run is reported (`other_cores`), as in bench/checkin.sh.
# Requires: python3. Binds 127.0.0.1 only (free ports).
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,26p' "$0"; exit 2; }
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOADS="${LOADS:-checkin mixed}"
DURATION="${DURATION:-600}"
ROUNDS="${ROUNDS:-1}"
DEVICES="${DEVICES:-200}"
RATE="${RATE:-1700}"
CONCURRENCY="${CONCURRENCY:-16}"
OUT="${OUT:-$REPO/target/bench-wal}"
mkdir -p "$OUT"
SLICES=$(( DURATION / 10 ))

W="$(mktemp -d /tmp/ferrocore-wal.XXXXXX)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "wal.sh: $*" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
ticks() { local s; s="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }; s="${s##*) }"; set -- $s; echo $(( ${12} + ${13} )); }
machine_busy() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6}' /proc/stat; }
HZ="$(getconf CLK_TCK)"

run_one() { # label bin_dir[@wal_limit_mb] load round
    local label="$1" bin="${2%@*}" load="$3" round="$4" limit=""
    [ "$bin" != "$2" ] && limit="${2##*@}"
    local FC="$bin/ferrocore" AGENT="$bin/ferrocore-agent" data="$W/data-$label-$load-$round"
    [ -x "$FC" ] && [ -x "$AGENT" ] || die "no binaries in $bin"
    local P_DEV P_SYNC P_ADMIN P_STORE P_PKI
    P_DEV="$(free_port)"; P_SYNC="$(free_port)"; P_ADMIN="$(free_port)"; P_STORE="$(free_port)"; P_PKI="$(free_port)"
    local env=(FERROCORE_LISTENERS_DEVICE="127.0.0.1:$P_DEV" FERROCORE_LISTENERS_SYNC_TLS="127.0.0.1:$P_SYNC"
               FERROCORE_LISTENERS_ADMIN="127.0.0.1:$P_ADMIN" FERROCORE_LISTENERS_STOREFRONT="127.0.0.1:$P_STORE"
               FERROCORE_LISTENERS_PKI="127.0.0.1:$P_PKI" FERROCORE_SERVER_HOSTNAMES="localhost,127.0.0.1" RUST_LOG=warn)
    [ -n "$limit" ] && env+=(FERROCORE_STORE_WAL_LIMIT_MB="$limit")
    env "${env[@]}" "$FC" serve --data-dir "$data" >"$W/fc.out" 2>"$W/fc.log" &
    local fc=$!
    PIDS+=("$fc")
    for _ in $(seq 1 300); do
        grep -q "ferrocore ready" "$W/fc.out" "$W/fc.log" 2>/dev/null && break
        kill -0 "$fc" 2>/dev/null || { cat "$W/fc.log" >&2; die "ferrocore exited"; }
        sleep 0.1
    done
    local A=("$FC" admin --url "https://127.0.0.1:$P_ADMIN" --data-dir "$data")
    "${A[@]}" users add bench --password 'Bench-pass1' >/dev/null
    "$AGENT" swarm enroll --state "$W/swarm-$label-$load-$round" --url "https://127.0.0.1:$P_DEV" \
        --ca "$data/ca/ca.pem" --user bench --password 'Bench-pass1' --devices "$DEVICES" \
        --platform windows --client-kind agent --client-version 10.0 --json >"$W/enroll.json"
    local scep_pid="" stop="$W/stop-scep"
    rm -f "$stop"
    if [ "$load" = mixed ]; then
        local ch
        ch="$("${A[@]}" scep-challenge set-static --config local --user bench --platform ios \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["challenge"])')"
        ( while [ ! -e "$stop" ]; do
              "$AGENT" scep-bench --url "http://127.0.0.1:$P_PKI/scep" --challenge "$ch" -c 2 -n 100 --keys 8 || true
          done >"$W/scep.jsonl" 2>"$W/scep.err" ) &
        scep_pid=$!
        PIDS+=("$scep_pid")
    fi
    local series="$OUT/series-$label-$load-$round.jsonl"
    : >"$series"
    local t0 i b0 b1 m0 m1 u0 u1
    t0="$(date +%s.%N)"
    log "$label $load round $round: $DEVICES devices enrolled, ${DURATION}s of load"
    for i in $(seq 1 "$SLICES"); do
        b0="$(ticks "$fc")"; m0="$(machine_busy)"
        TIMEFORMAT='%U %S'
        { time "$AGENT" swarm run --state "$W/swarm-$label-$load-$round" --url "https://127.0.0.1:$P_DEV" \
            --concurrency "$CONCURRENCY" --duration 10 --rate "$RATE" --threads 1 --json >"$W/slice.json"; } 2>"$W/time.txt"
        b1="$(ticks "$fc")"; m1="$(machine_busy)"
        python3 - "$W/slice.json" "$W/time.txt" "$t0" "$(rss_kb "$fc")" "$(fsize "$data/ferrocore.db")" \
            "$(fsize "$data/ferrocore.db-wal")" "$b0" "$b1" "$m0" "$m1" "$HZ" >>"$series" <<'EOF'
import json, sys, time
s = json.load(open(sys.argv[1]))
u, sy = (float(x) for x in open(sys.argv[2]).read().split()[-2:])
t0, rss, db, wal, b0, b1, m0, m1, hz = sys.argv[3:]
hz = int(hz); el = s["elapsed_secs"]
server = (int(b1) - int(b0)) / hz; machine = (int(m1) - int(m0)) / hz
print(json.dumps({"t": round(time.time() - float(t0), 1), "rss_mb": int(rss) / 1024,
    "db_mb": int(db) / 2**20, "wal_mb": int(wal) / 2**20, "rps": s["ok_per_sec"],
    "p99_ms": s["p99_ms"], "errors": s["errors"],
    "other_cores": round((machine - server - u - sy) / el, 2)}))
EOF
    done
    touch "$stop"
    [ -n "$scep_pid" ] && wait "$scep_pid" 2>/dev/null || true
    local status
    status="$("${A[@]}" store status 2>/dev/null || echo '{}')"
    kill "$fc"; wait "$fc" 2>/dev/null || true
    python3 - "$series" "$label" "$load" "$round" "$W/scep.jsonl" "$status" >>"$OUT/summary.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
label, load, rnd, scep, status = sys.argv[2:]
late = [r for r in rows if r["t"] >= 30] or rows
n = len(late); mt = sum(r["t"] for r in late) / n; mr = sum(r["rss_mb"] for r in late) / n
var = sum((r["t"] - mt) ** 2 for r in late)
slope = sum((r["t"] - mt) * (r["rss_mb"] - mr) for r in late) / var * 60 if var else 0.0
sc = []
try:
    sc = [json.loads(l) for l in open(scep) if l.strip().startswith("{")]
except FileNotFoundError:
    pass
try:
    status = json.loads(status)
except ValueError:
    status = {}
print(json.dumps({"build": label, "load": load, "round": int(rnd), "secs": rows[-1]["t"],
    "max_wal_mb": round(max(r["wal_mb"] for r in rows), 1), "end_wal_mb": round(rows[-1]["wal_mb"], 1),
    "max_db_mb": round(max(r["db_mb"] for r in rows), 1),
    "rss_mb_first": round(late[0]["rss_mb"], 1), "rss_mb_last": round(rows[-1]["rss_mb"], 1),
    "rss_slope_mb_per_min": round(slope, 2),
    "checkins_per_sec": round(statistics.median(r["rps"] for r in rows)),
    "p99_ms": round(statistics.median(r["p99_ms"] for r in rows), 1),
    "p99_ms_worst": round(max(r["p99_ms"] for r in rows), 1),
    "errors": sum(r["errors"] for r in rows),
    "scep_per_sec": round(sum(x["succeeded"] for x in sc) / max(sum(x["elapsed_secs"] for x in sc), 1e-9), 1) if sc else None,
    "wal_truncations": status.get("wal_truncations"),
    "other_cores_max": max(r["other_cores"] for r in rows)}))
EOF
    tail -1 "$OUT/summary.jsonl" >&2
}

: >"$OUT/summary.jsonl"
for r in $(seq 1 "$ROUNDS"); do
    for load in $LOADS; do
        for spec in "$@"; do
            run_one "${spec%%=*}" "${spec#*=}" "$load" "$r"
        done
    done
done

echo
echo "WAL under load: $DEVICES agents, swarm --concurrency $CONCURRENCY --rate $RATE --threads 1, ${DURATION}s per run," \
     "$ROUNDS round(s), samples every 10 s; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
python3 - "$OUT/summary.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| build | load | round | max WAL MB | WAL at end MB | max DB MB | RSS MB (30 s -> end) | RSS slope MB/min | check-ins/s | p99 ms (median / worst slice) | SCEP/s | WAL truncations | errors | other procs (cores, max) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['build']} | {r['load']} | {r['round']} | {r['max_wal_mb']} | {r['end_wal_mb']} | {r['max_db_mb']} "
          f"| {r['rss_mb_first']} -> {r['rss_mb_last']} | {r['rss_slope_mb_per_min']} | {r['checkins_per_sec']} "
          f"| {r['p99_ms']} / {r['p99_ms_worst']} | {r['scep_per_sec'] if r['scep_per_sec'] is not None else '-'} "
          f"| {r['wal_truncations'] if r['wal_truncations'] is not None else '-'} | {r['errors']} | {r['other_cores_max']} |")
EOF
