#!/usr/bin/env bash
# SCEP enrollments per second: Ferrocore against micromdm's scepserver, in one run, with the
# same client (`ferrocore-agent scep-bench`: RSA-2048 keys, CSRs and PKCSReq messages built
# before the clock starts) and alternating runs.
#   bench/scep.sh [runs=3] [requests=300] [concurrency=8]
# KEYS (default 64): RSA keys the client generates and uses in turn (every request still has
# its own CSR, signer certificate and transaction ID, so the servers' work is unchanged; 0 = a
# key per request, which only makes the preparation ~15 s longer per 600 requests).
# TARGETS (default "ferrocore-http ferrocore-onetime scepserver"), in this order each round:
#   ferrocore-http     Ferrocore's /scep on the plain-HTTP `listeners.pki` listener (like for
#                      like with scepserver, which speaks plain HTTP), one static challenge
#   ferrocore-onetime  the same listener, a one-time challenge per request (what MDM
#                      enrollments use: each request consumes its grant), created through
#                      the admin API before the clock starts
#   scepserver         micromdm's scepserver, its static challenge (it has no other kind)
#   ferrocore-https    the device listener over TLS, static challenge
# Needs root (network namespace), `scep` (Debian) and a release build (done here unless
# BIN_DIR names a directory with `ferrocore` and `ferrocore-agent`).
# scepserver binds every interface, so both servers and the client run inside one
# loopback-only network namespace.
# CPU: the server's utime+stime (all threads, /proc/PID/stat) before and after the run, divided
# by every request it answered (SUCCESS or a FAILURE CertRep: a refusal costs work too), and
# also by the enrollments (SUCCESS only). The client's CPU is per answered request as well.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}" n="${2:-300}" c="${3:-8}" keys="${KEYS:-64}"
targets="${TARGETS:-ferrocore-http ferrocore-onetime scepserver}"
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --locked --bin ferrocore --bin ferrocore-agent >&2
  BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
B="$(cd "$BIN_DIR" && pwd)"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
export B W runs n c keys targets
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
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:18080/scep?operation=GetCACaps" && break; sleep 0.1; done
# n one-time challenges over one admin connection (curl globbing), one per line.
one_time() {
  curl -sS --fail --cacert "$W/data/ca/ca.pem" -H "Authorization: Bearer $(cat "$W/data/admin-token")" \
    -H "content-type: application/json" -d "{\"username\":\"bench\",\"platform\":\"ios\"}" -w "\n" \
    "https://127.0.0.1:18444/api/v1/admin/scep/challenges?i=[1-$n]" \
    | python3 -c "import json,sys; [print(json.loads(l)[\"challenge\"]) for l in sys.stdin if l.strip()]"
}
cpu() { set -- $(sed "s/.*) //" "/proc/$1/stat"); echo $(( ${12} + ${13} )); }
run() { # name pid args...
  local name=$1 pid=$2; shift 2
  local c0 c1 out
  c0=$(cpu "$pid")
  out=$("$B/ferrocore-agent" scep-bench "$@" -c "$c" -n "$n" --keys "$keys")
  c1=$(cpu "$pid")
  echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); t=($c1-$c0)*1000.0/$(getconf CLK_TCK); \
r[\"target\"]=\"$name\"; r[\"round\"]=$i; r[\"load\"]=open(\"/proc/loadavg\").read().split()[0]; \
r[\"server_cpu_ms_per_request\"]=round(t/max(r[\"answered\"],1),3); \
r[\"server_cpu_ms_per_enrollment\"]=round(t/max(r[\"succeeded\"],1),3); \
print(json.dumps(r))" | tee -a "$W/results.jsonl"
}
echo "runs=$runs requests=$n concurrency=$c keys=$keys nproc=$(nproc) load=$(cut -d" " -f1-3 /proc/loadavg)"
for i in $(seq "$runs"); do
  for t in $targets; do
    case "$t" in
      ferrocore-http) run "$t" "$fpid" --url http://127.0.0.1:18081/scep --challenge "$ch";;
      ferrocore-onetime)
        one_time > "$W/challenges"
        [ "$(wc -l < "$W/challenges")" = "$n" ] || { echo "could not create $n challenges" >&2; exit 1; }
        run "$t" "$fpid" --url http://127.0.0.1:18081/scep --challenges-file "$W/challenges";;
      scepserver) run "$t" "$spid" --url http://127.0.0.1:18080/scep --challenge secret;;
      ferrocore-https) run "$t" "$fpid" --url https://127.0.0.1:18443/scep --ca "$W/data/ca/ca.pem" --challenge "$ch";;
      *) echo "unknown target $t" >&2; exit 1;;
    esac
  done
done
kill "$fpid" "$spid"; wait 2>/dev/null || true
'
python3 - "$W/results.jsonl" "$targets" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print("| target | runs | enrollments/s, median (runs) | SUCCESS / answered / requests | server CPU ms per answered request, median (runs) | server CPU ms per enrollment, median | client CPU ms per request | p99 ms, median |")
print("|---|---|---|---|---|---|---|---|")
med = {}
for t in sys.argv[2].split():
    rs = [r for r in rows if r["target"] == t]
    if not rs:
        continue
    eps = [r["enrollments_per_sec"] for r in rs]
    cpu = [r["server_cpu_ms_per_request"] for r in rs]
    med[t] = (statistics.median(eps), statistics.median(cpu))
    print(f"| {t} | {len(rs)} | **{med[t][0]:.1f}** ({' / '.join(f'{x:.1f}' for x in eps)}) "
          f"| {sum(r['succeeded'] for r in rs)} / {sum(r['answered'] for r in rs)} / {sum(r['requests'] for r in rs)} "
          f"| **{med[t][1]:.2f}** ({' / '.join(f'{x:.2f}' for x in cpu)}) "
          f"| {statistics.median(r['server_cpu_ms_per_enrollment'] for r in rs):.2f} "
          f"| {statistics.median(r['client_cpu_ms_per_request'] or 0 for r in rs):.2f} "
          f"| {statistics.median(r['p99_ms'] for r in rs):.1f} |")
if "scepserver" in med:
    for t, (eps, cpu) in med.items():
        if t != "scepserver":
            print(f"{t} / scepserver: enrollments/s {eps / med['scepserver'][0]:.2f}x, "
                  f"CPU per answered request {med['scepserver'][1] / cpu:.2f}x less")
PY
