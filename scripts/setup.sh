#!/usr/bin/env bash
# One-time set-up: a virtual environment in .venv with the CPU build of torch and Tenku installed.
#   scripts/setup.sh          runtime install
#   scripts/setup.sh --dev    + test and benchmark dependencies
# Users with CUDA: install your own torch into .venv first; this script keeps an installed torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Install torch explicitly first: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
.venv/bin/pip install -q -e ".${extra}"
