#!/usr/bin/env bash
# Recovery benchmark: a one-node cluster on RocksDB (release build, TLS, capabilities, fsync)
# is loaded with TRANSFERS committed transfers (default 10,000,000) through `ronctl bench`,
# SIGKILLed, and restarted on the same data directory; it reports the time from the restart to
# the first linearizable read answered (an account written before the kill, read back with its
# balance), the process's RSS before the kill and after the read, and the data directory's size
# per million transfers. Results go in docs/BENCHMARKS.md.
#
#     bash scripts/recovery-bench.sh                 # 10M transfers: ~3 minutes of load here
#     TRANSFERS=1000000 bash scripts/recovery-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TRANSFERS="${TRANSFERS:-10000000}"
WORK="${WORK:-/tmp/ron-recovery}"
PORT="${PORT:-37501}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
cargo build --release -p node -p client --bins
BIN="$CARGO_TARGET_DIR/release"

rm -rf "$WORK"
mkdir -p "$WORK"
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; true' EXIT
# shellcheck source=scripts/dev-cluster.sh
source scripts/dev-cluster.sh
rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
now() { date +%s.%N; }

start() {
    dev_cluster_start "$WORK/dev" "$PORT" 1
    pid=$DEV_PID
}
# Poll until a linearizable read of account 1 answers with the balance written before the kill.
read_back() {
    for _ in $(seq 1 1200); do
        if out=$("$BIN/ronctl" --seeds "$SEEDS" --json account get 1 2>/dev/null) \
            && grep -q "\"credits_posted\": *\"$1\"" <<<"$out"; then
            return 0
        fi
        sleep 0.05
    done
    echo "recovery-bench: no linearizable read within 60 s; see $WORK/dev.log" >&2
    exit 1
}

start
dev_cluster_wait
"$BIN/ronctl" --seeds "$SEEDS" account create --id 1 --ledger 1 --code 1 >/dev/null
"$BIN/ronctl" --seeds "$SEEDS" account create --id 2 --ledger 1 --code 1 >/dev/null
"$BIN/ronctl" --seeds "$SEEDS" transfer create --id 1 --debit 2 --credit 1 --amount 77 --ledger 1 --code 1 >/dev/null
echo "recovery-bench: loading $TRANSFERS transfers" >&2
"$BIN/ronctl" --seeds "$SEEDS" bench --transfers "$TRANSFERS" --batch 8190 --concurrency 8 \
    --accounts 10000 --out "$WORK/load.json" >/dev/null 2>"$WORK/load.err" \
    || { cat "$WORK/load.err" >&2; exit 1; }
read_back 77
rss_loaded=$(rss_mib "$pid")
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
disk_bytes=$(du -sb "$WORK/dev" | cut -f1)

t0=$(now)
start
read_back 77
t1=$(now)
rss_restarted=$(rss_mib "$pid")
python3 - "$WORK/load.json" "$TRANSFERS" "$t0" "$t1" "$rss_loaded" "$rss_restarted" "$disk_bytes" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
n = int(sys.argv[2]); t0, t1 = float(sys.argv[3]), float(sys.argv[4])
rss_l, rss_r, disk = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
print(json.dumps({"transfers": n, "load_transfers_per_second": round(load["transfers_per_second"]),
                  "restart_to_linearizable_read_s": round(t1 - t0, 2),
                  "rss_mib_loaded": rss_l, "rss_mib_after_restart": rss_r,
                  "disk_mib": round(disk / 2**20), "disk_mib_per_million": round(disk / 2**20 / (n / 1e6), 1)}))
PY
