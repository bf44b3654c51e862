"""Interruption: a real training process killed with SIGKILL resumes to the same result."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mfrec.cli import main
from mfrec.run import work_folder


def checkpoint_epoch(path) -> int:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return json.loads(handle.metadata()["mfrec.checkpoint"])["epoch"]
    except Exception:  # not there yet, or being replaced
        return 0


ENGINES = {
    "sgd": ["--epochs", "120", "--batch-size", "8", "--patience", "0"],
    # Gibbs: the chain, the kept samples folded at rank 8, both generators and the running sums resume exactly
    "gibbs": ["--model", "bayesian", "--epochs", "120", "--burn-in", "10", "--samples", "60", "--embedding-dim", "4",
              "--posterior-rank", "8", "--engine", "torch"],
    "gibbs-compiled": ["--model", "bayesian", "--epochs", "120", "--burn-in", "10", "--samples", "60",
                       "--embedding-dim", "4", "--posterior-rank", "8", "--engine", "compiled"],
    # compiled Gibbs with implicit features: the tables, alpha, the numpy generator and the kept samples
    "svdpp": ["--model", "bayesian_svdpp", "--epochs", "120", "--burn-in", "10", "--samples", "60",
              "--embedding-dim", "4", "--posterior-rank", "8"],
}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(ratings_csv, tmp_path, capsys, engine):
    args = ["train", "--ratings", str(ratings_csv), "--timestamp-col", "timestamp", "--split", "random",
            *ENGINES[engine], "--device", "cpu", "-q"]  # fmt: skip
    reference = tmp_path / "reference"
    assert main([*args, "--out", str(reference)]) == 0

    killed = tmp_path / "killed"
    checkpoint = work_folder(killed) / "checkpoint.safetensors"
    process = subprocess.Popen([sys.executable, "-m", "mfrec.cli", *args, "--out", str(killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 120
    while checkpoint_epoch(checkpoint) < 5 and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "training finished before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    interrupted_at = checkpoint_epoch(checkpoint)
    assert 5 <= interrupted_at < 120
    assert not killed.exists()  # nothing that looks like a finished run

    code = main(["train", "--ratings", str(ratings_csv), "--out", str(killed), "-q"])
    assert code != 0 and "mfrec train --resume" in capsys.readouterr().err

    assert main(["train", "--resume", str(killed), "-q"]) == 0
    assert not work_folder(killed).exists()
    ref_metrics = json.loads((reference / "metrics.json").read_text())
    new_metrics = json.loads((killed / "metrics.json").read_text())
    assert new_metrics["model"] == ref_metrics["model"]
    assert new_metrics["epochs_run"] == 120
    assert (killed / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()


def test_resume_without_an_interrupted_run_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no interrupted run to resume" in err and "\n" not in err
