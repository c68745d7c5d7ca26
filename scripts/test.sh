#!/usr/bin/env bash
# Runs ron-ledger's test suite. This is the README's test command:
#
#     bash scripts/test.sh [extra args for the first `cargo test`]
#
# On a fresh Debian 12 machine it first installs what the tests need:
#   - clang + libclang-dev (the rocksdb crate builds C++ and runs bindgen),
#   - the rustfmt and clippy toolchain components (used by .ci/run).
# Then it runs every unit, integration and property test, followed by the doctests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- install step --------------------------------------------------------------------------

# Run a command as root: directly if we are root, through sudo if it exists, else fail clearly.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "test.sh: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

have_libclang() {
    compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null \
        || dpkg -s libclang-dev >/dev/null 2>&1
}

if ! command -v clang >/dev/null 2>&1 || ! have_libclang; then
    echo "test.sh: installing clang and libclang-dev (needed to build rocksdb)" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y clang libclang-dev
fi

if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "test.sh: adding the rustfmt and clippy components" >&2
    rustup component add rustfmt clippy
fi

# --- tests ---------------------------------------------------------------------------------

# A fixed target dir outside the checkout, so a warm machine reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"

# The multi-process tests (tests/) run the real `ron-ledger` and `ronctl` executables: build them
# first, so the tests never run a stale binary.
cargo build --workspace --bins
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
