#!/usr/bin/env bash
# One-time set-up: a virtual environment in .venv with torch, Tenku and its web server (`tenku serve`).
#   scripts/setup.sh          runtime install: tenku[serve]
#   scripts/setup.sh --dev    + test and benchmark dependencies (tenku[dev])
# torch: an already installed torch in .venv is kept (CUDA users: install your own build there first).
# Otherwise torch==2.13.0 is installed from pip's configured index. On a generic Linux machine PyPI's torch is
# a multi-GB CUDA build; CPU-only users should take PyTorch's CPU wheel index instead:
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Install torch explicitly first: pip resolving Tenku's `torch>=2.4` alone would pick the CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q "torch==${TORCH_VERSION}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
extra="[serve]"
[ "${1:-}" = "--dev" ] && extra="[dev]"
.venv/bin/pip install -q -e ".${extra}"
