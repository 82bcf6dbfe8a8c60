#!/usr/bin/env bash
# helm, for the chart tests: ~/.cache/elibadcode/helm/<version>/bin/helm (see scripts/go-tool.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../go-tool.sh" helm v3.19.0 helm.sh/helm/v3/cmd/helm
