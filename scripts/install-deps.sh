#!/usr/bin/env bash
# Installs what building ron-ledger needs on a fresh Debian 12 machine, when missing:
# clang + libclang-dev (the rocksdb crate compiles C++ and runs bindgen). Sourced by start.sh and
# test.sh; safe to run again (it only installs what is absent). With INSTALL_TEST_DEPS=1
# (test.sh sets it) also what the tests run: promtool (Debian's prometheus package) and
# systemd-analyze (systemd) for the deployment files' tests, and a Docker engine with
# docker-compose and debootstrap for the container tests; dockerd is started when not running.

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

if [ "${INSTALL_TEST_DEPS:-0}" = 1 ]; then
    missing=()
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
    command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "install-deps.sh: installing ${missing[*]} (the deployment files' tests use them)" >&2
        as_root apt-get update
        # --no-install-recommends: promtool is all the tests need, not a running Prometheus.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}"
    fi
fi

if [ "${INSTALL_TEST_DEPS:-0}" = 1 ] && ! command -v kubernetes-validate >/dev/null 2>&1; then
    # The Kubernetes schemas the manifests are validated against offline (PyPI).
    echo "install-deps.sh: installing kubernetes-validate from PyPI" >&2
    python3 -m pip install --quiet kubernetes-validate==1.37.0 \
        || python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
fi

if [ "${INSTALL_TEST_DEPS:-0}" = 1 ] && ! docker info >/dev/null 2>&1; then
    echo "install-deps.sh: starting dockerd (log: /var/log/ron-ledger-dockerd.log)" >&2
    as_root sh -c 'nohup dockerd >/var/log/ron-ledger-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        echo "install-deps.sh: dockerd did not come up; see /var/log/ron-ledger-dockerd.log" >&2
        exit 1
    fi
fi
