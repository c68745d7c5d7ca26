#!/usr/bin/env bash
# The seed's SLO: commit latency p95 ≤ 80 ms and p99 ≤ 150 ms at 80 % of peak throughput, on the
# 3-node dev cluster (release build, TLS, mutual TLS, capabilities, fsync).
#   1. peak: `ronctl bench` closed loop at LOAD (BATCHxCONCURRENCY, default 1000x8);
#   2. SLO load: `ronctl bench --rate` open loop at SHARE (default 0.8) of that peak for about
#      SECONDS (default 20), up to 4× the concurrency in flight, latency counted from each
#      request's due time;
#   3. the leader's `committer_batch_latency_seconds` (proposing an entry → applied), scraped
#      from every node's /metrics before and after step 2; its p95/p99 are read off the
#      histogram's buckets (upper bounds: the buckets are 40, 80, 150, 300 ms …), and the share of
#      entries within 80 and 150 ms is exact, since those are bucket bounds.
# RATE=N offers N transfers/s in step 2 instead of SHARE of the peak (step 1 still runs, as the
# warm-up that brings the store to the same state), to compare builds at one offered load;
# BIN_DIR=DIR runs ron-ledger and ronctl from DIR instead of building them.
# Prints one JSON line. Results go in docs/BENCHMARKS.md.
#
#     bash scripts/slo-bench.sh
#     LOAD=100x8 SHARE=0.8 SECONDS_AT_LOAD=30 bash scripts/slo-bench.sh
#     BIN_DIR=/tmp/a RATE=30000 bash scripts/slo-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LOAD="${LOAD:-1000x8}"
SHARE="${SHARE:-0.8}"
SECONDS_AT_LOAD="${SECONDS_AT_LOAD:-20}"
WORK="${WORK:-/tmp/ron-slo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
batch="${LOAD%x*}"
conc="${LOAD#*x}"

# shellcheck source=scripts/dev-cluster.sh
source scripts/dev-cluster.sh
release_bins slo-bench.sh

rm -rf "$WORK"
mkdir -p "$WORK"
dev_cluster_start "$WORK/ron" 38101
trap 'kill $DEV_PID 2>/dev/null || true; wait $DEV_PID 2>/dev/null || true' EXIT
dev_cluster_wait

bench() {
    "$BIN/ronctl" --seeds "$SEEDS" bench --accounts 10000 --batch "$batch" "$@" \
        >/dev/null 2>"$WORK/bench.err" || { cat "$WORK/bench.err" >&2; exit 1; }
}
scrape() {
    local out="$1" port
    : >"$out"
    for port in ${SEEDS//,/ }; do
        curl -sf --cacert "$RONCTL_CA" --cert "$RONCTL_CERT" --key "$RONCTL_KEY" \
            "https://$port/metrics" | grep '^committer_batch_latency_seconds_bucket' >>"$out" || true
    done
}

echo "slo-bench: peak at $LOAD (closed loop)" >&2
bench --transfers $((batch * conc * 40)) --concurrency "$conc" --out "$WORK/peak.json"
peak=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transfers_per_second"])' "$WORK/peak.json")
rate="${RATE:-$(python3 -c "print(round($peak * $SHARE))")}"
transfers=$(python3 -c "print(max($batch, round($rate * $SECONDS_AT_LOAD / $batch) * $batch))")
echo "slo-bench: peak $peak transfers/s; offering $rate/s for $transfers transfers (open loop)" >&2
scrape "$WORK/before.txt"
bench --transfers "$transfers" --concurrency $((conc * 4)) --rate "$rate" --out "$WORK/slo.json"
scrape "$WORK/after.txt"

python3 - "$WORK" "$LOAD" "$SHARE" <<'PY'
import json, re, sys
from collections import defaultdict
work, load = sys.argv[1], sys.argv[2]
def buckets(path):
    b = defaultdict(float)
    for line in open(path):
        m = re.match(r'committer_batch_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            b[float("inf") if m[1] == "+Inf" else float(m[1])] += float(m[2])
    return b
before, after = buckets(f"{work}/before.txt"), buckets(f"{work}/after.txt")
delta = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
total = delta[-1][1] if delta else 0.0
def upper(q):
    for le, n in delta:
        if total and n >= q * total:
            return le * 1000
    return None
within = lambda le: round(dict(delta).get(le, 0.0) / total, 4) if total else None
peak, slo = json.load(open(f"{work}/peak.json")), json.load(open(f"{work}/slo.json"))
print(json.dumps({
    "load": load, "peak_transfers_per_second": round(peak["transfers_per_second"]),
    "share_of_peak": round(slo["offered_rate"] / peak["transfers_per_second"], 3),
    "offered": slo["offered_rate"],
    "achieved_transfers_per_second": round(slo["transfers_per_second"]),
    "client_latency_ms": slo["request_latency_ms"], "not_ok": slo["not_ok"],
    "committer_entries": total,
    "committer_p95_ms_at_most": upper(0.95), "committer_p99_ms_at_most": upper(0.99),
    "committer_within_80ms": within(0.08), "committer_within_150ms": within(0.15),
}))
PY
