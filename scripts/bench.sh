#!/usr/bin/env bash
# Side-by-side benchmark: ron-ledger's 3-node dev cluster (release build, TLS 1.3 + mutual TLS +
# capabilities, every log append fsynced; state writes ride the same WAL) against a 3-member etcd cluster (Debian's
# etcd-server, WAL fsync on, loopback), driven in the same run, one after the other per load,
# with the same number of requests in flight: `ronctl bench` for ron-ledger, bench/etcd-load
# (256-byte puts through the etcd-client crate) for etcd. Prints each load's figures and ratio,
# and the medians over RUNS runs; raw JSON lines go to $OUT (default /tmp/ron-bench/results.jsonl).
#
#     bash scripts/bench.sh              # RUNS=3, the full matrix (~17 minutes here)
#     RUNS=1 LOADS="1x1 1x64" bash scripts/bench.sh
#
# A load is BATCHxCONCURRENCY (transfers per request x requests in flight); etcd always puts one
# key per request at the same concurrency. Results and the machine go in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS="${RUNS:-3}"
LOADS="${LOADS:-1x1 1x64 10x64 100x8 1000x8 8190x8}"
WORK="${WORK:-/tmp/ron-bench}"
OUT="${OUT:-$WORK/results.jsonl}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev) # its well-known types
if [ "${#need[@]}" -gt 0 ]; then
    echo "bench.sh: installing ${need[*]}" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

echo "bench.sh: building (release)" >&2
cargo build --release -p node -p client --bins
cargo build --release --manifest-path bench/etcd-load/Cargo.toml
BIN="$CARGO_TARGET_DIR/release"

rm -rf "$WORK"
mkdir -p "$WORK"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Transfers (ron-ledger) and puts (etcd) per run of a load: each takes a few seconds here.
count_for() {
    case "$1" in
        1x1) echo 1500 ;; 1x*) echo 8000 ;; 10x*) echo 40000 ;; 100x*) echo 60000 ;;
        1000x*) echo 150000 ;; *) echo 300000 ;;
    esac
}
puts_for() {
    case "$1" in
        1) echo 1500 ;; *) echo 15000 ;;
    esac
}

# The disk, as fsync-heavy systems see it: fdatasync of 4 KiB and of 1 MiB, p50 in ms.
python3 scripts/disk-probe.py "$WORK" | tee -a "$OUT"

echo "bench.sh: starting ron-ledger dev (3 nodes, TLS, capabilities) and etcd (3 members)" >&2
# shellcheck source=scripts/dev-cluster.sh
source scripts/dev-cluster.sh
dev_cluster_start "$WORK/ron" 37001
pids+=("$DEV_PID")
cluster=""
for i in 1 2 3; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:2${i}380"
done
for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$WORK/etcd$i" \
        --listen-client-urls "http://127.0.0.1:2${i}379" --advertise-client-urls "http://127.0.0.1:2${i}379" \
        --listen-peer-urls "http://127.0.0.1:2${i}380" --initial-advertise-peer-urls "http://127.0.0.1:2${i}380" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token ron-bench \
        >"$WORK/etcd$i.log" 2>&1 &
    pids+=($!)
done
ETCD=127.0.0.1:21379,127.0.0.1:22379,127.0.0.1:23379
dev_cluster_wait
ready=0
for _ in $(seq 1 120); do
    if "$BIN/etcd-load" --endpoints "$ETCD" --puts 1 >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.5
done
[ "$ready" = 1 ] || { echo "bench.sh: etcd did not come up; see $WORK/etcd*.log" >&2; exit 1; }

for run in $(seq 1 "$RUNS"); do
    for load in $LOADS; do
        batch="${load%x*}"
        conc="${load#*x}"
        "$BIN/ronctl" --seeds "$SEEDS" bench --transfers "$(count_for "$load")" --batch "$batch" \
            --concurrency "$conc" --accounts 10000 --out "$WORK/ron.json" >/dev/null
        "$BIN/etcd-load" --endpoints "$ETCD" --puts "$(puts_for "$conc")" --concurrency "$conc" \
            >"$WORK/etcd.json"
        python3 - "$run" "$load" "$WORK/ron.json" "$WORK/etcd.json" <<'PY' | tee -a "$OUT"
import json, sys
ron = json.load(open(sys.argv[3])); etcd = json.load(open(sys.argv[4]))
print(json.dumps({"run": int(sys.argv[1]), "load": sys.argv[2], "ron": ron, "etcd": etcd,
                  "ratio": ron["transfers_per_second"] / etcd["puts_per_sec"]}))
PY
    done
done

python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
disk = next(r["disk"] for r in rows if "disk" in r)
print(f"\ndisk: fdatasync 4 KiB p50 {disk['fdatasync_4k_p50_ms']} ms, 1 MiB p50 {disk['fdatasync_1m_p50_ms']} ms")
print("| load (batch x in flight) | ron-ledger transfers/s | p50 / p99 ms | etcd puts/s | p50 / p99 ms | ratio |")
print("|---|---|---|---|---|---|")
loads = []
for r in rows:
    if "load" in r and r["load"] not in loads:
        loads.append(r["load"])
for load in loads:
    rs = [r for r in rows if r.get("load") == load]
    m = lambda f: st.median(f(r) for r in rs)
    print(f"| {load} | {m(lambda r: r['ron']['transfers_per_second']):,.0f} "
          f"| {m(lambda r: r['ron']['request_latency_ms']['p50']):.2f} / {m(lambda r: r['ron']['request_latency_ms']['p99']):.1f} "
          f"| {m(lambda r: r['etcd']['puts_per_sec']):,.0f} "
          f"| {m(lambda r: r['etcd']['p50_ms']):.2f} / {m(lambda r: r['etcd']['p99_ms']):.1f} "
          f"| {m(lambda r: r['ratio']):.2f}x |")
print(f"(medians of {max(r.get('run', 0) for r in rows)} runs)")
PY
