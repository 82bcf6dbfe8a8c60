#!/usr/bin/env bash
# Creates the Python venv used only by scripts/golden/generate.py, outside the repo:
#   ${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/golden-venv
# Prints the venv path on stdout (everything else goes to stderr).
#
# torch: the Linux x86_64 wheels on PyPI are CUDA builds whose dependencies
# (CUDA toolkit, cuDNN, NCCL, ...) add several GB. We first try the torch wheel
# alone (--no-deps) plus its small pure-Python dependencies, and keep it if
# `import torch` and a CPU forward/backward pass work. If they do not (torch
# 2.15's libtorch_cuda.so needs the CUDA shared libraries just to load), we
# fall back to the normal install with all dependencies.
# Re-running is cheap: a stamp holding the requirements hash skips the work.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
venv="${ELIBADCODE_CACHE:-$HOME/.cache/elibadcode}/golden-venv"
stamp="$venv/.elibadcode-golden-stamp"
want="$(sha256sum "$req" | cut -d' ' -f1)"
py="$venv/bin/python"

check_torch() {
  "$py" - <<'PY' >&2
import torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.GELU(), torch.nn.LayerNorm(4))
x = torch.randn(2, 8, requires_grad=True)
m(x).softmax(-1)[:, 0].sum().backward()
assert x.grad is not None and torch.isfinite(x.grad).all()
print(f"setup-venv: torch {torch.__version__} works on CPU")
PY
}

if [ -x "$py" ] && [ "$(cut -d' ' -f1 "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$venv"; exit 0
fi

start=$(date +%s)
echo "setup-venv: creating $venv" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
pip=("$py" -m pip --disable-pip-version-check)
torch_pin="$(grep -E '^torch==' "$req")"
# Everything except torch, with its dependencies.
"${pip[@]}" install -q -r <(grep -vE '^torch==' "$req") >&2

mode=""
echo "setup-venv: trying $torch_pin without its CUDA dependencies" >&2
if "${pip[@]}" install -q --no-deps "$torch_pin" >&2 \
   && "${pip[@]}" install -q filelock 'typing-extensions>=4.13.0' 'setuptools>=77.0.3' \
        'sympy>=1.13.3' 'networkx>=2.5.1' jinja2 'fsspec>=0.8.5' >&2 \
   && check_torch 2>/dev/null; then
  mode="torch-no-deps"
else
  echo "setup-venv: torch without CUDA libraries does not import; installing $torch_pin with all dependencies (several GB)" >&2
  "${pip[@]}" install -q "$torch_pin" >&2
  check_torch
  mode="torch-full"
fi
# The resolver must still agree with the pins.
"${pip[@]}" install -q -r "$req" >&2
echo "$want $mode $(( $(date +%s) - start ))s" > "$stamp"
echo "setup-venv: done in $(( $(date +%s) - start ))s ($mode)" >&2
echo "$venv"
