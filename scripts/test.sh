#!/usr/bin/env bash
# Lint, build the documentation site, and run the whole test suite (integration tests read ml-latest-small from MFREC_DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${MFREC_DATA:-}" ] && [ -d ../shared/data/ml-latest-small ]; then
  export MFREC_DATA="$(cd ../shared/data && pwd)"
fi
.venv/bin/ruff check src tests benchmarks docs
# The documentation site: a broken link, anchor or API reference fails the tests.
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet
.venv/bin/python -m pytest -q "$@"
