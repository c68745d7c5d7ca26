#!/usr/bin/env bash
# Build the node image `ron-ledger:dev` from host-built binaries (see the Dockerfile for why).
#
#     bash deploy/docker/build-image.sh [BIN_DIR]    # default: $CARGO_TARGET_DIR/debug
#
# Needs a running Docker engine. When the image `debian:bookworm-slim` is not there (these
# machines cannot pull), it is made from Debian's archive with debootstrap and `docker import`,
# under the same name, so the Dockerfile builds unchanged.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/ron-ledger-target}"
bin_dir="${1:-$target/debug}"
image="${LEDGER_IMAGE:-ron-ledger:dev}"

for b in ron-ledger ronctl; do
    if [ ! -x "$bin_dir/$b" ]; then
        echo "build-image.sh: $bin_dir/$b not found; build first (cargo build -p node -p client --bins)" >&2
        exit 1
    fi
done

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    echo "build-image.sh: making the base image debian:bookworm-slim with debootstrap" >&2
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
fi

context="$(mktemp -d)"
trap 'rm -rf "$context" ${rootfs:+"$rootfs"}' EXIT
cp deploy/docker/Dockerfile "$context/"
for b in ron-ledger ronctl; do
    # Debug information is most of a debug build's size; the image does not need it.
    objcopy --strip-debug "$bin_dir/$b" "$context/$b"
done
docker build --quiet -t "$image" "$context" >/dev/null
echo "build-image.sh: built $image" >&2
