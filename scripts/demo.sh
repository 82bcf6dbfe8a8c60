#!/usr/bin/env bash
# The scan demo on bundled defaults (no ../shared needed). For now: the bundled test
# defect-detection model classifies a few bundled real C functions from Devign.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
model=test/fixtures/golden/models/defect
input=$(mktemp --suffix=.jsonl)
trap 'rm -f "$input"' EXIT
head -n 5 data/devign/test.jsonl > "$input"
echo "elibadcode predict --model $model --input <5 Devign functions from data/devign/test.jsonl>" >&2
node bin/elibadcode.js predict --model "$model" --input "$input"
