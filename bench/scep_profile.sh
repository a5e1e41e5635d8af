#!/usr/bin/env bash
# One Ferrocore server under `ferrocore-agent scep-bench` (plain-HTTP PKI listener, static
# challenge, 64 client keys reused for the preparation), for profiling and A/B runs of two
# builds: prints the bench's JSON report and the server's CPU time per request.
#   [B=DIR] bench/scep_profile.sh [requests=600] [concurrency=8] [cpu|perf|strace]
# B: directory holding the release `ferrocore` and `ferrocore-agent` (default
#    /var/tmp/ferrocore-release/release; build them first). Alternate two B=... for an A/B.
# perf:   `perf record -g` of the server during the timed part -> $OUT/perf.data
# strace: fsync/pread/pwrite of every server thread, with durations -> $OUT/strace.out
# RENICE=PATTERN [NICEVAL=-15]: renice the server threads whose name matches the shell
#    pattern (e.g. 'sqlx-sqlite-wor') after the warm-up.
# WRAP=CMD: start the server under CMD (e.g. eatmydata).
# Needs root (network namespace), python3; perf / strace for those modes.
set -euo pipefail
B="${B:-/var/tmp/ferrocore-release/release}"
OUT="${OUT:-$PWD}"
n="${1:-600}" c="${2:-8}" mode="${3:-cpu}"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
export B W OUT n c mode WRAP RENICE NICEVAL
unshare -n bash -euo pipefail -c '
ip link set lo up
export FERROCORE_LISTENERS_DEVICE=127.0.0.1:18443 FERROCORE_LISTENERS_SYNC_TLS=127.0.0.1:19997 \
       FERROCORE_LISTENERS_ADMIN=127.0.0.1:18444 FERROCORE_LISTENERS_STOREFRONT=127.0.0.1:17443 \
       FERROCORE_LISTENERS_PKI=127.0.0.1:18081 FERROCORE_SERVER_HOSTNAMES=127.0.0.1 RUST_LOG=${RUST_LOG:-warn}
${WRAP:-} "$B/ferrocore" serve --data-dir "$W/data" > "$W/ferrocore.out" 2> "$W/ferrocore.log" &
fpid=$!
for _ in $(seq 100); do grep -q "ferrocore ready" "$W/ferrocore.out" 2>/dev/null && break; sleep 0.1; done
A=("$B/ferrocore" admin --url https://127.0.0.1:18444 --data-dir "$W/data")
"${A[@]}" users add bench --password Bench-pass1 > /dev/null
ch=$("${A[@]}" scep-challenge set-static --config local --user bench --platform ios \
     | python3 -c "import json,sys; print(json.load(sys.stdin)[\"challenge\"])")
bench() { "$B/ferrocore-agent" scep-bench --url http://127.0.0.1:18081/scep --challenge "$ch" \
          -c "$c" --keys 64 "$@"; }
cpu() { set -- $(sed "s/.*) //" "/proc/$1/stat"); echo $(( ${12} + ${13} )); }
bench -n 100 > /dev/null   # warm-up: threads started, caches filled
if [ -n "${RENICE:-}" ]; then
  for t in /proc/$fpid/task/*; do
    case "$(cat "$t/comm")" in $RENICE) renice -n "${NICEVAL:--15}" -p "${t##*/}" > /dev/null;; esac
  done
fi
c0=$(cpu $fpid)
case "$mode" in
  perf) perf record -F 2000 -g -p $fpid -o "$OUT/perf.data" 2>/dev/null & ppid=$!; sleep 0.5;;
  strace) strace -f -T -e trace=fsync,fdatasync,pwrite64,pread64 -p $fpid -o "$OUT/strace.out" \
            2>/dev/null & ppid=$!; sleep 0.5;;
esac
bench -n "$n"
c1=$(cpu $fpid)
echo "server cpu ms/request (over all $n requests): $(python3 -c "print(($c1-$c0)*1000/$(getconf CLK_TCK)/$n)")"
[ "$mode" = cpu ] || { kill -INT $ppid; wait $ppid || true; }
kill $fpid; wait 2>/dev/null || true
'
