"""Nonsense is refused with one line: NaN scales, empty test parts, resume with options, bad ports."""

import json
import socket

import pytest

from mfrec.cli import main


@pytest.fixture
def ratings_csv(tmp_path):
    from tests.conftest import low_rank_ratings

    path = tmp_path / "ratings.csv"
    frame = low_rank_ratings().to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    frame.to_csv(path, index=False)
    return path


def one_line_error(capsys, code, words):
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and err.startswith("error: ") and "\n" not in err and words in err, err


@pytest.mark.parametrize("scale", [("nan", "5"), ("5", "1"), ("1", "inf"), ("-inf", "5")])
def test_a_scale_that_is_not_two_finite_increasing_numbers(ratings_csv, tmp_path, capsys, scale):
    code = main(["train", "--ratings", str(ratings_csv), "--scale", *scale, "--out", str(tmp_path / "run")])
    one_line_error(capsys, code, "rating scale must be two finite numbers")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["--split", "temporal-user", "--holdout", "100"],
                                  ["--split", "random", "--split-fractions", "1", "0", "0"],
                                  ["--split", "temporal-user", "--holdout", "30"]])  # fmt: skip
def test_a_split_without_test_ratings_is_an_error(ratings_csv, tmp_path, capsys, args):
    code = main(["train", "--ratings", str(ratings_csv), "--timestamp-col", "timestamp", *args, "-q", "--out",
                 str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and err.startswith("error: ") and "\n" not in err, err
    assert not (tmp_path / "r").exists()


def test_metrics_files_never_hold_nan(ratings_csv, tmp_path):
    from mfrec._io import json_text

    text = json_text({"a": float("nan"), "b": [float("inf"), 1.0], "c": {"d": -float("inf")}})
    assert json.loads(text) == {"a": None, "b": [None, 1.0], "c": {"d": None}}
    assert main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "-q", "--device", "cpu", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    json.loads((tmp_path / "run" / "metrics.json").read_text(), parse_constant=pytest.fail)


@pytest.mark.parametrize("extra", [["--epochs", "2"], ["--learning-rate", "0.5"], ["--preset", "fast"]])
def test_resume_refuses_options_it_would_ignore(ratings_csv, tmp_path, capsys, extra):
    code = main(["train", "--resume", str(tmp_path / "run"), *extra])
    one_line_error(capsys, code, "--resume continues the run with its own saved config")


@pytest.mark.parametrize("shrinkage", ["nan", "inf", "-1"])
def test_similar_refuses_a_shrinkage_that_is_not_a_number_at_least_zero(ratings_csv, tmp_path, capsys, shrinkage):
    assert main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "-q", "--device", "cpu", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["similar", "--model", str(tmp_path / "run"), "--item", "1000", "--shrinkage", shrinkage])
    one_line_error(capsys, code, "shrinkage")


@pytest.mark.parametrize("port", ["0", "99999", "-1"])
def test_serve_refuses_a_port_out_of_range(tmp_path, capsys, port):
    code = main(["serve", str(tmp_path / "model.safetensors"), "--port", port])
    one_line_error(capsys, code, "--port")


def test_serve_reports_a_port_in_use_in_one_line(ratings_csv, tmp_path, capsys):
    assert main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "-q", "--device", "cpu", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        code = main(["serve", str(tmp_path / "run"), "--port", str(taken.getsockname()[1])])
    finally:
        taken.close()
    one_line_error(capsys, code, "cannot listen on 127.0.0.1")
