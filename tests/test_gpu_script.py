"""benchmarks/gpu.sh: the GPU benchmark runs end to end on the CPU with --small (CI has no GPU)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def run(*args, timeout=300):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)  # fmt: skip


def test_small_run_trains_every_model_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    done = run("--small", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"].split(" (")[0] for r in rows] == ["biased MF", "plain MF", "Bayesian MF", "implicit ALS", "BPR"]
    for row in rows:
        assert row["epochs"] == 2 and row["epoch_s"] > 0 and 0 <= row["ndcg"] <= 1
        rating_model = row["model"].split(" (")[0] in ("biased MF", "plain MF", "Bayesian MF")
        assert math.isfinite(row["rmse"]) == rating_model
    assert done.stdout.count("\n| ") == 6  # the header and one line per model


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where there is no GPU")
def test_without_a_gpu_the_full_run_says_so_in_one_line():
    done = run()
    assert done.returncode != 0
    assert done.stderr.strip() == "error: torch sees no CUDA GPU here; run with --small to check the script on the CPU"
