#!/usr/bin/env bash
# Starts ron-ledger's local 3-node cluster (the README's start command):
#
#     bash scripts/start.sh [extra args for `ron-ledger dev`, e.g. --data-dir DIR --base-port 7001]
#
# On a fresh Debian 12 machine it first installs what the build needs (clang + libclang-dev for
# RocksDB's bindings), builds the `ron-ledger` binary, then runs `ron-ledger dev` in the
# foreground: three nodes on 127.0.0.1 (client API 7001-7003, peers 7101-7103), data under
# ./ron-ledger-dev, until Ctrl-C stops them cleanly.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "start.sh: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

if ! command -v clang >/dev/null 2>&1 \
    || ! { compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null || dpkg -s libclang-dev >/dev/null 2>&1; }; then
    echo "start.sh: installing clang and libclang-dev (needed to build rocksdb)" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y clang libclang-dev
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
echo "start.sh: building ron-ledger (the first build compiles RocksDB: 7-13 minutes on 2 cores)" >&2
cargo build -p node --bin ron-ledger
exec "$CARGO_TARGET_DIR/debug/ron-ledger" dev "$@"
