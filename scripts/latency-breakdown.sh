#!/usr/bin/env bash
# Where a single transfer's commit latency goes: one transfer per request, one request in
# flight (`ronctl bench --batch 1 --concurrency 1`), against the dev cluster in four shapes —
# 3 nodes or 1 node, TLS 1.3 + mutual TLS or cleartext (capabilities and fsync always on) — one
# after the other in the same run, ROUNDS times, and the disk's fdatasync of 4 KiB. The
# differences are the napkin math: 3 nodes − 1 node = replication (a round trip to a follower
# and its fsync); TLS − cleartext = TLS; the 1-node cleartext figure minus one fsync = the
# node's own per-request path (HTTP, capability check, sequencing, openraft, apply).
#
#     bash scripts/latency-breakdown.sh          # ROUNDS=3, TRANSFERS=1000 per shape and round
#     BIN_DIR=/tmp/a bash scripts/latency-breakdown.sh   # ron-ledger and ronctl from /tmp/a
# Results go in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS="${ROUNDS:-3}"
TRANSFERS="${TRANSFERS:-1000}"
WORK="${WORK:-/tmp/ron-latency}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
# shellcheck source=scripts/dev-cluster.sh
source scripts/dev-cluster.sh
release_bins latency-breakdown
rm -rf "$WORK"
mkdir -p "$WORK"
DEV_PID=""
trap '[ -n "$DEV_PID" ] && kill "$DEV_PID" 2>/dev/null; true' EXIT

python3 scripts/disk-probe.py "$WORK" >"$WORK/disk.json"

# CPU ticks (utime + stime) of the cluster process and its threads' context switches.
proc_counters() {
    local ticks switches
    ticks=$(awk '{ print $14 + $15 }' "/proc/$DEV_PID/stat")
    switches=$(cat /proc/"$DEV_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s }')
    echo "$ticks $switches"
}

port=38301
for round in $(seq 1 "$ROUNDS"); do
    for shape in 3-tls 1-tls 3-plain 1-plain; do
        nodes="${shape%-*}"
        dir="$WORK/$shape-$round"
        if [ "${shape#*-}" = plain ]; then DEV_PLAINTEXT=1; else DEV_PLAINTEXT=""; fi
        port=$((port + 5)) # a fresh port per cluster: no wait for the last one's sockets
        dev_cluster_start "$dir" "$port" "$nodes"
        dev_cluster_wait
        # The accounts first (one request), so the counters below see only the transfers.
        "$BIN/ronctl" --seeds "$SEEDS" bench --transfers 100 --batch 1 --concurrency 1 \
            --accounts 1000 >/dev/null 2>"$dir.err" || { cat "$dir.err" >&2; exit 1; }
        before="$(proc_counters)"
        "$BIN/ronctl" --seeds "$SEEDS" bench --transfers "$TRANSFERS" --batch 1 --concurrency 1 \
            --accounts 1000 --out "$dir.json" >/dev/null 2>"$dir.err" || { cat "$dir.err" >&2; exit 1; }
        echo "$before $(proc_counters)" >"$dir.proc"
        kill "$DEV_PID"
        wait "$DEV_PID" 2>/dev/null || true
        DEV_PID=""
        rm -rf "$dir"
    done
done

python3 - "$WORK" "$ROUNDS" <<'PY'
import json, os, statistics as st, sys
work, rounds = sys.argv[1], int(sys.argv[2])
disk = json.load(open(f"{work}/disk.json"))
print(f"disk: fdatasync 4 KiB p50 {disk['disk']['fdatasync_4k_p50_ms']} ms")
hz = os.sysconf("SC_CLK_TCK")
print("| shape | p50 ms (median of rounds) | p99 ms | transfers/s | CPU µs per request (all nodes) | context switches per request |")
print("|---|---|---|---|---|---|")
for shape in ["3-tls", "1-tls", "3-plain", "1-plain"]:
    rs = [json.load(open(f"{work}/{shape}-{r}.json")) for r in range(1, rounds + 1)]
    ps = [list(map(int, open(f"{work}/{shape}-{r}.proc").read().split())) for r in range(1, rounds + 1)]
    m = lambda f: st.median(f(r) for r in rs)
    cpu = st.median((p[2] - p[0]) / hz * 1e6 / r["requests"] for p, r in zip(ps, rs))
    cs = st.median((p[3] - p[1]) / r["requests"] for p, r in zip(ps, rs))
    print(f"| {shape} | {m(lambda r: r['request_latency_ms']['p50']):.2f} "
          f"| {m(lambda r: r['request_latency_ms']['p99']):.2f} | {m(lambda r: r['transfers_per_second']):.0f} "
          f"| {cpu:.0f} | {cs:.1f} |")
PY
