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

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
echo "start.sh: building ron-ledger and ronctl (a cold build takes about 9 minutes on 2 cores, most of it RocksDB)" >&2
cargo build -p node -p client --bins
exec "$CARGO_TARGET_DIR/debug/ron-ledger" dev "$@"
