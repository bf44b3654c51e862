#!/usr/bin/env bash
# The main job on ml-latest-small: train the rating model (default preset) and evaluate it in stars,
# write its loss plot and report, then train the top-N model (implicit preset) and print top-10 recommendations
# with titles for user 1 and the movies most like Toy Story.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Use a local copy when there is one (../shared/data here); otherwise mfrec downloads it.
if [ -z "${MFREC_DATA:-}" ] && [ -d ../shared/data/ml-latest-small ]; then
  export MFREC_DATA="$(cd ../shared/data && pwd)"
fi
RUN=${RUN:-runs/ml-latest-small-default}
TOPN=${TOPN:-runs/ml-latest-small-implicit}
mfrec() { .venv/bin/mfrec "$@"; }
echo "== the rating model: predicts stars (default preset)"
mfrec train --dataset ml-latest-small --preset default --out "$RUN" --overwrite
echo
echo "== evaluate the saved rating model on the test part of its split"
mfrec evaluate --model "$RUN"
echo
echo "== loss curve: $RUN/loss.png; the run's report (open it in a browser): $RUN/report.html"
echo
echo "== the top-N model: ranks items (implicit preset)"
mfrec train --dataset ml-latest-small --preset implicit --out "$TOPN" --overwrite
echo
echo "== top 10 for user 1 from the top-N model (excluding what they rated)"
mfrec recommend --model "$TOPN" --user 1 -n 10
echo
echo "== movies like Toy Story (1995)"
mfrec similar --model "$TOPN" --item 1 -n 5
