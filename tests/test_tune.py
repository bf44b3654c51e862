"""Tuning (Optuna) and cross-validation."""

import json

import numpy as np
import pandas as pd
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

    out, err = capsys.readouterr()
    table = pd.read_csv(io.StringIO(out))
    assert "nothing to rank" not in err and table["ndcg@10"].notna().all()
    assert table["fold"].astype(str).tolist() == ["1", "2", "3", "mean", "std"]
    folds = table.iloc[:3]["rmse"].astype(float)
    assert table.iloc[3]["rmse"] == pytest.approx(folds.mean()) and table.iloc[4]["rmse"] == pytest.approx(folds.std())


def test_bad_fold_counts(ratings_csv, capsys):
    assert main(["cv", "--ratings", str(ratings_csv), "--folds", "1"]) == 1
    assert "folds must be from 2 to 50" in capsys.readouterr().err


def test_every_model_has_a_search_space_of_its_own_options():
    from mfrec.models import registry

    for name, spec in registry.SPECS.items():
        assert spec.search, name
        assert set(spec.search) <= set(spec.config.names()) | {"epochs", "batch_size"}, name


@pytest.mark.parametrize(
    ("text", "k", "label"),
    [("rmse", None, "rmse"), ("MAE", None, "mae"), ("ndcg", 7, "ndcg@7"), ("ndcg", None, "ndcg@10"),
     ("recall@20", None, "recall@20"), ("recall@20", 20, "recall@20")],
)  # fmt: skip
def test_metric_names(text, k, label):
    from mfrec.tune import Metric

    assert Metric.parse(text, k=k).label == label


@pytest.mark.parametrize(("text", "k"), [("rmse", 7), ("recall@20", 7)])
def test_a_cut_off_that_the_metric_does_not_take_is_a_config_error(text, k):
    """A rating metric has no cut-off, and a ranking metric that names one is not measured at another."""
    from mfrec.errors import ConfigError
    from mfrec.tune import Metric

    with pytest.raises(ConfigError, match=rf"{text}.*k={k}"):
        Metric.parse(text, k=k)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--metric", "rmse", "--k", "5"], "--k does not apply to --metric rmse"),
     (["--metric", "ndcg@5", "--k", "20"], "--metric ndcg@5 has its own cut-off"),
     (["--k", "5"], "--k does not apply to --metric rmse")],
)  # fmt: skip
def test_tune_refuses_a_k_its_metric_does_not_use(ratings_csv, tmp_path, capsys, args, message):
    out = tmp_path / "tune"
    code = main(["tune", "--ratings", str(ratings_csv), "--trials", "1", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("text", ["auc", "ndcg@0", "ndcg@x", "rmse@10", "", "ndcg@", "ndcg@ 5"])
def test_bad_metric_names_are_config_errors(text):
    from mfrec.errors import ConfigError
    from mfrec.tune import Metric

    with pytest.raises(ConfigError, match=r"metric|cut-off"):
        Metric.parse(text)


def test_trial_0_is_the_preset_and_a_ranking_metric_is_maximised(ratings_csv):
    from mfrec.config import TrainConfig
    from mfrec.data import read_ratings, split_ratings
    from mfrec.estimator import MatrixFactorization
    from mfrec.tune import Metric, tune, validation_score

    split = split_ratings(read_ratings(ratings_csv), "stratified", seed=3)
    base = TrainConfig("implicit_als", embedding_dim=8, epochs=4, regularization=1.0, device="cpu")
    result = tune(split, base=base, metric="ndcg@5", trials=3, seed=3)
    first = result.table.iloc[0]
    assert first["number"] == 0 and first["embedding_dim"] == 8 and first["regularization"] == 1.0
    direct = MatrixFactorization(base.replace(seed=3)).fit(split.train, split.val, interactions=split.test)
    assert result.base_score == pytest.approx(validation_score(direct, split, Metric("ndcg", 5)))
    assert result.best_score == result.table["val_ndcg@5"].max() >= result.base_score
    if not result.improved:
        assert result.best.to_dict() == base.replace(seed=3).to_dict()


def test_trial_0_runs_whatever_the_timeout_and_a_bad_timeout_is_named(ratings_csv, tmp_path, capsys):
    """A timeout of 0 or less ran no trial at all, and the empty table was an internal error (exit 3)."""
    from mfrec.config import TrainConfig
    from mfrec.data import read_ratings, split_ratings
    from mfrec.errors import ConfigError
    from mfrec.tune import tune

    split = split_ratings(read_ratings(ratings_csv), "stratified", seed=3)
    base = TrainConfig("biased", embedding_dim=4, epochs=2, device="cpu")
    result = tune(split, base=base, trials=5, timeout=1e-9)
    assert result.table["number"].tolist() == [0] and np.isfinite(result.base_score)
    for bad in (0, -1, float("nan"), float("inf"), "10", True):
        with pytest.raises(ConfigError, match="timeout must be a positive number of seconds"):
            tune(split, base=base, trials=2, timeout=bad)
    code = main(["tune", "--ratings", str(ratings_csv), "--timeout", "-1", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--timeout" in err and "\n" not in err and not (tmp_path / "t").exists()


def test_rating_metrics_are_refused_for_a_ranking_model(ratings_csv):
    from mfrec.config import TrainConfig
    from mfrec.data import read_ratings, split_ratings
    from mfrec.errors import ConfigError
    from mfrec.tune import tune

    split = split_ratings(read_ratings(ratings_csv), "stratified", seed=3)
    with pytest.raises(ConfigError, match="only ranks; use a ranking metric"):
        tune(split, base=TrainConfig("bpr"), metric="rmse", trials=1)


def test_a_ranking_metric_needs_a_liked_validation_rating_and_says_so_before_any_trial(ratings_csv):
    from mfrec.config import TrainConfig
    from mfrec.data import read_ratings, split_ratings
    from mfrec.errors import ConfigError
    from mfrec.tune import tune

    ratings = read_ratings(ratings_csv)
    disliked = ratings.subset(np.flatnonzero(ratings.ratings < 4))  # no rating reaches the threshold of 4 stars
    split = split_ratings(disliked, "stratified", seed=3)
    with pytest.raises(ConfigError, match=r"no rating of at least 4, so ndcg@10 has nothing to measure"):
        tune(split, base=TrainConfig("implicit_als"), metric="ndcg@10", trials=1)
    # without one, a ranking model trains its epochs (no early stopping on an undefined NDCG)
    from mfrec import MatrixFactorization

    model = MatrixFactorization(model="implicit_als", epochs=3, device="cpu").fit(split.train, split.val)
    assert len(model.history_) == 3 and all(r.val_ndcg is None for r in model.history_)


def test_tune_cli_logs_each_trial_off_a_terminal_and_says_when_trial_0_wins(ratings_csv, tmp_path, capsys):
    out = tmp_path / "tune"
    code = main(["tune", "--ratings", str(ratings_csv), "--model", "ease", "--metric", "ndcg", "--k", "5",
                 "--trials", "3", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "trial 0/2: ndcg@5" in captured.err and "trial 2/2" in captured.err
    import pandas as pd

    trials = pd.read_csv(out / "trials.csv")
    best = json.loads((out / "best.json").read_text())
    assert best["model"] == "ease"
    top = trials.loc[trials["val_ndcg@5"].idxmax()]
    assert best["regularization"] == pytest.approx(top["regularization"])
    if top["number"] == 0:
        assert "no trial beat the starting config" in captured.out
    else:
        assert "against" in captured.out


def test_folds_without_a_liked_test_rating_say_so_and_keep_the_table_clean(ratings_csv, tmp_path, capsys):
    import io

    import pandas as pd

    frame = pd.read_csv(ratings_csv)
    frame["rating"] = frame["rating"].clip(upper=3.5)  # nothing reaches the relevance threshold
    low = tmp_path / "low.csv"
    frame.to_csv(low, index=False)
    assert main(["cv", "--ratings", str(low), "--folds", "3", "--epochs", "2", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    table = pd.read_csv(io.StringIO(out))
    assert table["ndcg@10"].isna().all() and table["rmse"].notna().all()
    assert err.strip().splitlines()[-1] == ("folds 1, 2, 3: top-10: no test user has a relevant rating (at or above "
                                            "the threshold): nothing to rank against")  # fmt: skip


def test_cv_names_the_fold_a_training_error_comes_from_and_prints_whole_epochs(ratings_csv, tmp_path, capsys):
    import io

    import pandas as pd

    tiny = tmp_path / "tiny.csv"
    tiny.write_text("user,item,rating\n1,1,4\n2,1,3\n1,2,5\n2,2,1\n3,3,4\n3,1,2\n")
    code = main(["cv", "--ratings", str(tiny), "--folds", "2", "--epochs", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: fold 1 of 2: ") and "\n" not in err, err
    assert main(["cv", "--ratings", str(ratings_csv), "--folds", "2", "--epochs", "2", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(",", 1)[1] for line in lines[1:3]] == ["2", "2"]  # a fold's epochs, not 2.0
    table = pd.read_csv(io.StringIO("\n".join(lines)))
    assert table["epochs"].tolist() == [2.0, 2.0, 2.0, 0.0]


def test_a_diverging_trial_is_a_failed_trial_and_an_error_in_trial_0_is_one_line(ratings_csv, tmp_path, capsys,
                                                                                 monkeypatch):
    """A trial whose sampled values diverge ended the whole search, and the error of any trial came with
    Optuna's traceback: a later trial that diverges is recorded as failed and the search goes on; an error
    in trial 0 (the starting config on these data) is one line."""
    from mfrec.errors import DivergenceError
    from mfrec.estimator import MatrixFactorization

    fit = MatrixFactorization.fit
    fits = []

    def diverge_after_the_first(self, *args, **kwargs):
        fits.append(1)
        if len(fits) == 2:
            raise DivergenceError("training diverged at epoch 1 (train_rmse is nan)")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(MatrixFactorization, "fit", diverge_after_the_first)
    out = tmp_path / "tune"
    code = main(["tune", "--ratings", str(ratings_csv), "--trials", "3", "--epochs", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err and "trial 1/2: diverged" in err
    states = pd.read_csv(out / "trials.csv")["state"].tolist()
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    monkeypatch.setattr(MatrixFactorization, "fit", fit)
    code = main(["tune", "--ratings", str(ratings_csv), "--rating-col", "none", "--trials", "2", "--out",
                 str(tmp_path / "none")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert "predicts ratings, and these interactions have none" in err
