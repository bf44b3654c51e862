#!/usr/bin/env bash
# A separate environment for the peer libraries (not dependencies of mfrec):
# implicit, cornac, LensKit, Surprise and myFM beside mfrec itself, CPU torch pinned first.
# Idempotent. Prints the python to use.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=benchmarks/.peers-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ ! -f "$VENV/.ready-4" ]; then  # bump the marker when the list below changes
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "torch==2.13.0"
  "$VENV/bin/pip" install --quiet "implicit==0.7.3" "cornac==3.0.1" "lenskit==2025.8.1" "scikit-surprise==1.1.5" \
    "myfm==0.4.0" "setuptools<81"  # myfm 0.4.0 imports pkg_resources
  "$VENV/bin/pip" install --quiet -e ".[fast]"
  touch "$VENV/.ready-4"
fi
echo "$VENV/bin/python"
