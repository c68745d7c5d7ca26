#!/usr/bin/env bash
# Where the time goes: the 3-node dev cluster (release build, TLS + mutual TLS + capabilities,
# fsync on; one process holding all three nodes) under one `ronctl bench` load, measured from
# outside the process while the load runs:
#   - CPU time of the cluster process (utime + stime from /proc/PID/stat) per committed transfer,
#     summed over the three nodes, and of the load generator;
#   - bytes the process wrote to storage (/proc/PID/io write_bytes) per transfer;
#   - fdatasync/fsync calls (perf's syscall tracepoints) and Raft entries (the growth of
#     `ledger_applied_index`), so fsyncs per entry and transfers per entry;
#   - with PERF=1 (default), a call-graph profile (perf record) whose top symbols are printed.
#
#     bash scripts/profile.sh                 # LOAD=8190x8, 400,000 transfers
#     LOAD=1x64 TRANSFERS=20000 bash scripts/profile.sh
#     BIN_DIR=/tmp/a PERF=0 bash scripts/profile.sh   # ron-ledger and ronctl from /tmp/a
#
# Results and the napkin math built on them go in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LOAD="${LOAD:-8190x8}"
TRANSFERS="${TRANSFERS:-400000}"
PERF="${PERF:-1}"
WORK="${WORK:-/tmp/ron-profile}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
batch="${LOAD%x*}"
conc="${LOAD#*x}"

command -v perf >/dev/null 2>&1 || {
    echo "profile.sh: needs perf (apt-get install linux-perf)" >&2
    exit 1
}
# shellcheck source=scripts/dev-cluster.sh
source scripts/dev-cluster.sh
release_bins profile.sh

rm -rf "$WORK"
mkdir -p "$WORK"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

dev_cluster_start "$WORK/ron" 38001
node_pid=$DEV_PID
pids+=("$node_pid")
dev_cluster_wait

applied() {
    curl -s --cacert "$RONCTL_CA" --cert "$RONCTL_CERT" --key "$RONCTL_KEY" \
        https://127.0.0.1:38001/metrics | awk '$1 == "ledger_applied_index" { print $2 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
written() { awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io"; }

# Warm up (account creation, first connections), then measure.
"$BIN/ronctl" --seeds "$SEEDS" bench --transfers "$((batch * conc))" --batch "$batch" \
    --concurrency "$conc" --accounts 10000 >/dev/null

perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -x, -o "$WORK/syscalls.csv" \
    -p "$node_pid" &
stat_pid=$!
rec_pid=""
if [ "$PERF" = 1 ]; then
    perf record -F 499 -g -p "$node_pid" -o "$WORK/perf.data" >/dev/null 2>&1 &
    rec_pid=$!
fi
sleep 0.5 # perf attaches asynchronously; this only widens the measured window
a0=$(applied)
c0=$(cpu_ticks "$node_pid")
w0=$(written "$node_pid")
/usr/bin/time -f '%U %S' -o "$WORK/client.time" "$BIN/ronctl" --seeds "$SEEDS" bench \
    --transfers "$TRANSFERS" --batch "$batch" --concurrency "$conc" --accounts 10000 \
    --out "$WORK/bench.json" >/dev/null
c1=$(cpu_ticks "$node_pid")
w1=$(written "$node_pid")
a1=$(applied)
kill -INT "$stat_pid" ${rec_pid:+"$rec_pid"}
wait "$stat_pid" ${rec_pid:+"$rec_pid"} 2>/dev/null || true

python3 - "$WORK" "$LOAD" "$c0" "$c1" "$w0" "$w1" "$a0" "$a1" "$(getconf CLK_TCK)" <<'PY'
import json, sys, os
work, load = sys.argv[1], sys.argv[2]
c0, c1, w0, w1, a0, a1, hz = map(float, sys.argv[3:])
b = json.load(open(os.path.join(work, "bench.json")))
n = b["transfers"]
syncs = 0
for line in open(os.path.join(work, "syscalls.csv")):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0].isdigit():
        syncs += int(parts[0])
cu, cs = map(float, open(os.path.join(work, "client.time")).read().split())
entries = max(a1 - a0, 1)
print(json.dumps({
    "load": load, "transfers": n, "transfers_per_second": round(b["transfers_per_second"]),
    "request_p50_ms": b["request_latency_ms"]["p50"], "request_p99_ms": b["request_latency_ms"]["p99"],
    "cluster_cpu_us_per_transfer_3_nodes": round((c1 - c0) / hz * 1e6 / n, 2),
    "client_cpu_us_per_transfer": round((cu + cs) * 1e6 / n, 2),
    "bytes_written_per_transfer_3_nodes": round((w1 - w0) / n, 1),
    "raft_entries": int(entries), "transfers_per_entry": round(n / entries, 1),
    "fsyncs_3_nodes": syncs, "fsyncs_per_entry_3_nodes": round(syncs / entries, 2),
}, indent=1))
PY
if [ "$PERF" = 1 ]; then
    echo "--- top symbols (self time, whole process) ---"
    perf report -i "$WORK/perf.data" --no-children --sort symbol --percent-limit 1 --stdio 2>/dev/null \
        | grep -E '^ +[0-9]' | head -40
fi
