#!/usr/bin/env bash
# Every test: type check, then node's test runner over test/**/*.test.ts.
# Integration tests run a real kube-apiserver + etcd (+ kube-controller-manager), helm, promtool and versitygw (S3); they are
# built once from the Go module proxy into ~/.cache/elibadcode, keyed by version, before the tests
# start (a cold build prints how long it took; later runs find them cached). The webgpu backend's
# tests run on Mesa's lavapipe (Vulkan on the CPU), fetched once from Debian's packages the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "node $(node --version), $(nproc) cores"
bash scripts/k8s/build.sh kube-apiserver etcd kube-controller-manager
ELIBADCODE_HELM="$(bash scripts/helm/build.sh)"
export ELIBADCODE_HELM
# promtool: the chart's alert rules are checked and unit-tested by Prometheus's own rule engine.
ELIBADCODE_PROMTOOL="$(bash scripts/promtool/build.sh)"
export ELIBADCODE_PROMTOOL
# versitygw: the real S3-compatible server the storage tests run against.
ELIBADCODE_VERSITYGW="$(bash scripts/s3/build.sh)"
export ELIBADCODE_VERSITYGW
# lavapipe comes from Debian's packages: on a machine without apt the webgpu tests say they are skipped.
ELIBADCODE_LAVAPIPE="$(bash scripts/lavapipe/fetch.sh)" || {
  echo "test.sh: no lavapipe (see the lines above); the webgpu backend's tests will be skipped" >&2
  ELIBADCODE_LAVAPIPE=""
}
export ELIBADCODE_LAVAPIPE
npx tsc -p tsconfig.json
exec node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-concurrency="${TEST_CONCURRENCY:-1}" "test/**/*.test.ts"
