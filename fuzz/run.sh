#!/usr/bin/env bash
# Runs every fuzz target in fuzz/fuzz_targets/ for a bounded time each:
#   fuzz/run.sh [seconds-per-target]     (default 20)
# Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the nightly-only sanitizer flags.
# Corpora grow in fuzz/corpus/<target>/ (not committed); seeds/<target>/ holds seed inputs.
# A crash stops the run with cargo-fuzz's report (artifact in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }
for f in fuzz_targets/*.rs; do
  t="$(basename "$f" .rs)"
  mkdir -p "corpus/$t"
  seeds=()
  [[ -d "seeds/$t" ]] && seeds=("seeds/$t")
  echo "== fuzz $t for ${secs}s"
  cargo fuzz run "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$secs" -max_len=20000 -rss_limit_mb=2048
done
echo "fuzz: every target ran ${secs}s without a crash"
