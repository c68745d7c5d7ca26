#!/usr/bin/env bash
# The long simulation run: seeds FROM..TO (default 1..10000) of the standard scenario
# (`sim --seed N`, exactly what CI runs for seeds 1..100, with every fault and checker), a few
# processes at a time, resumable.
#
#     bash scripts/sim-long.sh [FROM [TO]]
#
# Every finished seed is appended to the state file as one line,
#     <seed> ok|FAIL <seconds> <acked> <applied> <installs> <state entries lost to power losses>
# and a seed already in it is skipped, so running the same command again resumes where an
# interrupted run stopped (a seed cut off mid-run, killed by a signal, is not recorded and is
# simply run again). A failing seed's whole
# output, with its replay command, goes to fail-<seed>.txt next to the state file, and a line
# `FAIL seed N: ...` plus the replay command is printed as it happens. At the end, a summary:
# seeds done, failures, the summed and the wall time.
#
# Environment:
#   SIM_JOBS   processes at once (default 2)
#   SIM_DIR    where the state file and failure outputs go (default target/sim-long)
#   SIM_HOURS  stop starting new seeds after this many hours (default: no limit)
#   SIM_NICE   niceness of the runs (default 19: the run yields to everything else)
#   SIM_BIN    a `sim` binary to use instead of building one (`cargo build -p sim --release`)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
FROM=${1:-1}
TO=${2:-10000}
JOBS=${SIM_JOBS:-2}
DIR=${SIM_DIR:-target/sim-long}
NICE=${SIM_NICE:-19}
STATE="$DIR/seeds.txt"
mkdir -p "$DIR"
touch "$STATE"

if [[ -z "${SIM_BIN:-}" ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
    cargo build -p sim --release >&2
    SIM_BIN="$CARGO_TARGET_DIR/release/sim"
fi
DEADLINE=0
if [[ -n "${SIM_HOURS:-}" ]]; then
    DEADLINE=$(awk -v h="$SIM_HOURS" -v now="$(date +%s)" 'BEGIN { printf "%d", now + h * 3600 }')
fi
export SIM_BIN STATE DIR NICE DEADLINE

# One seed: run it, record it (one short line, appended atomically), report a failure.
run_one() {
    local seed=$1
    if (( DEADLINE > 0 && $(date +%s) >= DEADLINE )); then
        return 0
    fi
    local start end out rc secs
    start=$(date +%s.%N)
    rc=0
    out=$(nice -n "$NICE" "$SIM_BIN" --seed "$seed" 2>&1) || rc=$?
    end=$(date +%s.%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    field() { sed -n "s/^ *$1: \([0-9]*\),\$/\1/p" <<<"$out" | head -1; }
    if (( rc > 128 )); then
        # Killed by a signal (the run was interrupted): not a result; a resume runs it again.
        echo "seed $seed interrupted (exit $rc), not recorded" >&2
        return 0
    fi
    if (( rc == 0 )); then
        echo "$seed ok $secs $(field acked) $(field applied) $(field installs) $(field state_entries_lost)" >>"$STATE"
    else
        printf '%s\n' "$out" >"$DIR/fail-$seed.txt"
        echo "$seed FAIL $secs" >>"$STATE"
        echo "FAIL seed $seed (exit $rc): $(grep -m1 'failed: ' <<<"$out" || head -1 <<<"$out")"
        echo "  replay: cargo run -p sim --release -- --seed $seed   (output: $DIR/fail-$seed.txt)"
    fi
}
export -f run_one

started=$(date +%s)
todo=$(seq "$FROM" "$TO" | awk 'FILENAME == ARGV[1] { done[$1] = 1; next } !($1 in done)' "$STATE" -)
echo "sim-long: seeds $FROM..$TO, $(wc -w <<<"$todo") to run, $JOBS at a time, state in $STATE" >&2
if [[ -n "$todo" ]]; then
    # xargs' exit status is 123 when any run failed; the summary below says which.
    xargs -P "$JOBS" -n 1 bash -c 'run_one "$0"' <<<"$todo" || true
fi

awk -v from="$FROM" -v to="$TO" -v wall=$(( $(date +%s) - started )) '
    $1 >= from && $1 <= to { n++; t += $3; if ($2 == "FAIL") { f++; bad = bad " " $1 } }
    END {
        printf "sim-long: %d of %d seeds done, %d failed%s; %.0f s of runs, this invocation %d s of wall time\n",
            n, to - from + 1, f, (f ? " (seeds" bad ")" : ""), t, wall
    }' "$STATE"
if grep -q ' FAIL ' "$STATE"; then
    exit 1
fi
