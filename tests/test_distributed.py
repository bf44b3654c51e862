"""Data-parallel training over torch.distributed (gloo, CPU): gradient sync, equivalence, failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mfrec.cli import main
from mfrec.config import preset
from mfrec.errors import ConfigError, DataError, DistributedError
from mfrec.models.biased import BiasedMF
from mfrec.training import distributed
from mfrec.training.sgd import GradientTrainer
from mfrec.training.trainer import TrainingData, fit


def fit_module(model, data, val, config, *, scale, generator):
    fit(GradientTrainer(model, config.params, TrainingData(data, val, scale), generator))

BIN = Path(sys.executable).parent


# ------------------------------------------------------------ helpers run inside spawned ranks
def _one_step(out: str, optimizer: str) -> None:
    """Fit one epoch made of one batch (all ratings) on this rank's half; rank 0 saves the parameters."""
    model, data, config = _tiny_problem(optimizer, distributed_run=True)
    fit_module(model, data, None, config, scale=(0.5, 5.0), generator=torch.Generator().manual_seed(0))
    if distributed.is_main_process():
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)


def _tiny_problem(optimizer: str, distributed_run: bool):
    rng = np.random.default_rng(3)
    n = 4000  # even: both ranks get 2,000 ratings, so the mean of their mean gradients is the global mean
    users = torch.as_tensor(rng.integers(0, 300, n))
    items = torch.as_tensor(rng.integers(0, 200, n))
    targets = torch.as_tensor(rng.uniform(0.1, 1.0, n), dtype=torch.float32)
    sparse = optimizer != "adam"
    model = BiasedMF(300, 200, 4, init_std=0.3, sparse=sparse, sparse_bias=False if distributed_run else None,
                     generator=torch.Generator().manual_seed(1))  # fmt: skip
    model.mark_known(users, items, targets)
    config = preset("default").replace(
        optimizer=optimizer, learning_rate=0.05, batch_size=n, epochs=1, patience=0,
        regularization=0.1, bias_regularization=0.05,
    )  # fmt: skip
    return model, (users, items, targets), config


def _fail_on_rank_one(pid_file: str) -> None:
    import torch.distributed as dist

    if dist.get_rank() == 1:
        time.sleep(0.5)
        raise DataError("rank-local shard is unreadable: bad.csv row 7")
    Path(pid_file).write_text(str(os.getpid()))
    dist.barrier()  # waits for rank 1 forever: the launcher must stop this rank


def _killed_on_rank_one(pid_file: str) -> None:
    import torch.distributed as dist

    if dist.get_rank() == 1:
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    Path(pid_file).write_text(str(os.getpid()))
    dist.barrier()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ----------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adagrad"])
def test_two_ranks_take_the_same_step_as_one_process(tmp_path, optimizer):
    # dense (Adam) and sparse (SGD, Adagrad) factor gradients; bias tables dense under DDP.
    # atol: a row whose summed gradient is near zero gets a sign-like first Adam step, so rounding shows
    out = tmp_path / "params.pt"
    distributed.launch(_one_step, (str(out), optimizer), nproc=2)
    ranked = torch.load(out)
    model, data, config = _tiny_problem(optimizer, distributed_run=False)
    fit_module(model, data, None, config, scale=(0.5, 5.0), generator=torch.Generator().manual_seed(0))
    alone = model.state_dict()
    for name in ("user_embedding.weight", "item_embedding.weight", "user_bias.weight", "item_bias.weight"):
        assert not torch.equal(alone[name], _tiny_problem(optimizer, False)[0].state_dict()[name])  # it moved
        torch.testing.assert_close(ranked[name], alone[name], rtol=1e-5, atol=1e-5, msg=name)


def test_a_failing_rank_stops_the_others_with_its_message(tmp_path):
    pid_file = tmp_path / "rank0.pid"
    with pytest.raises(DistributedError, match=r"rank 1 of 2 failed: rank-local shard is unreadable: bad.csv row 7"):
        distributed.launch(_fail_on_rank_one, (str(pid_file),), nproc=2)
    assert not _alive(int(pid_file.read_text()))


def test_a_killed_rank_stops_the_others(tmp_path):
    pid_file = tmp_path / "rank0.pid"
    with pytest.raises(DistributedError, match=r"rank 1 of 2 failed: the process died without a message"):
        distributed.launch(_killed_on_rank_one, (str(pid_file),), nproc=2)
    assert not _alive(int(pid_file.read_text()))


def test_unsupported_models_are_refused_before_any_process_starts(tmp_path, capsys):
    ratings = tmp_path / "r.csv"
    ratings.write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,5\n")
    for extra, words in (
        (["--model", "bayesian"], "not 'bayesian'"),
        (["--engine", "compiled"], "compiled engine"),
        (["--optimizer", "sparse_adam"], "sparse_adam cannot train on several ranks"),
    ):
        code = main(["train", "--ratings", str(ratings), "--nproc", "2", "--out", str(tmp_path / "run"), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 1 and err.count("\n") == 0 and words in err, err
        assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="torch engine"):
        preset("fast").check_distributed()


def _run_metrics(args: list[str], out: Path, launcher: list[str] | None = None) -> dict:
    command = [*(launcher or [str(BIN / "mfrec")]), "train", *args, "--out", str(out), "-q", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_two_processes_reach_the_rmse_of_one_on_ml_latest_small(ml_small, tmp_path):
    args = ["--dataset", "ml-latest-small", "--device", "cpu"]
    one = _run_metrics(args, tmp_path / "one")
    two = _run_metrics([*args, "--nproc", "2"], tmp_path / "two")
    assert one["ranks"] == 1 and two["ranks"] == 2
    rmse_one, rmse_two = one["model"]["test"]["rmse"], two["model"]["test"]["rmse"]
    assert rmse_one < 0.87 and abs(rmse_one - rmse_two) <= 0.005, (rmse_one, rmse_two)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert not list(tmp_path.glob(".two*"))  # no work folder or temporary left by any rank


def test_torchrun_launch_writes_one_run_folder(tmp_path):
    from tests.conftest import low_rank_ratings

    ratings = tmp_path / "ratings.csv"
    frame = low_rank_ratings(n_users=80, n_items=50).to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    frame.to_csv(ratings, index=False)
    torchrun = shutil.which("torchrun", path=str(BIN)) or "torchrun"
    launcher = [torchrun, "--standalone", "--nproc-per-node", "2", "--no-python", str(BIN / "mfrec")]
    args = ["--ratings", str(ratings), "--device", "cpu", "--epochs", "5"]
    two = _run_metrics(args, tmp_path / "run", launcher)
    one = _run_metrics(args, tmp_path / "alone")
    assert two["ranks"] == 2 and two["epochs_run"] == 5
    assert abs(two["model"]["test"]["rmse"] - one["model"]["test"]["rmse"]) < 0.05
    assert (tmp_path / "run" / "model.safetensors").is_file()
