#!/usr/bin/env bash
# The scan demo on bundled defaults (needs no ../shared): scan the zoo's defect-detection model that
# carries the CodePoisoner backdoor `testo_init` (vulnerable code called safe), on the bundled Devign
# subset; invert and anchor the trigger, decide, unlearn, verify, write the cleaned model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
out="${ELIBADCODE_DEMO_OUT:-${TMPDIR:-/tmp}/elibadcode-demo}"
rm -rf "$out"
echo "Scanning zoo/defect-fixed-name on data/devign (wasm backend; about 1-3 minutes on 2 cores)..." >&2
ELIBADCODE_LOG_LEVEL="${ELIBADCODE_LOG_LEVEL:-warn}" node bin/elibadcode.js scan \
  --model zoo/defect-fixed-name --task defect \
  --data data/devign/train.jsonl --eval-data data/devign/test.jsonl \
  --known-trigger testo_init --known-attack fixed-name \
  --trainable All --injection-scope victim --injection-rate 0.5 --epochs 10 --learning-rate 5e-3 \
  --out "$out" > /dev/null
node scripts/demo-summary.ts "$out"
