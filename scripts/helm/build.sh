#!/usr/bin/env bash
# Builds helm from the Go module proxy into a cache outside the repository, keyed by version:
#   ${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/helm/<version>/bin/helm
# Prints the binary's path on stdout. Idempotent; an flock serializes concurrent builders.
set -euo pipefail
HELM_VERSION=v3.19.0
root="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/helm"
dir="$root/$HELM_VERSION"
if [ ! -x "$dir/bin/helm" ]; then
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -x "$dir/bin/helm" ]; then
    command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
    export GOPATH="$root/go" GOMODCACHE="$root/go/pkg/mod" GOCACHE="$root/go/cache" GOBIN="$dir/bin"
    export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-buildvcs=false"
    t0=$(date +%s)
    echo "helm/build.sh: building helm $HELM_VERSION from the Go module proxy (cold build)" >&2
    go install -trimpath "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
    echo "helm/build.sh: cold build of helm $HELM_VERSION took $(( $(date +%s) - t0 ))s" >&2
  fi
fi
echo "$dir/bin/helm"
