#!/usr/bin/env bash
# CI's performance guard (about a minute): the 3-node dev cluster (TLS, mutual TLS,
# capabilities, fsync) against its own apply core, measured in the same run with the same
# build, so a slower machine moves both and the ratio stays. Alternating rounds of
#   - `apply_bench --only core`: the deterministic apply core, one thread, in memory;
#   - `ronctl bench`: the same number of transfers committed through the cluster;
# and the median of ROUNDS (5) rounds of cluster/core. It fails when that ratio falls below
# MIN_RATIO (0.012) — the documented factor (docs/BENCHMARKS.md, "Smoke guard"): under half the
# medians measured when it was last set (0.0259–0.0337, after the apply core became ~2.5× faster
# in debug builds on 2026-12-07) and below every single round seen (0.0202–0.0404), so noise
# passes and losing more than about half the cluster path's speed against the apply core does
# not. A change that makes the apply core itself faster lowers the ratio: recalibrate then.
# About a minute in a debug build.
#
#     bash scripts/bench-smoke.sh            # debug build (what CI has built already)
#     PROFILE=release bash scripts/bench-smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROFILE="${PROFILE:-debug}"
MIN_RATIO="${MIN_RATIO:-0.012}"
TRANSFERS="${TRANSFERS:-20000}"
ROUNDS="${ROUNDS:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
flag=()
[ "$PROFILE" = release ] && flag=(--release)
cargo build "${flag[@]}" -p node -p client --bins
cargo build "${flag[@]}" -p raft-store --example apply_bench
BIN="$CARGO_TARGET_DIR/$PROFILE"

# shellcheck source=scripts/dev-cluster.sh
source scripts/dev-cluster.sh
work="$(mktemp -d)"
dev_cluster_start "$work/dev" $((38000 + RANDOM % 500))
trap 'kill $DEV_PID 2>/dev/null || true; wait $DEV_PID 2>/dev/null || true; rm -rf "$work"' EXIT
dev_cluster_wait

ratios=()
for round in $(seq 1 "$ROUNDS"); do
    core=$("$BIN/examples/apply_bench" --only core --batches 10 --events 2000 --accounts 1000 \
        | awk '/^core/ { for (i = 1; i <= NF; i++) if ($i == "=") print $(i + 1) }')
    "$BIN/ronctl" --seeds "$SEEDS" bench --transfers "$TRANSFERS" --batch 1000 --concurrency 4 \
        --accounts 1000 --out "$work/bench.json" >/dev/null 2>"$work/bench.err" \
        || { cat "$work/bench.err" >&2; exit 1; }
    cluster=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transfers_per_second"])' "$work/bench.json")
    ratio=$(python3 -c "print(f'{$cluster / $core:.4f}')")
    printf 'bench-smoke: round %s: core %.0f transfers/s, cluster %.0f transfers/s, ratio %s\n' \
        "$round" "$core" "$cluster" "$ratio"
    ratios+=("$ratio")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | sed -n "$(((ROUNDS + 1) / 2))p")
echo "bench-smoke: median ratio cluster/core $median (minimum $MIN_RATIO, $PROFILE build)"
if python3 -c "import sys; sys.exit(0 if $median >= $MIN_RATIO else 1)"; then
    echo "bench-smoke: ok"
else
    echo "bench-smoke: the cluster path is slower than MIN_RATIO of its own apply core: a regression" >&2
    exit 1
fi
