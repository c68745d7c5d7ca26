#!/usr/bin/env bash
# Run every cargo-fuzz target for FUZZ_SECONDS (default 30, what CI runs; locally try
# FUZZ_SECONDS=3600). Extra arguments name targets to run instead of all of them.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/crash-...
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
# Sanitizer builds use other flags than the workspace's; a target dir of their own keeps them
# from invalidating the shared build cache.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/ron-ledger-fuzz-target}"
# cargo-fuzz needs nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP lets the pinned stable
# toolchain accept them.
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

for target in "${targets[@]}"; do
    echo "== fuzz ${target} for ${seconds}s"
    (cd fuzz && cargo fuzz run "${target}" -- -max_total_time="${seconds}")
done
