#!/usr/bin/env bash
# Mesa's lavapipe, a Vulkan driver that runs on the CPU, from Debian's packages (bookworm-backports:
# bookworm's Mesa 22 lacks a feature Dawn needs), so that the webgpu backend's tests run on a machine
# without a GPU. Unpacked (no root, nothing installed) into a cache outside the repository:
#   ${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/lavapipe/<mesa version>/
# Prints that directory on stdout; it holds usr/lib/x86_64-linux-gnu (for LD_LIBRARY_PATH) and
# lvp_icd.json (for VK_ICD_FILENAMES). Idempotent; an flock serializes concurrent fetches; a cold
# fetch prints how long it took.
set -euo pipefail
root="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/lavapipe"
# The libraries lavapipe and the Vulkan loader load that a minimal Debian system may lack (libc,
# libstdc++, zlib, zstd and expat are taken from the system).
PACKAGES="mesa-vulkan-drivers libvulkan1 libdrm2 libdrm-amdgpu1 libllvm15 libelf1 libwayland-client0 libx11-xcb1
  libx11-6 libxau6 libxdmcp6 libxcb1 libxcb-dri3-0 libxcb-present0 libxcb-randr0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0
  libxshmfence1 libbsd0 libmd0 libffi8 libedit2 libtinfo6 libxml2 libicu72 libz3-4"
current="$(ls -d "$root"/*/lvp_icd.json 2>/dev/null | head -1 || true)"
if [ -n "$current" ]; then dirname "$current"; exit 0; fi
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
current="$(ls -d "$root"/*/lvp_icd.json 2>/dev/null | head -1 || true)"
if [ -n "$current" ]; then dirname "$current"; exit 0; fi
command -v apt-get >/dev/null || { echo "lavapipe: apt-get not found (a Debian bookworm machine is assumed)" >&2; exit 1; }
t0=$(date +%s)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
# apt-get runs its downloads as the _apt user when it can: the private lists and cache must be writable by it.
chmod -R a+rwX "$work"
cat > "$work/sources.list" <<LIST
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-backports main
LIST
apt=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/lists"
     -o "Dir::Cache=$work/cache" -o APT::Default-Release=bookworm-backports -o Debug::NoLocking=1)
echo "lavapipe: fetching Mesa's lavapipe and the Vulkan loader from Debian (bookworm-backports)" >&2
apt-get "${apt[@]}" update >&2
version="$(apt-cache "${apt[@]}" policy mesa-vulkan-drivers | awk '/Candidate:/ {print $2}')"
case "$version" in 2[4-9].*) ;; *) echo "lavapipe: Mesa $version is too old for Dawn (24 or later needed)" >&2; exit 1 ;; esac
(cd "$work/debs" && apt-get "${apt[@]}" download $PACKAGES >&2)
dir="$root/$version"
rm -rf "$dir.partial"
mkdir -p "$dir.partial"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$dir.partial"; done
lib="$dir/usr/lib/x86_64-linux-gnu"
test -f "$dir.partial/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"
cat > "$dir.partial/lvp_icd.json" <<JSON
{ "file_format_version": "1.0.0", "ICD": { "library_path": "$lib/libvulkan_lvp.so", "api_version": "1.3.0" } }
JSON
mv "$dir.partial" "$dir"
echo "lavapipe: cold fetch of Mesa $version took $(( $(date +%s) - t0 ))s" >&2
echo "$dir"
