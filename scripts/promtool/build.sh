#!/usr/bin/env bash
# Builds promtool (checks Prometheus rules and runs their unit tests) from the Go module proxy into a
# cache outside the repository, keyed by version:
#   ${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/promtool/<version>/bin/promtool
# Prints the binary's path on stdout. Idempotent; an flock serializes concurrent builders.
set -euo pipefail
PROMTOOL_VERSION=v0.316.0
root="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/promtool"
dir="$root/$PROMTOOL_VERSION"
if [ ! -x "$dir/bin/promtool" ]; then
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -x "$dir/bin/promtool" ]; then
    command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
    export GOPATH="$root/go" GOMODCACHE="$root/go/pkg/mod" GOCACHE="$root/go/cache" GOBIN="$dir/bin"
    export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-buildvcs=false"
    t0=$(date +%s)
    echo "promtool/build.sh: building promtool $PROMTOOL_VERSION from the Go module proxy (cold build)" >&2
    go install -trimpath "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION" >&2
    echo "promtool/build.sh: cold build of promtool $PROMTOOL_VERSION took $(( $(date +%s) - t0 ))s" >&2
  fi
fi
echo "$dir/bin/promtool"
