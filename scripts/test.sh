#!/usr/bin/env bash
# Every test: type check, then node's test runner over test/**/*.test.ts.
# Integration tests start their own kube-apiserver/etcd (built once from the Go module proxy, cached by version).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "node $(node --version), $(nproc) cores"
npx tsc -p tsconfig.json
exec node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-concurrency="${TEST_CONCURRENCY:-1}" "test/**/*.test.ts"
