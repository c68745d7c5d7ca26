#!/usr/bin/env bash
# Installs what building ron-ledger needs on a fresh Debian 12 machine, when missing:
# clang + libclang-dev (the rocksdb crate compiles C++ and runs bindgen). Sourced by start.sh and
# test.sh; safe to run again (it only installs what is absent). With INSTALL_TEST_DEPS=1
# (test.sh sets it) also what the tests run: promtool (Debian's prometheus package) and
# systemd-analyze (systemd) for the deployment files' tests, a Docker engine with
# docker-compose and debootstrap for the container tests (dockerd is started when not running),
# iproute2 and iptables for the partition tests (network namespaces, veth links, packet-filter
# rules), and for the web console's tests Debian's chromium and chromium-driver and the console's
# npm packages (`npm ci` of console/package-lock.json, rerun only when the lockfile changed).

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
    # The partition tests (tests/tests/partitions.rs): `ip netns`/`ip link` and iptables.
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    # The console's end-to-end test (tests/tests/console.rs) drives /usr/bin/chromium.
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "install-deps.sh: installing ${missing[*]} (the deployment and console tests use them)" >&2
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

if [ "${INSTALL_TEST_DEPS:-0}" = 1 ]; then
    # The web console's verifier tests and its browser driver: Node.js 20 or newer (on the
    # machine), and the packages pinned in console/package-lock.json. Install scripts are not
    # run: esbuild takes its binary from its @esbuild/linux-x64 package, playwright-core
    # downloads no browser (the tests use Debian's chromium).
    console_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/console"
    node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if [ "$node_major" -lt 20 ]; then
        echo "install-deps.sh: the console tests need Node.js 20 or newer with npm (found: ${node_major})" >&2
        exit 1
    fi
    lock_sum="$(sha256sum "$console_dir/package-lock.json" | cut -d' ' -f1)"
    stamp="$console_dir/node_modules/.ron-ledger-lock-sha256"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
        echo "install-deps.sh: npm ci in console/ (the console's tests)" >&2
        (cd "$console_dir" && npm ci --ignore-scripts --no-audit --no-fund)
        echo "$lock_sum" >"$stamp"
    fi
fi
