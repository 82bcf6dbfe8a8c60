#!/usr/bin/env bash
# versitygw, an S3-compatible gateway with a posix filesystem backend, which the storage tests use
# as a real S3 server: ~/.cache/elibadcode/versitygw/<version>/bin/versitygw (see scripts/go-tool.sh).
set -euo pipefail
VERSITYGW_VERSION=v1.8.0
GO_TOOL_FLAGS=-mod=mod exec bash "$(dirname "$0")/../go-tool.sh" versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw
