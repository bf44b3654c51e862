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


def test_a_subset_of_models_reads_the_synthesized_set_from_its_cache(tmp_path):
    cache = tmp_path / "synth.npz"
    prepared = run("--small", "--prepare-only", "--cache", str(cache))
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    assert "49,994 ratings synthesized" in prepared.stdout and cache.exists()
    stamp = cache.stat().st_mtime_ns
    done = run("--small", "--models", "implicit,bpr", "--cache", str(cache), "--out", str(tmp_path / "gpu.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert cache.stat().st_mtime_ns == stamp  # read, not written again
    rows = json.loads((tmp_path / "gpu.json").read_text())["rows"]
    assert [r["model"].split(" (")[0] for r in rows] == ["implicit ALS", "BPR"]
    assert "49,994 ratings" in done.stdout
    wrong = run("--small", "--models", "implicit,svd")
    assert wrong.returncode != 0 and wrong.stderr.strip().endswith("unknown model(s) svd; choose from biased, dot, "
                                                                   "bayesian, implicit, bpr")  # fmt: skip


def test_the_suite_records_each_failure_as_it_happens(tmp_path):
    (tmp_path / "test_probe.py").write_text("def test_fails():\n    assert 1 == 2\n\ndef test_passes():\n    pass\n")
    failures = tmp_path / "failures.txt"
    env = {**os.environ, "LIVE_FAILURES": str(failures), "PYTHONPATH": str(ROOT / "benchmarks")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "_live_failures", "test_probe.py"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 1
    text = failures.read_text()
    assert text.count("=== ") == 1 and "test_probe.py::test_fails (call)" in text and "assert 1 == 2" in text


def test_the_gpu_suite_script_parses():
    done = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_suite.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
