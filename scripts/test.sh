#!/usr/bin/env bash
# The README's test command: installs the peers the test suite runs when this machine lacks
# them (Debian packages, PyPI packages), then runs the whole suite. Extra arguments go to
# `cargo test` (for example `scripts/test.sh -p ferrocore --test e2e scep`).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Debian packages, by the command each provides.
declare -A pkg_of=(
  [openssl]=openssl [curl]=curl [faketime]=faketime [nginx]=nginx [haproxy]=haproxy
  [certmonger]=certmonger [scepclient]=scep [ip]=iproute2 [unshare]=util-linux [sqlite3]=sqlite3
)
need=()
for cmd in "${!pkg_of[@]}"; do
  command -v "$cmd" >/dev/null || need+=("${pkg_of[$cmd]}")
done
# Directory tests: a Samba AD DC and OpenLDAP's slapd (e2e directory::), with their tools.
for pkg in samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools slapd ldap-utils; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: missing ${need[*]}; run as root or install them: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# OpenSSL's legacy provider (the portal tests export a -legacy PKCS#12, as older Apple OSes
# read): part of libssl3 on Debian 12, its own package on Debian 13.
if ! openssl list -providers -provider legacy >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl-provider-legacy \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall libssl3
fi

# PyYAML: Apple's profile schemas, read by check_payload.py (ferrocore-apple's profile tests).
if ! python3 -c 'import yaml' 2>/dev/null; then
  python3 -m pip install -q pyyaml || python3 -m pip install -q --break-system-packages pyyaml
fi

# PyScep (SCEP e2e) and its dependencies; oscrypto 1.3.0 misreads OpenSSL 3.0.x version
# strings ("3.0.11"), so its version regex is widened the same way on every machine.
if ! python3 -c 'import scep, oscrypto' 2>/dev/null; then
  python3 -m pip install -q pyscep requests asn1crypto oscrypto certbuilder csrbuilder cryptography \
    || python3 -m pip install -q --break-system-packages pyscep requests asn1crypto oscrypto certbuilder csrbuilder cryptography
fi
oscrypto_dir="$(python3 -c 'import os, oscrypto; print(os.path.dirname(oscrypto.__file__))')"
for f in "$oscrypto_dir"/_openssl/_libcrypto_cffi.py "$oscrypto_dir"/_openssl/_libcrypto_ctypes.py; do
  [ -f "$f" ] && sed -i 's/\\\\d\\\\.\\\\d\\\\.\\\\d\[a-z\]\*/\\\\d+\\\\.\\\\d+\\\\.\\\\d+[a-z]*/' "$f"
done

exec cargo test --workspace --locked "$@"
