#!/usr/bin/env bash
# Builds versitygw (an S3-compatible gateway with a posix filesystem backend), which the storage
# tests use as a real S3 server, from the Go module proxy into a cache outside the repository,
# keyed by version:
#   ${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/versitygw/<version>/bin/versitygw
# Prints the binary's path on stdout; everything else goes to stderr. Idempotent; an flock
# serializes concurrent builders.
set -euo pipefail
VERSITYGW_VERSION=v1.8.0
root="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/versitygw"
dir="$root/$VERSITYGW_VERSION"
if [ ! -x "$dir/bin/versitygw" ]; then
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  if ! flock -n 9; then
    echo "s3/build.sh: another build holds $dir/.lock; waiting" >&2
    flock 9
  fi
  if [ ! -x "$dir/bin/versitygw" ]; then
    command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="/usr/local/go/bin:$PATH"
    command -v go >/dev/null || { echo "s3/build.sh: go is not on PATH (Go >= 1.26 needed)" >&2; exit 1; }
    export GOPATH="$root/go" GOMODCACHE="$root/go/pkg/mod" GOCACHE="$root/go/cache" GOBIN="$dir/bin"
    export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-mod=mod -buildvcs=false"
    t0=$(date +%s)
    echo "s3/build.sh: building versitygw $VERSITYGW_VERSION from the Go module proxy (cold build, $(nproc) cores)" >&2
    go install -trimpath -ldflags "-s -w" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
    took=$(( $(date +%s) - t0 ))
    echo "s3/build.sh: cold build of versitygw $VERSITYGW_VERSION took ${took}s" >&2
    echo "$(date -u +%FT%TZ) versitygw $VERSITYGW_VERSION ${took}s $(nproc)cores" >> "$dir/build-times.log"
  fi
fi
echo "$dir/bin/versitygw"
