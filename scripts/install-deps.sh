#!/usr/bin/env bash
# Installs what building ron-ledger needs on a fresh Debian 12 machine, when missing:
# clang + libclang-dev (the rocksdb crate compiles C++ and runs bindgen). Sourced by start.sh and
# test.sh; safe to run again (it only installs what is absent). With RON_LEDGER_TEST_DEPS=1
# (test.sh sets it) also what the tests run: promtool (Debian's prometheus package) and
# systemd-analyze (systemd) for the deployment files' tests.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-deps.sh: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

have_libclang() {
    compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null \
        || dpkg -s libclang-dev >/dev/null 2>&1
}

if ! command -v clang >/dev/null 2>&1 || ! have_libclang; then
    echo "install-deps.sh: installing clang and libclang-dev (needed to build rocksdb)" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y clang libclang-dev
fi

if [ "${RON_LEDGER_TEST_DEPS:-0}" = 1 ]; then
    missing=()
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "install-deps.sh: installing ${missing[*]} (the deployment files' tests use them)" >&2
        as_root apt-get update
        # --no-install-recommends: promtool is all the tests need, not a running Prometheus.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}"
    fi
fi
