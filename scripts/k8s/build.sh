#!/usr/bin/env bash
# Builds the control-plane binaries used by the integration tests from the Go module proxy
# (no release tarballs, no Docker) into a cache outside the repository, keyed by version:
#   ${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/k8s/<k8s-version>-etcd-<etcd-version>/bin/
#
# Usage: scripts/k8s/build.sh [--print-bin-dir] [component ...]
#   components: kube-apiserver etcd (the default) and kube-controller-manager (optional).
#   --print-bin-dir: print the bin directory on stdout (all other output goes to stderr).
# Idempotent: a component whose binary is already cached is skipped. Safe to run concurrently
# (an flock serializes builders). GOPATH/GOMODCACHE/GOCACHE live under the cache as well.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

print_bin=0
want=()
for a in "$@"; do
  case "$a" in
    --print-bin-dir) print_bin=1 ;;
    kube-apiserver|etcd|kube-controller-manager) want+=("$a") ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done
[ ${#want[@]} -gt 0 ] || want=(kube-apiserver etcd)

k8s_minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
if [ "v0.${K8S_VERSION#v1.}" != "$K8S_STAGING_VERSION" ]; then
  echo "build.sh: K8S_STAGING_VERSION=$K8S_STAGING_VERSION does not match K8S_VERSION=$K8S_VERSION" >&2; exit 1
fi

root="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/k8s"
key="$K8S_VERSION-etcd-$ETCD_VERSION"
dir="$root/$key"
bin="$dir/bin"

missing() { local c; for c in "${want[@]}"; do [ -x "$bin/$c" ] || echo "$c"; done; }

done_out() { [ $print_bin = 1 ] && echo "$bin"; exit 0; }
[ -z "$(missing)" ] && done_out

mkdir -p "$dir"
exec 9>"$dir/.lock"
if ! flock -n 9; then
  echo "build.sh: another build holds $dir/.lock; waiting" >&2
  flock 9
fi
todo=($(missing))
[ ${#todo[@]} -eq 0 ] && done_out

command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "build.sh: go is not on PATH (Go >= 1.26 needed)" >&2; exit 1; }
export GOPATH="$root/go" GOMODCACHE="$root/go/pkg/mod" GOCACHE="$root/go/cache"
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$bin" "$GOPATH"
t0=$(date +%s)
log() { echo "build.sh [$(( $(date +%s) - t0 ))s] $*" >&2; }
log "building ${todo[*]} ($key) with $(go version | cut -d' ' -f3), $(nproc) cores, cache $root"

k8s_pkgs=()
for c in "${todo[@]}"; do
  case "$c" in kube-apiserver|kube-controller-manager) k8s_pkgs+=("k8s.io/kubernetes/cmd/$c") ;; esac
done

if [ ${#k8s_pkgs[@]} -gt 0 ]; then
  src="$dir/src-k8s"
  if [ ! -f "$src/.ready" ]; then
    rm -rf "$src"; mkdir -p "$src"; cd "$src"
    log "downloading k8s.io/kubernetes@$K8S_VERSION go.mod"
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [ -f "$gomod" ] || { echo "build.sh: could not locate go.mod of k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
    # The staging modules are the ones k8s.io/kubernetes replaces with ./staging/...; repeat those
    # replaces here pointing at the published v0.X.Y tags (replaces only count in the main module).
    staging="$(sed -e 's/^replace[[:space:]]*//' "$gomod" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }')"
    [ -n "$staging" ] || { echo "build.sh: no staging replaces found in $gomod" >&2; exit 1; }
    go mod init example.invalid/k8sbins >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    for m in $staging; do go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"; done
    log "$(echo "$staging" | wc -l) staging modules pinned to $K8S_STAGING_VERSION; resolving dependencies"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" >&2
    touch .ready
  fi
  cd "$src"
  log "compiling ${k8s_pkgs[*]}"
  rm -rf "$src/out"; mkdir -p "$src/out"
  go build -trimpath -o "$src/out/" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean" \
    "${k8s_pkgs[@]}"
  for p in "${k8s_pkgs[@]}"; do mv -f "$src/out/$(basename "$p")" "$bin/"; done
  log "built ${k8s_pkgs[*]}"
fi

if printf '%s\n' "${todo[@]}" | grep -qx etcd; then
  src="$dir/src-etcd"
  if [ ! -f "$src/.ready" ]; then
    rm -rf "$src"; mkdir -p "$src"; cd "$src"
    go mod init example.invalid/etcdbin >/dev/null 2>&1
    log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    touch .ready
  fi
  cd "$src"
  log "compiling etcd"
  go build -trimpath -ldflags "-s -w" -o "$src/etcd.out" go.etcd.io/etcd/server/v3
  mv -f "$src/etcd.out" "$bin/etcd"
  log "built etcd"
fi

"$bin/etcd" --version 2>/dev/null | head -1 >&2 || true
[ -x "$bin/kube-apiserver" ] && "$bin/kube-apiserver" --version >&2 || true
log "build of ${todo[*]} took $(( $(date +%s) - t0 )) seconds"
echo "$(date -u +%FT%TZ) ${todo[*]} $(( $(date +%s) - t0 ))s $(nproc)cores" >> "$dir/build-times.log"
[ $print_bin = 1 ] && echo "$bin"
exit 0
