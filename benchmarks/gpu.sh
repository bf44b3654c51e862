#!/usr/bin/env bash
# Every model on the ML-25M-shaped synthetic set on an NVIDIA GPU (epoch time, ratings/s, RMSE), under 5 minutes.
#   bash benchmarks/gpu.sh           # on a machine with a GPU and a CUDA build of torch
#   bash benchmarks/gpu.sh --small   # a tiny copy on the CPU: checks the script before a GPU is at hand
# Python: $PYTHON, else the repository's .venv (scripts/setup.sh), else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" benchmarks/gpu.py "$@"
