"""A deployment fit (``--split none``, ``--refit``), splits made elsewhere (``--split-files``) and ``--k``."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfrec.data import Ratings, load_split, split_ratings
from mfrec.data.split import split_from_parts
from mfrec.errors import ConfigError, DataError
from tests.test_cli import assert_one_line_error, ratings_csv, run  # noqa: F401 - the fixture is used below


def _parts_of(frame: pd.DataFrame, labels: np.ndarray) -> dict[str, Ratings]:
    return {
        part: Ratings.from_arrays(sub["user"].to_numpy(), sub["item"].to_numpy(), sub["rating"].to_numpy(), name=part)
        for part, sub in ((p, frame[labels == k]) for k, p in enumerate(("train", "val", "test")))
    }


def test_split_none_puts_every_rating_in_train():
    data = Ratings.from_arrays(np.array([1, 1, 2, 3]), np.array([5, 6, 5, 7]), np.array([4.0, 3.0, 5.0, 1.0]))
    split = split_ratings(data, "none")
    assert np.array_equal(split.rows["train"], np.arange(4))
    assert len(split.val) == 0 and len(split.test) == 0
    assert split.method == "none" and split.seed is None


@settings(max_examples=30, deadline=None)
@given(n=st.integers(6, 200), seed=st.integers(0, 2**16))
def test_parts_read_separately_become_one_split_with_the_same_ratings(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user": rng.integers(0, 15, n), "item": rng.permutation(n) * 3 + 1,
                          "rating": rng.choice([1.0, 2.5, 4.0, 5.0], n)})  # fmt: skip
    labels = rng.integers(0, 3, n)
    labels[0] = 0  # a training part is never empty
    split = split_from_parts(_parts_of(frame, labels))
    assert split.method == "files"
    for k, part in enumerate(("train", "val", "test")):
        got = split.part(part).to_frame().sort_values(["user", "item"]).reset_index(drop=True)
        want = frame[labels == k].sort_values(["user", "item"]).reset_index(drop=True)
        assert np.array_equal(got["user"].to_numpy(), want["user"].to_numpy())
        assert np.array_equal(got["item"].to_numpy(), want["item"].to_numpy())
        assert np.allclose(got["rating"].to_numpy(), want["rating"].to_numpy())
    # one id map across the parts: a user in train and test is one index
    assert split.data.n_users == frame["user"].nunique()


def test_a_pair_in_two_parts_is_refused_with_its_ids():
    frame = pd.DataFrame({"user": [1, 1, 2, 1], "item": [10, 11, 10, 10], "rating": [4.0, 3.0, 2.0, 5.0]})
    with pytest.raises(DataError, match=r"user 1 rated item 10 in train and test"):
        split_from_parts(_parts_of(frame, np.array([0, 0, 1, 2])))


def test_ids_that_are_numbers_in_one_part_and_text_in_another_are_one_id():
    parts = {
        "train": Ratings.from_arrays(np.array(["7", "u2"], dtype=object), np.array([1, 2]), np.array([4.0, 2.0])),
        "val": Ratings.from_arrays(np.array([7]), np.array([2]), np.array([3.0])),
        "test": Ratings.from_arrays(np.array([7]), np.array([3]), np.array([5.0])),
    }
    split = split_from_parts(parts)
    assert split.data.n_users == 2  # "7" and 7 are the same user


def test_an_empty_training_part_is_refused():
    empty = Ratings.from_arrays(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([]))
    one = Ratings.from_arrays(np.array([1]), np.array([1]), np.array([3.0]))
    with pytest.raises(DataError, match="training part holds no ratings"):
        split_from_parts({"train": empty, "val": one, "test": one})
    with pytest.raises(ConfigError, match="missing test"):
        split_from_parts({"train": one, "val": one})


def test_fractions_that_leave_nothing_to_evaluate_point_to_split_none():
    data = Ratings.from_arrays(np.arange(10) % 3, np.arange(10), np.full(10, 3.0))
    with pytest.raises(ConfigError, match="--split none"):
        split_ratings(data, "random", fractions=(1, 0, 0))


def _train(capsys, *args):
    code, out, err = run(capsys, "train", "--device", "cpu", "-q", *args)
    assert code == 0, err
    return out


def test_split_none_and_refit_train_on_every_rating(ratings_csv, tmp_path, capsys):  # noqa: F811
    validated = tmp_path / "validated"
    _train(capsys, "--ratings", str(ratings_csv), "--epochs", "30", "--patience", "2", "--out", str(validated))
    metrics = json.loads((validated / "metrics.json").read_text())
    kept = metrics["best_epoch"]
    assert metrics["split"]["sizes"]["train"] < len(pd.read_csv(ratings_csv))

    out = _train(capsys, "--refit", str(validated))
    refit = tmp_path / "validated-refit"
    assert "nothing is evaluated" in out
    config = json.loads((refit / "config.json").read_text())
    assert config["split"]["method"] == "none"
    assert config["train"]["epochs"] == kept and config["train"]["patience"] == 0
    refit_metrics = json.loads((refit / "metrics.json").read_text())
    assert refit_metrics["epochs_run"] == kept and refit_metrics["model"] == {}
    assert refit_metrics["split"]["sizes"]["train"] == len(pd.read_csv(ratings_csv))
    history = pd.read_csv(refit / "history.csv")
    assert history["val_rmse"].isna().all()  # nothing held out
    assert set(load_split(refit / "split.parquet").to_frame()["split"]) == {"train"}

    # evaluating the refit's (empty) test part is one clear line
    code, _, err = run(capsys, "evaluate", "--model", str(refit))
    assert_one_line_error(code, err, r"test part is empty .*--split none.*--ratings FILE")
    # it can still be evaluated on held-out ratings
    code, _, err = run(capsys, "evaluate", "--model", str(refit), "--ratings", str(ratings_csv))
    assert code == 0, err
    # a refit of a refit, or a refit with other options, is refused
    code, _, err = run(capsys, "train", "--refit", str(refit), "--out", str(tmp_path / "again"))
    assert_one_line_error(code, err, "already trained on every rating")
    code, _, err = run(capsys, "train", "--refit", str(validated), "--epochs", "3")
    assert_one_line_error(code, err, r"--refit retrains the run with its own saved config; leave out --epochs")
    code, _, err = run(capsys, "train", "--refit", str(tmp_path / "missing"))
    assert_one_line_error(code, err, "not a run folder")


def test_split_files_train_and_evaluate_on_the_given_parts(ratings_csv, tmp_path, capsys):  # noqa: F811
    frame = pd.read_csv(ratings_csv).rename(columns={"user": "uid", "item": "iid"})
    labels = np.random.default_rng(3).choice(3, len(frame), p=[0.7, 0.15, 0.15])
    paths = []
    for k, part in enumerate(("train", "val", "test")):
        path = tmp_path / f"{part}.csv"
        frame[labels == k].to_csv(path, index=False)
        paths.append(str(path))
    run_dir = tmp_path / "given"
    _train(capsys, "--split-files", *paths, "--user-col", "uid", "--item-col", "iid", "--epochs", "3",
           "--k", "5", "--out", str(run_dir))  # fmt: skip
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"]["method"] == "files"
    assert metrics["split"]["sizes"] == {p: int((labels == k).sum()) for k, p in enumerate(("train", "val", "test"))}
    assert "ndcg@5" in metrics["model"]["test"] and "ndcg@10" not in metrics["model"]["test"]
    saved = load_split(run_dir / "split.parquet")
    test = saved.test.to_frame().sort_values(["user", "item"])
    want = frame[labels == 2].sort_values(["uid", "iid"])
    assert np.array_equal(test["item"].to_numpy(), want["iid"].to_numpy())
    # the run's config records the files; --refit trains on the union of the three
    _train(capsys, "--refit", str(run_dir))
    refit = json.loads((tmp_path / "given-refit" / "metrics.json").read_text())
    assert refit["split"]["sizes"]["train"] == len(frame)

    code, _, err = run(capsys, "train", "--split-files", *paths, "--split", "random")
    assert_one_line_error(code, err, "--split-files is the split")
    code, _, err = run(capsys, "train", "--split-files", paths[0], paths[0], paths[2],
                       "--user-col", "uid", "--item-col", "iid", "--out", str(tmp_path / "dup"))  # fmt: skip
    assert_one_line_error(code, err, r"rated item .* in train and val")


def test_k_sets_the_cut_off_of_the_printed_metrics(ratings_csv, tmp_path, capsys):  # noqa: F811
    out = _train(capsys, "--ratings", str(ratings_csv), "--epochs", "2", "--k", "3", "--out", str(tmp_path / "k3"))
    assert "test top-3" in out
    code, stdout, err = run(capsys, "evaluate", "--model", str(tmp_path / "k3"), "--k", "7", "--json")
    assert code == 0, err
    assert "ndcg@7" in json.loads(stdout)
    code, _, err = run(capsys, "train", "--ratings", str(ratings_csv), "--k", "0")
    assert code == 2 and "--k" in err


SPLIT_OPTION_MISUSE = [
    (["--split-files", "{p}", "{p}", "{p}", "--split-fractions", "0.5", "0.25", "0.25"],
     "--split-fractions does not apply to --split-files"),
    (["--ratings", "{p}", "--split-files", "{p}", "{p}", "{p}"], "--split-files holds the data"),
    (["--ratings", "{p}", "--split", "none", "--split-seed", "3"], "--split-seed does not apply to --split none"),
    (["--ratings", "{p}", "--split", "temporal", "--split-seed", "3"],
     "--split-seed does not apply to --split temporal"),
    (["--ratings", "{p}", "--holdout", "2"], "--holdout does not apply to --split stratified"),
    (["--ratings", "{p}", "--split", "temporal-user", "--split-fractions", "0.5", "0.25", "0.25"],
     "--split-fractions does not apply to --split temporal-user"),
    # what stops on or measures held-out ratings has none under --split none
    (["--ratings", "{p}", "--split", "none", "--patience", "2"], "--patience needs validation ratings"),
    (["--ratings", "{p}", "--split", "none", "--target-rmse", "0.9"], "--target-rmse needs validation ratings"),
    (["--ratings", "{p}", "--split", "none", "--k", "5"], "--k does not apply to --split none"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), SPLIT_OPTION_MISUSE, ids=[m for _, m in SPLIT_OPTION_MISUSE])
def test_a_split_option_the_split_does_not_use_is_a_usage_error(ratings_csv, tmp_path, capsys, args, message):  # noqa: F811
    """Given but not used would be ignored without a word: the run would not be the split that was asked for."""
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", *[a.format(p=ratings_csv) for a in args], "--out", str(out), "-q")
    assert code == 2
    assert_one_line_error(code, err, message)
    assert not out.exists()


def test_a_refit_refuses_split_options(ratings_csv, tmp_path, capsys):  # noqa: F811
    run_dir = tmp_path / "run"
    _train(capsys, "--ratings", str(ratings_csv), "--epochs", "2", "--out", str(run_dir))
    for option in (["--split-seed", "7"], ["--split-fractions", "0.5", "0.25", "0.25"], ["--holdout", "2"],
                   ["--k", "5"]):  # fmt: skip
        code, _, err = run(capsys, "train", "--refit", str(run_dir), *option)
        assert_one_line_error(code, err, f"leave out {option[0]}")
    # --data-path locates a --dataset copy: a refit (or resume) of a file's run would ignore it
    code, _, err = run(capsys, "train", "--refit", str(run_dir), "--data-path", str(tmp_path))
    assert code == 2
    assert_one_line_error(code, err, "--refit: this run read .*, not a --dataset; leave out --data-path")


def test_evaluating_on_the_ratings_a_model_trained_on_has_nothing_to_rank(ratings_csv, tmp_path, capsys):  # noqa: F811
    """Every pair there is one the lists leave out: no metric, instead of zeros that read as a bad model."""
    run_dir = tmp_path / "all"
    _train(capsys, "--ratings", str(ratings_csv), "--split", "none", "--epochs", "2", "--out", str(run_dir))
    code, out, err = run(capsys, "evaluate", str(run_dir), "--ratings", str(ratings_csv))
    assert code == 0, err
    assert "that it did not train on: nothing to rank against" in out and "ndcg 0.0000" not in out


def test_evaluating_on_ratings_the_run_trained_on_says_so(ratings_csv, tmp_path, capsys):  # noqa: F811
    """A model fit on every rating, evaluated on another run's test part, measured its fit and did not say so."""
    everything, held_out = tmp_path / "all", tmp_path / "held"
    _train(capsys, "--ratings", str(ratings_csv), "--split", "none", "--epochs", "2", "--out", str(everything))
    _train(capsys, "--ratings", str(ratings_csv), "--epochs", "2", "--out", str(held_out))
    code, out, err = run(capsys, "evaluate", str(everything), "--split", str(held_out / "split.parquet"), "--json")
    assert code == 0, err
    tested = json.loads(out)
    assert tested["trained_on"] == tested["n"] > 0
    assert f"trained on {tested['n']:,} of these {tested['n']:,} ratings" in err and "measure fit" in err
    code, out, err = run(capsys, "evaluate", str(held_out), "--json")  # its own test part: nothing trained on
    assert code == 0 and "trained_on" not in json.loads(out) and "note:" not in err
    code, out, err = run(capsys, "evaluate", str(held_out), "--ratings", str(ratings_csv), "--json")
    assert 0 < json.loads(out)["trained_on"] < json.loads(out)["n"]


def test_a_user_or_item_without_training_ratings_is_noted_beside_the_answer(ratings_csv, tmp_path, capsys):  # noqa: F811
    """A user seen only in the held-out part got a list (and a prediction) that looked personal."""
    frame = pd.read_csv(ratings_csv)
    late = int(frame["timestamp"].max()) + 1 if "timestamp" in frame else 2_000_000_000
    if "timestamp" not in frame:
        frame["timestamp"] = np.arange(len(frame))
    extra = pd.DataFrame({"user": [90_000, 90_000], "item": [frame["item"].iloc[0], 91_000], "rating": [4.0, 5.0],
                          "timestamp": [late, late]})  # fmt: skip
    path = tmp_path / "late.csv"
    pd.concat([frame, extra]).to_csv(path, index=False)
    run_dir = tmp_path / "run"
    _train(capsys, "--ratings", str(path), "--timestamp-col", "timestamp", "--split", "temporal", "--epochs", "2",
           "--out", str(run_dir))  # fmt: skip
    code, _, err = run(capsys, "predict", str(run_dir), "--user", "90000", "--item", "91000")
    assert code == 0 and "note: user 90000 and item 91000 had no training ratings" in err, err
    code, _, err = run(capsys, "recommend", str(run_dir), "--user", "90000", "-n", "3")
    assert code == 0 and "note: user 90000 had no training ratings: the list is not personal" in err, err
    trained = str(frame["user"].iloc[0])
    code, _, err = run(capsys, "recommend", str(run_dir), "--user", trained, "-n", "3")
    assert code == 0 and "had no training ratings" not in err


def test_a_run_given_relative_paths_refits_from_any_folder(ratings_csv, tmp_path, capsys, monkeypatch):  # noqa: F811
    """config.json records the files a run read as absolute paths, so --refit (and --resume) read the same
    files wherever they are started; before, a run trained on `--ratings r.csv` refit only from its folder."""
    data = tmp_path / "data"
    data.mkdir()
    frame = pd.read_csv(ratings_csv)
    frame.to_csv(data / "r.csv", index=False)
    labels = np.random.default_rng(0).choice(3, len(frame), p=[0.7, 0.15, 0.15])
    for k, part in enumerate(("train", "val", "test")):
        frame[labels == k].to_csv(data / f"{part}.csv", index=False)
    monkeypatch.chdir(data)
    _train(capsys, "--ratings", "r.csv", "--epochs", "2", "--out", str(tmp_path / "rel"))
    _train(capsys, "--split-files", "train.csv", "val.csv", "test.csv", "--epochs", "2",
           "--out", str(tmp_path / "files"))
    config = json.loads((tmp_path / "rel" / "config.json").read_text())
    assert config["ratings_file"] == str(data / "r.csv")
    assert json.loads((tmp_path / "files" / "config.json").read_text())["split"]["files"][0] == str(data / "train.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in ("rel", "files"):
        _train(capsys, "--refit", str(tmp_path / name))
        refit = json.loads((tmp_path / f"{name}-refit" / "metrics.json").read_text())
        assert refit["split"]["sizes"]["train"] == len(frame)
