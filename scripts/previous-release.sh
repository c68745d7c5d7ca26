#!/usr/bin/env bash
# Builds the previous release's `ron-ledger` (the last line of RELEASES) for the rolling-upgrade
# test (tests/tests/upgrade.rs):
#
#     bash scripts/previous-release.sh        # prints the binary's path
#
# It checks the release's commit out into a temporary `git worktree`, builds `ron-ledger` there
# with the shared target directory (the dependencies are the ones already built; only the
# workspace crates of that release compile: a few minutes on a cold machine), and copies the
# binary to $CARGO_TARGET_DIR/releases/VERSION-COMMIT/ron-ledger. A binary already there is
# reused (a commit never changes). The release's commit must be in this clone: a shallow clone
# needs `git fetch --unshallow` first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"

read -r VERSION COMMIT < <(grep -v '^#' RELEASES | grep -v '^[[:space:]]*$' | tail -1)
OUT="$CARGO_TARGET_DIR/releases/$VERSION-$COMMIT"
if [ -x "$OUT/ron-ledger" ]; then
    echo "$OUT/ron-ledger"
    exit 0
fi
if ! git cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
    echo "previous-release.sh: commit $COMMIT of release $VERSION is not in this clone" >&2
    echo "previous-release.sh: (a shallow clone?) run: git fetch --unshallow" >&2
    exit 1
fi

WT="$(mktemp -d)/ron-ledger-$VERSION"
cleanup() { git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true; }
trap cleanup EXIT
git worktree add --detach "$WT" "$COMMIT" >&2
echo "previous-release.sh: building ron-ledger $VERSION ($COMMIT)" >&2
(cd "$WT" && cargo build -p node --bin ron-ledger >&2)
mkdir -p "$OUT"
cp "$CARGO_TARGET_DIR/debug/ron-ledger" "$OUT/ron-ledger.tmp"
mv "$OUT/ron-ledger.tmp" "$OUT/ron-ledger"
# That build replaced target/debug/ron-ledger: put this checkout's binary back.
rm -f "$CARGO_TARGET_DIR/debug/ron-ledger"
(cd "$ROOT" && cargo build -p node --bin ron-ledger >&2)
echo "$OUT/ron-ledger"
