#!/usr/bin/env bash
# OCSP responses per second: Ferrocore's responder (plain-HTTP PKI listener, POST /ocsp) vs
# the `openssl ocsp` responder, same request bytes, same signing certificate and key (the
# delegated P-256 OCSP signer Ferrocore created), same load generator (wrk + a Lua script
# POSTing DER requests), alternating runs; with a new connection per request (`Connection:
# close`) and with keep-alive.
#
# Request corpora (CORPORA, each measured in every round):
#   mix          the headline: CERTS device certificates enrolled over EST, one request per
#                certificate and CertID hash (SHA-1 and SHA-256), no nonce (RFC 5019 relying
#                parties); wrk picks one of the 2 x CERTS bodies at random for every request
#   single       one request (the first certificate, SHA-1, no nonce) replayed: Ferrocore's
#                answer cache then serves every request after the first
#   mix-nonce    the mix with a nonce in every request: both responders sign every answer
#   single-nonce one request with a nonce, replayed
#
# Usage: bench/ocsp.sh [--no-build]
#   --no-build  use target/release (or $BIN_DIR) as built.
# Knobs (environment, defaults in brackets):
#   ROUNDS [3]          rounds; each round runs every corpus x mode x target once, in order
#   DURATION [10]       seconds per run
#   CONNECTIONS [16]    wrk connections;  WRK_THREADS [1] wrk threads
#   PEER_MULTI ["1 2"]  openssl ocsp responders to compare, one per -multi value (worker processes)
#   CERTS [200]         certificates in the mix corpora
#   CORPORA ["mix single mix-nonce"]   MODES ["close keepalive"]
#   KEEP [0]            1: keep the temp dir
#   PERF_OUT [unset]    a path: `perf record -g` of Ferrocore during its new-connection runs
#
# `openssl ocsp` binds every interface, so the script re-runs itself in a loopback-only
# network namespace (`unshare -n`) after building: both responders and wrk run inside it.
# Requires: cargo, openssl, wrk (apt-get install -y wrk), curl, unshare/ip (util-linux, iproute2).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
WRK_THREADS="${WRK_THREADS:-1}"
PEER_MULTI="${PEER_MULTI:-1 2}"
KEEP="${KEEP:-0}"
CERTS="${CERTS:-200}"
CORPORA="${CORPORA:-mix single mix-nonce}"
MODES="${MODES:-close keepalive}"
die() { echo "ocsp.sh: $*" >&2; exit 1; }

if [ -z "${OCSP_BENCH_IN_NS:-}" ]; then
    for c in openssl wrk curl unshare ip; do command -v "$c" >/dev/null || die "$c is not installed"; done
    if [ "${1:-}" != "--no-build" ] && [ -z "${BIN_DIR:-}" ]; then
        (cd "$REPO" && cargo build --release --locked -p ferrocore)
    fi
    BIN_DIR="${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}"
    [ -x "$BIN_DIR/ferrocore" ] || die "no $BIN_DIR/ferrocore (build first)"
    export BIN_DIR OCSP_BENCH_IN_NS=1
    exec unshare -n bash "$0" "$@"
fi

ip link set lo up
W="$(mktemp -d /tmp/ocsp-bench.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$KEEP" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT

# --- Ferrocore, with CERTS device certificates enrolled over EST (openssl + curl) ---
export FERROCORE_LISTENERS_DEVICE=127.0.0.1:18443 FERROCORE_LISTENERS_SYNC_TLS="" \
       FERROCORE_LISTENERS_ADMIN=127.0.0.1:18444 FERROCORE_LISTENERS_STOREFRONT=127.0.0.1:18445 \
       FERROCORE_LISTENERS_PKI=127.0.0.1:18080 FERROCORE_SERVER_HOSTNAMES=127.0.0.1 RUST_LOG=warn
"$BIN_DIR/ferrocore" serve --data-dir "$W/data" > "$W/ferrocore.out" 2> "$W/ferrocore.log" &
FC_PID=$!; PIDS+=("$FC_PID")
for _ in $(seq 100); do grep -q "ferrocore ready" "$W/ferrocore.out" 2>/dev/null && break; sleep 0.1; done
grep -q "ferrocore ready" "$W/ferrocore.out" || { cat "$W/ferrocore.log"; die "ferrocore did not start"; }
ADMIN=("$BIN_DIR/ferrocore" admin --url https://127.0.0.1:18444 --data-dir "$W/data")
"${ADMIN[@]}" users add bench --password 'Bench-pass1' > /dev/null
CA="$W/data/ca/ca.pem"
mkdir -p "$W/certs" "$W/req"
enroll() { # I: key, CSR, EST simpleenroll, certificate, then its OCSP requests
    local i="$1" d="$W/certs"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$i.key" \
        -subj "/CN=bench-device-$i" -outform DER -out "$d/$i.csr" 2>/dev/null
    openssl base64 -in "$d/$i.csr" > "$d/$i.b64"
    curl -sS --fail --cacert "$CA" -u bench:Bench-pass1 -H 'Content-Type: application/pkcs10' \
        --data-binary @"$d/$i.b64" https://127.0.0.1:18443/.well-known/est/simpleenroll > "$d/$i.p7.b64"
    openssl base64 -d -in "$d/$i.p7.b64" | openssl pkcs7 -inform DER -print_certs -out "$d/$i.pem"
    for h in sha1 sha256; do
        openssl ocsp -issuer "$CA" -"$h" -cert "$d/$i.pem" -reqout "$W/req/$i-$h.der" -no_nonce > /dev/null
        openssl ocsp -issuer "$CA" -"$h" -cert "$d/$i.pem" -reqout "$W/req/$i-$h-nonce.der" > /dev/null
    done
}
export -f enroll
export W CA
seq "$CERTS" | xargs -P 4 -I{} bash -c 'enroll {}'
for i in $(seq "$CERTS"); do
    for h in sha1 sha256; do
        echo "$W/req/$i-$h.der" >> "$W/corpus-mix"
        echo "$W/req/$i-$h-nonce.der" >> "$W/corpus-mix-nonce"
    done
done
echo "$W/req/1-sha1.der" > "$W/corpus-single"
echo "$W/req/1-sha1-nonce.der" > "$W/corpus-single-nonce"
echo "enrolled $CERTS certificates; $(wc -l < "$W/corpus-mix") distinct requests per mix corpus"

# --- the peer: openssl ocsp with an index naming the same certificates as valid ---
for i in $(seq "$CERTS"); do
    c="$W/certs/$i.pem"
    serial="$(openssl x509 -in "$c" -noout -serial | cut -d= -f2)"
    expiry="$(date -u -d "$(openssl x509 -in "$c" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)"
    subject="$(openssl x509 -in "$c" -noout -subject -nameopt compat | sed 's/^subject=//')"
    printf 'V\t%s\t\t%s\tunknown\t%s\n' "$expiry" "$serial" "$subject" >> "$W/index.txt"
done
declare -A URL PORT
URL[ferrocore]="http://127.0.0.1:18080/ocsp"
port=19080
for m in $PEER_MULTI; do
    PORT["openssl-multi$m"]=$port
    URL["openssl-multi$m"]="http://127.0.0.1:$port/ocsp"
    port=$((port + 1))
done
# openssl ocsp (3.0) spins forever on a connection the client closes without sending a request
# (what every load generator does at the end of a run), so each peer run gets a fresh responder.
PEER_PID=""
start_peer() { # TARGET
    local t="$1" m="${1#openssl-multi}"
    local args=(-index "$W/index.txt" -port "${PORT[$t]}" -rsigner "$W/data/ca/ocsp.pem"
                -rkey "$W/data/ca/ocsp.key" -CA "$CA" -nmin 60 -ignore_err)
    [ "$m" -gt 1 ] && args+=(-multi "$m")
    openssl ocsp "${args[@]}" >> "$W/$t.log" 2>&1 &
    PEER_PID=$!
    PIDS+=("$PEER_PID")
    for _ in $(seq 50); do
        curl -s -o /dev/null -H 'Content-Type: application/ocsp-request' \
            --data-binary @"$W/req/1-sha1.der" "${URL[$t]}" && return 0
        sleep 0.1
    done
    die "$t did not start"
}
stop_peer() {
    [ -n "$PEER_PID" ] || return 0
    pkill -TERM -P "$PEER_PID" 2>/dev/null || true
    kill "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
    PEER_PID=""
}
TARGETS=(ferrocore)
for m in $PEER_MULTI; do TARGETS+=("openssl-multi$m"); done

# Every responder answers requests of every corpus with a verified "good" (a sample of 8
# bodies from each: the first, the last and six at random).
for t in "${TARGETS[@]}"; do
    [ "$t" = ferrocore ] || start_peer "$t"
    for corpus in $CORPORA; do
        for req in $( (head -1; tail -1) < "$W/corpus-$corpus"; shuf -n 6 "$W/corpus-$corpus"); do
            curl -sS --fail -H 'Content-Type: application/ocsp-request' --data-binary @"$req" \
                "${URL[$t]}" -o "$W/resp-$t.der"
            # Without -cert: openssl would build its own request (with a new nonce) to check against.
            out="$(openssl ocsp -respin "$W/resp-$t.der" -reqin "$req" -issuer "$CA" \
                -CAfile "$CA" -resp_text 2>&1)"
            echo "$out" | grep -q "Response verify OK" && echo "$out" | grep -q "Cert Status: good" \
                || die "$t, $req: unexpected answer: $out"
        done
    done
    echo "$t: answers verified good ($(stat -c %s "$W/resp-$t.der") bytes)"
    stop_peer
done

cat > "$W/post.lua" <<'LUA'
-- No probe connection: wrk's default resolve() opens and closes a connection to test the
-- address, and `openssl ocsp` (3.0) then spins on that connection's EOF and serves nobody.
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup(host, service)
end
-- `openssl ocsp` keeps a connection open only when asked to (HTTP/1.0 style).
local conn = "keep-alive"
if os.getenv("CLOSE") == "1" then conn = "close" end
local reqs = {}
for path in io.lines(os.getenv("CORPUS")) do
   local f = assert(io.open(path, "rb"))
   local body = f:read("*a")
   f:close()
   reqs[#reqs + 1] = wrk.format("POST", nil,
      {["Content-Type"] = "application/ocsp-request", ["Connection"] = conn}, body)
end
math.randomseed(os.time())
function request()
   return reqs[math.random(#reqs)]
end
LUA

echo "corpora=[$CORPORA] certs=$CERTS rounds=$ROUNDS duration=${DURATION}s connections=$CONNECTIONS wrk-threads=$WRK_THREADS nproc=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RES
for r in $(seq "$ROUNDS"); do
    for corpus in $CORPORA; do
        for mode in $MODES; do
            for t in "${TARGETS[@]}"; do
                close=0; [ "$mode" = close ] && close=1
                [ "$t" = ferrocore ] || start_peer "$t"
                PERF_PID=""
                if [ -n "${PERF_OUT:-}" ] && [ "$t" = ferrocore ] && [ "$close" = 1 ]; then
                    perf record -F 1999 -g -p "$FC_PID" -o "$PERF_OUT.$corpus.r$r" 2>/dev/null &
                    PERF_PID=$!
                fi
                out="$(CORPUS="$W/corpus-$corpus" CLOSE=$close wrk -t"$WRK_THREADS" -c"$CONNECTIONS" \
                    -d"${DURATION}s" -s "$W/post.lua" "${URL[$t]}" 2>&1)"
                stop_peer
                if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; fi
                rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
                errs="$(echo "$out" | grep -E 'Non-2xx|Socket errors' | tr -s ' ' | tr '\n' ';' || true)"
                echo "round $r $corpus $mode $t: $rps req/s ${errs} (load $(cut -d' ' -f1 /proc/loadavg))"
                RES["$corpus $t $mode"]+="$rps "
            done
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "| requests | responder | new connection per request, median req/s (runs) | keep-alive, median req/s (runs) |"
echo "|---|---|---:|---:|"
for corpus in $CORPORA; do
    for t in "${TARGETS[@]}"; do
        line="| $corpus | $t |"
        for mode in close keepalive; do
            runs="${RES["$corpus $t $mode"]:-}"
            if [ -n "$runs" ]; then
                line+=" $(echo "$runs" | median) ($(echo $runs | sed 's/ / \/ /g')) |"
            else
                line+=" - |"
            fi
        done
        echo "$line"
    done
done
for corpus in $CORPORA; do
    for mode in $MODES; do
        fc="$(echo "${RES["$corpus ferrocore $mode"]}" | median)"
        for m in $PEER_MULTI; do
            pc="$(echo "${RES["$corpus openssl-multi$m $mode"]}" | median)"
            awk -v a="$fc" -v b="$pc" -v m="$m" -v c="$corpus" -v mo="$mode" \
                'BEGIN {printf "ratio %s %s ferrocore / openssl-multi%s: %s\n", c, mo, m, (b > 0 ? sprintf("%.2fx", a/b) : "n/a")}'
        done
    done
done
