#!/usr/bin/env bash
# Registrations per second with Active Directory authentication against local users, in the
# same run: one Samba AD DC and one Ferrocore server, in a loopback-only network namespace
# (Samba insists on ports 389/636). `ferrocore-agent swarm enroll` registers DEVICES legacy
# devices (no certificate: the password check dominates) as an AD user, then as a local user,
# alternating ROUNDS times; the bind latency Ferrocore adds is the difference per registration.
#
# Usage: bench/directory.sh [--no-build]      (root: unshare -n; samba, ldb-tools installed)
# Knobs: DEVICES [200]  CONCURRENCY [8]  ROUNDS [2]  BIN_DIR (default target/release)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${FERROCORE_BENCH_INNER:-}" ]; then
  if [ "${1:-}" != "--no-build" ] && [ -z "${BIN_DIR:-}" ]; then
    (cd "$REPO" && cargo build --release --locked --bin ferrocore --bin ferrocore-agent)
  fi
  exec env FERROCORE_BENCH_INNER=1 unshare -n bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
BIN="${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}"
DEVICES="${DEVICES:-200}"; CONCURRENCY="${CONCURRENCY:-8}"; ROUNDS="${ROUNDS:-2}"
W="$(mktemp -d /tmp/ferrocore-bench-dir.XXXXXX)"
cleanup() { [ -n "${FC:-}" ] && kill "$FC" 2>/dev/null; [ -n "${SMB:-}" ] && kill "$SMB" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# PKI for the DC's LDAPS certificate (127.0.0.1).
cd "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 \
  -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout dc.key -out dc.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in dc.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out dc.crt -extfile ext.cnf 2>/dev/null
chmod 600 dc.key

samba-tool domain provision -s /dev/null --targetdir="$W/ad" --realm=EXAMPLE.TEST --domain=EXAMPLE \
  --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass='Adm1n-Passw0rd!' --host-name=dc1 \
  --host-ip=127.0.0.1 --option=interfaces=127.0.0.1 '--option=bind interfaces only=yes' >provision.log 2>&1
C="$W/ad/etc/smb.conf"
samba -s "$C" -i -M single '--option=server services=ldap kdc' "--option=tls keyfile=$W/dc.key" \
  "--option=tls certfile=$W/dc.crt" "--option=tls cafile=$W/ca.crt" </dev/zero >samba.log 2>&1 &
SMB=$!
for _ in $(seq 300); do (echo >/dev/tcp/127.0.0.1/636) 2>/dev/null && break; sleep 0.2; done
sleep 1
samba-tool domain passwordsettings set --complexity=off --min-pwd-length=6 -s "$C" >/dev/null
samba-tool user create aduser 'Ad-Bench-1' -s "$C" >/dev/null
samba-tool user create svc 'Svc-Bench-1' -s "$C" >/dev/null
printf 'Svc-Bench-1' >svc.pw; chmod 600 svc.pw
cat >ferrocore.toml <<CFG
[directory]
order = ["local", "corp"]
[[directory.sources]]
name = "corp"
kind = "ad"
urls = ["ldaps://127.0.0.1"]
ca_file = "$W/ca.crt"
bind_dn = "svc@example.test"
bind_password_file = "$W/svc.pw"
base_dn = "DC=example,DC=test"
CFG
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export FERROCORE_LISTENERS_DEVICE=127.0.0.1:$(port) FERROCORE_LISTENERS_SYNC_TLS=127.0.0.1:$(port) \
  FERROCORE_LISTENERS_ADMIN=127.0.0.1:$(port) FERROCORE_LISTENERS_STOREFRONT=127.0.0.1:$(port) \
  FERROCORE_SERVER_HOSTNAMES=127.0.0.1 FERROCORE_CONFIG="$W/ferrocore.toml" RUST_LOG=warn
"$BIN/ferrocore" serve --data-dir "$W/data" >fc.out 2>fc.log &
FC=$!
for _ in $(seq 300); do grep -q "ferrocore ready" fc.out 2>/dev/null && break; sleep 0.2; done
A=("$BIN/ferrocore" admin --url "https://${FERROCORE_LISTENERS_ADMIN}" --data-dir "$W/data")
"${A[@]}" users add localuser --password 'Local-Bench-1' >/dev/null
echo "date: $(date -u '+%F %H:%M UTC')  nproc: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "devices per run: $DEVICES, concurrency: $CONCURRENCY"
enroll() { # user password label round
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN/ferrocore-agent" --state "$W/swarm-$3-$4" swarm enroll --url "https://${FERROCORE_LISTENERS_DEVICE}" \
    --ca "$W/data/ca/ca.pem" --user "$1" --password "$2" --devices "$DEVICES" --concurrency "$CONCURRENCY" \
    --platform android --client-kind agent --client-version 10.1.0 >"$W/$3-$4.out"
  t1=$(date +%s.%N)
  python3 -c "import sys; n=$DEVICES; d=$t1-$t0; print(f'{sys.argv[1]:<6} round {sys.argv[2]}: {n} registrations in {d:.2f} s = {n/d:.1f}/s, {1000*d/n*$CONCURRENCY:.1f} ms each at concurrency $CONCURRENCY')" "$3" "$4"
}
for r in $(seq "$ROUNDS"); do
  enroll aduser 'Ad-Bench-1' ad "$r"
  enroll localuser 'Local-Bench-1' local "$r"
done
