#!/usr/bin/env bash
# promtool, which checks the chart's Prometheus rules and runs their unit tests:
# ~/.cache/elibadcode/promtool/<version>/bin/promtool (see scripts/go-tool.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../go-tool.sh" promtool v0.316.0 github.com/prometheus/prometheus/cmd/promtool
