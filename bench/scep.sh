#!/usr/bin/env bash
# SCEP enrollments per second: Ferrocore against micromdm's scepserver, in one run, with the
# same client (`ferrocore-agent scep-bench`: RSA-2048 keys, CSRs and PKCSReq messages built
# before the clock starts) and alternating runs.
#   bench/scep.sh [runs=3] [requests=300] [concurrency=8]
# KEYS (default 64): RSA keys the client generates and uses in turn (every request still has
# its own CSR, signer certificate and transaction ID, so the servers' work is unchanged; 0 = a
# key per request, which only makes the preparation ~15 s longer per 600 requests).
# Each round: Ferrocore over plain HTTP (the `listeners.pki` listener: like for like with
# scepserver, which speaks plain HTTP), scepserver, then Ferrocore over HTTPS (device listener).
# Needs root (network namespace), `scep` (Debian) and a release build (done here).
# scepserver binds every interface, so both servers and the client run inside one
# loopback-only network namespace.
# Each line also gives the server's CPU time per enrollment (utime+stime of the server process,
# all threads, from /proc/PID/stat before and after the run): a figure less sensitive to other
# load on the machine than enrollments/s.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}" n="${2:-300}" c="${3:-8}" keys="${KEYS:-64}"
cargo build --release --locked --bin ferrocore --bin ferrocore-agent >&2
B="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
export B W runs n c keys
unshare -n bash -euo pipefail -c '
ip link set lo up
export FERROCORE_LISTENERS_DEVICE=127.0.0.1:18443 FERROCORE_LISTENERS_SYNC_TLS=127.0.0.1:19997 \
       FERROCORE_LISTENERS_ADMIN=127.0.0.1:18444 FERROCORE_LISTENERS_STOREFRONT=127.0.0.1:17443 \
       FERROCORE_LISTENERS_PKI=127.0.0.1:18081 FERROCORE_SERVER_HOSTNAMES=127.0.0.1 RUST_LOG=warn
"$B/ferrocore" serve --data-dir "$W/data" > "$W/ferrocore.out" 2> "$W/ferrocore.log" &
fpid=$!
for _ in $(seq 100); do grep -q "ferrocore ready" "$W/ferrocore.out" 2>/dev/null && break; sleep 0.1; done
A=("$B/ferrocore" admin --url https://127.0.0.1:18444 --data-dir "$W/data")
"${A[@]}" users add bench --password Bench-pass1 > /dev/null
ch=$("${A[@]}" scep-challenge set-static --config local --user bench --platform ios \
     | python3 -c "import json,sys; print(json.load(sys.stdin)[\"challenge\"])")
scepserver ca -init -depot "$W/depot" -keySize 2048 > /dev/null 2>&1
scepserver -depot "$W/depot" -port 18080 -challenge secret -allowrenew 0 > "$W/scepserver.log" 2>&1 &
spid=$!
sleep 1
cpu() { set -- $(sed "s/.*) //" "/proc/$1/stat"); echo $(( ${12} + ${13} )); }
run() { # name pid args...
  local name=$1 pid=$2; shift 2
  local c0 c1 out
  c0=$(cpu "$pid")
  out=$("$B/ferrocore-agent" scep-bench "$@" -c "$c" -n "$n" --keys "$keys")
  c1=$(cpu "$pid")
  echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); \
r[\"server_cpu_ms_per_enrollment\"]=round(($c1-$c0)*1000.0/$(getconf CLK_TCK)/max(r[\"succeeded\"],1),3); \
print(json.dumps(r))" | sed "s/^/$name run $i: /"
}
for i in $(seq "$runs"); do
  run ferrocore-http "$fpid" --url http://127.0.0.1:18081/scep --challenge "$ch"
  run scepserver "$spid" --url http://127.0.0.1:18080/scep --challenge secret
  run ferrocore-https "$fpid" --url https://127.0.0.1:18443/scep --ca "$W/data/ca/ca.pem" --challenge "$ch"
done
kill "$fpid" "$spid"; wait 2>/dev/null || true
'
