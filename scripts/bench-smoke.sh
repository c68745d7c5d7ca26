#!/usr/bin/env bash
# CI's performance guard (seconds, not minutes): the 3-node dev cluster (TLS, mutual TLS,
# capabilities, fsync) against its own apply core, measured in the same run with the same
# build, so a slower machine moves both and the ratio stays. Three alternating rounds of
#   - `apply_bench --only core`: the deterministic apply core, one thread, in memory;
#   - `ronctl bench`: the same number of transfers committed through the cluster;
# and the median of cluster/core. It fails when that ratio falls below MIN_RATIO — the
# documented factor (docs/BENCHMARKS.md, "Smoke guard"): half the median measured when the
# guard was set, so noise passes and losing half the cluster path's speed does not.
#
#     bash scripts/bench-smoke.sh            # debug build (what CI has built already)
#     PROFILE=release bash scripts/bench-smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROFILE="${PROFILE:-debug}"
MIN_RATIO="${MIN_RATIO:-0.05}"
TRANSFERS="${TRANSFERS:-20000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
flag=()
[ "$PROFILE" = release ] && flag=(--release)
cargo build "${flag[@]}" -p node -p client --bins
cargo build "${flag[@]}" -p raft-store --example apply_bench
BIN="$CARGO_TARGET_DIR/$PROFILE"

work="$(mktemp -d)"
port=$((38000 + RANDOM % 500))
"$BIN/ron-ledger" dev --data-dir "$work/dev" --base-port "$port" >"$work/dev.log" 2>&1 &
dev=$!
trap 'kill $dev 2>/dev/null || true; wait $dev 2>/dev/null || true; rm -rf "$work"' EXIT
export RONCTL_CA="$work/dev/pki/ca.pem" RONCTL_CERT="$work/dev/pki/client.pem" \
    RONCTL_KEY="$work/dev/pki/client.key" RONCTL_TOKEN_FILE="$work/dev/auth/admin.token"
seeds="127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
for _ in $(seq 1 240); do
    [ -f "$RONCTL_TOKEN_FILE" ] && "$BIN/ronctl" --seeds "$seeds" cluster status >/dev/null 2>&1 && break
    kill -0 "$dev" 2>/dev/null || { cat "$work/dev.log" >&2; exit 1; }
    sleep 0.5
done

ratios=()
for round in 1 2 3; do
    core=$("$BIN/examples/apply_bench" --only core --batches 10 --events 2000 --accounts 1000 \
        | awk '/^core/ { for (i = 1; i <= NF; i++) if ($i == "=") print $(i + 1) }')
    "$BIN/ronctl" --seeds "$seeds" bench --transfers "$TRANSFERS" --batch 1000 --concurrency 4 \
        --accounts 1000 --out "$work/bench.json" >/dev/null
    cluster=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transfers_per_second"])' "$work/bench.json")
    ratio=$(python3 -c "print(f'{$cluster / $core:.4f}')")
    printf 'bench-smoke: round %s: core %.0f transfers/s, cluster %.0f transfers/s, ratio %s\n' \
        "$round" "$core" "$cluster" "$ratio"
    ratios+=("$ratio")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | sed -n 2p)
echo "bench-smoke: median ratio cluster/core $median (minimum $MIN_RATIO, $PROFILE build)"
if python3 -c "import sys; sys.exit(0 if $median >= $MIN_RATIO else 1)"; then
    echo "bench-smoke: ok"
else
    echo "bench-smoke: the cluster path is slower than MIN_RATIO of its own apply core: a regression" >&2
    exit 1
fi
