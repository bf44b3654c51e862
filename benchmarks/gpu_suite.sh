#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the test suite with every model on CUDA, then the 25M GPU benchmark.
#   MFREC_DATA=/path/to/data bash benchmarks/gpu_suite.sh [OUT_DIR]
# Training's default device is "auto", so every test that trains runs on the GPU here. Left out:
# the tests of serving, profiles, tuning and the browser, which need optional extras and no GPU.
# The 25M set is synthesized on the CPU while the tests run. Each failure is written to
# OUT_DIR/failures.txt as it happens; the log, the benchmark's table and its JSON go there too.
# Environment: PYTHON [python3], SUITE_S and BENCH_S (time limits, s), GPU_MODELS (gpu.py's --models).
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:-gpu-suite-out}" && cd "${1:-gpu-suite-out}" && pwd)"
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export LIVE_FAILURES="$out/failures.txt"
cache="${TMPDIR:-/tmp}/mfrec-synth-25m.npz"
nvidia-smi -L || true
"$PYTHON" -c "import torch, numpy, numba; print('torch', torch.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__, torch.cuda.get_device_name(0))"
"$PYTHON" benchmarks/gpu.py --prepare-only --cache "$cache" > "$out/synth.log" 2>&1 &
synth=$!
workers=$(nproc)
if [ "$workers" -gt 16 ]; then workers=16; fi
started=$SECONDS
ignored=()
for name in browser http_fuzz http_properties http_soak profiles reload serve tune readme; do
  ignored+=(--ignore "tests/test_$name.py")
done
timeout "${SUITE_S:-180}" "$PYTHON" -m pytest -q -p no:cacheprovider -p _live_failures -n "$workers" \
  "${ignored[@]}" tests > "$out/pytest.log" 2>&1
echo "pytest rc=$? in $((SECONDS - started)) s: $(grep -c '^===' "$LIVE_FAILURES" 2>/dev/null || echo 0) failed"
grep '^===' "$LIVE_FAILURES" 2>/dev/null | head -40
tail -3 "$out/pytest.log"
wait "$synth"; cat "$out/synth.log"
timeout "${BENCH_S:-330}" "$PYTHON" benchmarks/gpu.py --cache "$cache" --models "${GPU_MODELS:-biased,dot,bayesian,implicit,bpr}" \
  --out "$out/gpu.json" 2>&1 | tee "$out/gpu.log"
