#!/usr/bin/env bash
# Source this file: Node 24 on PATH and the npm dependencies installed (from the lockfile).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/node24.sh" || return 1
root="$(dirname "$here")"
stamp="$root/node_modules/.elibadcode-lock-sha"
want="$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)-$(node --version)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # One install at a time: concurrent `npm ci` runs would delete each other's node_modules.
  exec 9>"${TMPDIR:-/tmp}/elibadcode-npm-ci.lock"
  flock 9
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing npm dependencies (npm ci)" >&2
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2) || { flock -u 9; return 1; }
    echo "$want" > "$stamp"
  fi
  flock -u 9
fi
