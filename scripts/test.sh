#!/usr/bin/env bash
# Runs ron-ledger's test suite. This is the README's test command:
#
#     bash scripts/test.sh [extra args for the first `cargo test`]
#
# On a fresh Debian 12 machine it first installs what the tests need:
#   - clang + libclang-dev (the rocksdb crate builds C++ and runs bindgen),
#   - the rustfmt and clippy toolchain components (used by .ci/run),
#   - promtool and systemd-analyze (tests/tests/deploy.rs checks the alert rules and the unit),
#   - chromium, chromium-driver and the console's npm packages (the web console's tests).
# Then it runs the console's verifier tests (node --test), every unit, integration and property
# test, followed by the doctests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- install step --------------------------------------------------------------------------

# shellcheck source=scripts/install-deps.sh
INSTALL_TEST_DEPS=1 source scripts/install-deps.sh

if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "test.sh: adding the rustfmt and clippy components" >&2
    rustup component add rustfmt clippy
fi

# --- tests ---------------------------------------------------------------------------------

# A fixed target dir outside the checkout, so a warm machine reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"

# The browser verifier against docs/proof-vectors.json and the tampered proofs, and the check
# that node/console-dist is what console/ builds (seconds).
(cd console && node --test test/)

# The multi-process tests (tests/) run the real `ron-ledger` and `ronctl` executables and the
# SDK's example programs: build them first, so the tests never run a stale binary.
# The rolling-upgrade test (tests/tests/upgrade.rs) runs the previous release's `ron-ledger`:
# build it from its commit (RELEASES) first, reusing this target dir's dependencies.
bash scripts/previous-release.sh >/dev/null
cargo build --workspace --bins --examples
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
