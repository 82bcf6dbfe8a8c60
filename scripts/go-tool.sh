#!/usr/bin/env bash
# Builds one Go command from the Go module proxy into a cache outside the repository, keyed by
# version, and prints the binary's path on stdout (everything else goes to stderr):
#   ${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/<name>/<version>/bin/<binary>
# Usage: go-tool.sh NAME VERSION PACKAGE   (the binary is PACKAGE's last path element)
# Idempotent; an flock serializes concurrent builders. A cold build prints how long it took and
# appends it to <version>/build-times.log. GO_TOOL_FLAGS adds GOFLAGS (versitygw needs -mod=mod).
set -euo pipefail
name="$1" version="$2" package="$3"
binary="${package##*/}"
root="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/$name"
dir="$root/$version"
if [ ! -x "$dir/bin/$binary" ]; then
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  if ! flock -n 9; then
    echo "$name: another build holds $dir/.lock; waiting" >&2
    flock 9
  fi
  if [ ! -x "$dir/bin/$binary" ]; then
    command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="/usr/local/go/bin:$PATH"
    command -v go >/dev/null || { echo "$name: go is not on PATH (Go >= 1.26 needed)" >&2; exit 1; }
    export GOPATH="$root/go" GOMODCACHE="$root/go/pkg/mod" GOCACHE="$root/go/cache" GOBIN="$dir/bin"
    export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-buildvcs=false ${GO_TOOL_FLAGS:-}"
    t0=$(date +%s)
    echo "$name: building $binary $version from the Go module proxy (cold build, $(nproc) cores)" >&2
    go install -trimpath -ldflags "-s -w" "$package@$version" >&2
    took=$(( $(date +%s) - t0 ))
    echo "$name: cold build of $binary $version took ${took}s" >&2
    echo "$(date -u +%FT%TZ) $binary $version ${took}s $(nproc)cores" >> "$dir/build-times.log"
  fi
fi
echo "$dir/bin/$binary"
