#!/usr/bin/env bash
# The main job on ml-latest-small: train with the default preset, evaluate,
# write the plot, and print top-10 recommendations with titles for user 1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Use a local copy when there is one (../shared/data here); otherwise mfrec downloads it.
if [ -z "${MFREC_DATA:-}" ] && [ -d ../shared/data/ml-latest-small ]; then
  export MFREC_DATA="$(cd ../shared/data && pwd)"
fi
RUN=${RUN:-runs/ml-latest-small-default}
mfrec() { .venv/bin/mfrec "$@"; }
mfrec train --dataset ml-latest-small --preset default --out "$RUN" --overwrite
echo
echo "== evaluate the saved model on the test part of its split"
mfrec evaluate --model "$RUN"
echo
echo "== loss curve: $RUN/loss.png"
echo
echo "== top 10 for user 1 (excluding what they rated)"
mfrec recommend --model "$RUN" --user 1 -n 10
echo
echo "== movies like Toy Story (1995)"
mfrec similar --model "$RUN" --item 1 -n 5
