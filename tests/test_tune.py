"""Tuning (Optuna) and cross-validation."""

import json

import pytest

from mfrec.cli import main

pytest.importorskip("optuna")


@pytest.fixture
def ratings_csv(tmp_path):
    from tests.conftest import low_rank_ratings

    frame = low_rank_ratings().to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


def test_tune_writes_a_config_that_train_accepts(ratings_csv, tmp_path, capsys):
    out = tmp_path / "tune"
    assert main(["tune", "--ratings", str(ratings_csv), "--trials", "4", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"best.json", "trials.csv", "search.png", "SHA256SUMS"}
    import subprocess

    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out).returncode == 0
    best = json.loads((out / "best.json").read_text())
    assert best["model"] in ("biased", "dot") and 16 <= best["embedding_dim"] <= 128
    import pandas as pd

    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and trials["val_rmse"].min() > 0
    capsys.readouterr()
    run = tmp_path / "run"
    assert main(["train", "--ratings", str(ratings_csv), "--config", str(out / "best.json"), "--split", "random",
                 "--out", str(run), "-q"]) == 0  # fmt: skip
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["embedding_dim"] == best["embedding_dim"] and config["learning_rate"] == best["learning_rate"]


def test_cross_validation_reports_folds_mean_and_std(ratings_csv, capsys):
    assert main(["cv", "--ratings", str(ratings_csv), "--folds", "3", "--epochs", "5", "--format", "csv"]) == 0
    import io

    import pandas as pd

    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["fold"].astype(str).tolist() == ["1", "2", "3", "mean", "std"]
    folds = table.iloc[:3]["rmse"].astype(float)
    assert table.iloc[3]["rmse"] == pytest.approx(folds.mean()) and table.iloc[4]["rmse"] == pytest.approx(folds.std())


def test_bad_fold_counts(ratings_csv, capsys):
    assert main(["cv", "--ratings", str(ratings_csv), "--folds", "1"]) == 1
    assert "folds must be from 2 to 50" in capsys.readouterr().err
