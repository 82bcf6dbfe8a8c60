#!/usr/bin/env bash
# Runs a TypeScript entry point with Node 24 (brought from npm when the system Node is older).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
exec node "$@"
