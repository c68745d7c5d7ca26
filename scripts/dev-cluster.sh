# Sourced by the benchmark scripts: start `ron-ledger dev` (TLS, mutual TLS, capabilities, fsync)
# and wait until `ronctl` can reach it. Needs BIN (the directory holding `ron-ledger` and
# `ronctl`); DEV_PLAINTEXT=1 starts it with `--insecure-plaintext` (no TLS; capabilities stay on).
# After `dev_cluster_start DIR PORT [NODES]`: DEV_PID is the process, SEEDS its
# client addresses, and RONCTL_CA/CERT/KEY/TOKEN_FILE are exported for `ronctl`; its output
# goes to DIR.log. The caller owns stopping it (its EXIT trap kills DEV_PID).
# shellcheck shell=bash

dev_cluster_start() {
    local dir="$1" port="$2" nodes="${3:-3}"
    "$BIN/ron-ledger" dev --nodes "$nodes" --data-dir "$dir" --base-port "$port" \
        ${DEV_PLAINTEXT:+--insecure-plaintext} >>"$dir.log" 2>&1 &
    DEV_PID=$!
    export RONCTL_TOKEN_FILE="$dir/auth/admin.token"
    if [ -n "${DEV_PLAINTEXT:-}" ]; then
        unset RONCTL_CA RONCTL_CERT RONCTL_KEY
    else
        export RONCTL_CA="$dir/pki/ca.pem" RONCTL_CERT="$dir/pki/client.pem" \
            RONCTL_KEY="$dir/pki/client.key"
    fi
    SEEDS=""
    local i
    for ((i = 0; i < nodes; i++)); do
        SEEDS+="${SEEDS:+,}127.0.0.1:$((port + i))"
    done
    DEV_LOG="$dir.log"
}

# Wait (up to 60 s) until the cluster answers `ronctl cluster status`; exit 1 with its log if it
# does not, or if the process died.
dev_cluster_wait() {
    local _
    for _ in $(seq 1 120); do
        if [ -f "$RONCTL_TOKEN_FILE" ] && "$BIN/ronctl" --seeds "$SEEDS" cluster status >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$DEV_PID" 2>/dev/null; then
            echo "dev-cluster: ron-ledger dev exited; its log ($DEV_LOG):" >&2
            tail -n 40 "$DEV_LOG" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "dev-cluster: the cluster did not answer within 60 s; see $DEV_LOG" >&2
    exit 1
}

# BIN for a benchmark: BIN_DIR's `ron-ledger` and `ronctl` when it is set (an A/B comparison,
# no build), else a release build of them. NAME prefixes the message.
release_bins() {
    if [ -n "${BIN_DIR:-}" ]; then
        BIN="$BIN_DIR"
    else
        echo "$1: building (release)" >&2
        cargo build --release -p node -p client --bins >&2
        BIN="$CARGO_TARGET_DIR/release"
    fi
}
