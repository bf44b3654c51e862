"""The command line: one clear line and a non-zero exit for every user error, no traceback."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mfrec.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, pattern):
    import re

    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def ratings_csv(tmp_path):
    from tests.conftest import low_rank_ratings

    frame = low_rank_ratings().to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def trained_run(ratings_csv, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(
        capsys,
        "train",
        "--ratings",
        str(ratings_csv),
        "--timestamp-col",
        "timestamp",
        "--split",
        "random",
        "--epochs",
        "5",
        "--device",
        "cpu",
        "--out",
        str(out),
        "-q",
    )
    assert code == 0, stdout
    return out


def test_train_writes_a_complete_run_folder(trained_run, capsys):
    import json

    names = {p.name for p in trained_run.iterdir()}
    assert names == {"config.json", "split.parquet", "history.csv", "metrics.json", "loss.png", "model.safetensors",
                     "report.html",
                     "SHA256SUMS"}  # fmt: skip
    config = json.loads((trained_run / "config.json").read_text())
    assert config["train"]["epochs"] == 5 and config["split"]["method"] == "random"
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"global_mean", "bias_only", "popularity"}
    assert 0 <= metrics["model"]["test"]["ndcg@10"] <= 1
    assert metrics["model"]["test"]["rmse"] < metrics["baselines"]["global_mean"]["test"]["rmse"]
    assert (trained_run / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_commands_on_a_saved_model(trained_run, capsys):
    code, out, _ = run(capsys, "recommend", "--model", str(trained_run), "--user", "100", "-n", "3")
    assert code == 0 and len(out.strip().splitlines()) == 4 and "rank" in out
    # data without item metadata: the table has no title column of "None"s; JSON keeps the key, as null
    assert "title" not in out and "None" not in out
    code, out, _ = run(capsys, "similar", "--model", str(trained_run), "--item", "1000", "-n", "3")
    assert code == 0 and "title" not in out and "None" not in out and "similarity" in out
    code, out, _ = run(capsys, "recommend", "--model", str(trained_run), "--user", "100", "-n", "1", "--format", "json")
    assert code == 0 and '"title":null' in out
    code, out, _ = run(capsys, "similar", "--model", str(trained_run), "--item", "1000", "-n", "3", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "rank,item,similarity,title" and len(out.splitlines()) == 4
    code, by_factors, _ = run(capsys, "similar", "--model", str(trained_run), "--item", "1000", "-n", "3",
                              "--format", "csv", "--similar", "factors")  # fmt: skip
    assert code == 0 and by_factors != out  # the default (ratings) is not the factor cosine here
    code, _, err = run(capsys, "similar", "--model", str(trained_run), "--item", "1000", "--similar", "pearson")
    assert code == 2 and "auto" in err and "ratings" in err
    code, out, _ = run(capsys, "predict", "--model", str(trained_run), "--user", "100", "--item", "1000")
    assert code == 0 and 0.5 <= float(out.split()[0]) <= 5.0
    code, out, _ = run(capsys, "evaluate", "--model", str(trained_run), "--json")
    assert code == 0 and '"rmse"' in out


def test_existing_run_is_not_overwritten_without_flag(trained_run, ratings_csv, capsys):
    before = (trained_run / "model.safetensors").read_bytes()
    code, _, err = run(
        capsys,
        "train",
        "--ratings",
        str(ratings_csv),
        "--epochs",
        "1",
        "--split",
        "random",
        "--out",
        str(trained_run),
        "-q",
    )
    assert_one_line_error(code, err, "already exists; pass --overwrite")
    assert (trained_run / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("user,item,score\n1,2,3\n", r"missing column\(s\) 'rating'"),
        ("user,item,rating\n1,2,good\n", r"row 2: rating 'good' is not a number"),
        ("user,item,rating\n1,2,NaN\n", r"row 2: rating is missing"),
        ("user,item,rating\n1,2,\n", r"row 2: rating is missing"),
        ("user,item,rating\n1,2,4\n1,3,11\n", r"row 3: rating 11 is outside the rating scale"),
        ("user,item,rating\n", r"no ratings"),
        ("", r"empty"),
        ("user;item;rating\n1;2;3\n", r"missing column"),
    ],
)
def test_bad_ratings_files(tmp_path, capsys, content, pattern):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = run(capsys, "train", "--ratings", str(path), "--out", str(tmp_path / "o"), "-q")
    assert_one_line_error(code, err, pattern)
    assert not (tmp_path / "o").exists()


def test_a_missing_column_names_the_found_one_and_the_flag_that_takes_it(tmp_path, capsys):
    """MovieLens's own header: the error names the flags, and the command it suggests trains."""
    rows = "".join(f"{u},{i},{(u * i) % 5 + 1},{u * 10 + i}\n" for u in range(8) for i in range(8))
    path = tmp_path / "movielens.csv"
    path.write_text("userId,movieId,rating,timestamp\n" + rows)
    base = ["train", "--ratings", str(path), "--split", "random", "--epochs", "1", "-q"]
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "a"))
    assert_one_line_error(code, err, r"name them: --user-col userId --item-col movieId \(Columns\(user='userId'")
    hint = err.split("name them: ")[1].split(" (")[0].split()
    code, _, err = run(capsys, *base, *hint, "--out", str(tmp_path / "b"))
    assert code == 0 and (tmp_path / "b" / "model.safetensors").exists()
    path.write_text("a,b,c\n1,2,3\n")  # nothing to suggest: no hint
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "c"))
    assert_one_line_error(code, err, r"found 'a', 'b', 'c'$")


def test_evaluating_ratings_without_a_liked_item_says_so_instead_of_zeros(trained_run, tmp_path, capsys):
    path = tmp_path / "disliked.csv"
    path.write_text("user,item,rating\n0,0,1\n1,1,2\n")
    code, out, _ = run(capsys, "evaluate", "--model", str(trained_run), "--ratings", str(path))
    assert code == 0 and "RMSE" in out
    assert "top-10: no user the model knows has an item here with a rating of at least 4" in out
    assert "ndcg 0.0000" not in out



def test_evaluating_on_another_scale_or_without_ratings_measures_no_stars(trained_run, tmp_path, capsys):
    """A 0.5-5 model scored against ratings from 1 to 10 reported "RMSE 3.97 (stars)", and against interactions
    without ratings an RMSE against 1s: neither error means anything. The first is refused; the second is
    measured by ranking alone, and says so."""
    import mfrec

    ten = tmp_path / "ten.csv"
    ten.write_text("user,item,rating\n0,0,9\n1,1,2\n")
    code, _, err = run(capsys, "evaluate", "--model", str(trained_run), "--ratings", str(ten), "--scale", "1", "10")
    assert_one_line_error(code, err, r"ten.csv: ratings from 2 to 9, outside this model's scale, 0.5 to 5")
    code, out, err = run(capsys, "evaluate", "--model", str(trained_run), "--ratings", str(ten), "--rating-col",
                         "none")  # fmt: skip
    assert code == 0 and "RMSE" not in out and "2 interactions" in out
    assert "interactions without ratings: RMSE and MAE are not measured" in err
    model = mfrec.load_model(trained_run)
    with pytest.raises(mfrec.errors.DataError, match="interactions without ratings"):
        model.evaluate(mfrec.read_ratings(ten, columns=mfrec.Columns(rating=None)))


def test_none_means_no_column_for_the_timestamp_as_for_the_rating(tmp_path, capsys):
    """--rating-col none meant no rating column, and --timestamp-col none looked for a column named 'none'."""
    rows = "".join(f"{u},{i},{(u + i) % 5 + 1}\n" for u in range(8) for i in range(8))
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + rows)
    code, _, err = run(capsys, "train", "--ratings", str(path), "--timestamp-col", "none", "--epochs", "1",
                       "--out", str(tmp_path / "run"), "-q")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["columns"]["timestamp"] is None


def test_duplicates_are_reported_or_refused(tmp_path, capsys):
    rows = "".join(f"{u},{i},{(u + i) % 5 + 1},{u * 10 + i}\n" for u in range(8) for i in range(8))
    path = tmp_path / "dups.csv"
    path.write_text("user,item,rating,ts\n" + rows + "0,0,5,999\n")
    base = ["train", "--ratings", str(path), "--timestamp-col", "ts", "--split", "random", "--epochs", "1"]
    code, _, err = run(capsys, *base, "--duplicates", "error", "--out", str(tmp_path / "a"), "-q")
    assert_one_line_error(code, err, r"row 66: duplicate rating for user 0 and item 0")
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "b"))
    assert code == 0 and "note:" in err and "dropped 1 duplicate" in err


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["train", "--dataset", "ml-2m"], r"unknown dataset 'ml-2m'"),
        (["train", "--ratings", "/nonexistent/r.csv"], r"no such file"),
        (["train"], r"exactly one of --dataset"),
        (["train", "--dataset", "ml-latest-small", "--preset", "best"], r"unknown preset 'best'"),
        (
            ["train", "--dataset", "ml-latest-small", "--learning-rate", "-1"],
            r"learning_rate must be positive|must be a positive",
        ),
        (["train", "--dataset", "ml-latest-small", "--epochs", "many"], r"'many' is not a valid integer"),
        (["recommend", "--model", "/nonexistent", "--user", "1"], r"no such model file"),
        (["datasets", "info", "ml-2m"], r"unknown dataset"),
        (["frobnicate"], r"No such command"),
    ],
)
def test_usage_and_lookup_errors(capsys, tmp_path, args, pattern):
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "o"), "-q"]
    code, _, err = run(capsys, *args)
    assert_one_line_error(code, err, pattern)


def test_unknown_user_item_and_bad_n(trained_run, capsys):
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--user", "999999")
    assert_one_line_error(code, err, r"unknown user 999999")
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--user", "abc")
    assert_one_line_error(code, err, r"unknown user 'abc'")
    code, _, err = run(capsys, "similar", "--model", str(trained_run), "--item", "5")
    assert_one_line_error(code, err, r"unknown item 5")
    code, _, err = run(capsys, "predict", "--model", str(trained_run), "--user", "999", "--item", "1000")
    assert_one_line_error(code, err, r"unknown user 999")
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--user", "100", "-n", "0")
    assert_one_line_error(code, err, r"n must be an integer from 1")


@pytest.mark.parametrize(
    "command",
    [["recommend", "--user", "100", "-n", "3"], ["similar", "--item", "1000", "-n", "3"],
     ["predict", "--user", "100", "--item", "1000"], ["evaluate", "--json"]],
)
def test_the_model_as_an_argument_or_an_option(trained_run, capsys, command):
    """``mfrec recommend RUN`` answers as ``mfrec recommend --model RUN`` (and as ``mfrec serve RUN`` reads it)."""
    name, *rest = command
    code, as_option, _ = run(capsys, name, "--model", str(trained_run), *rest)
    assert code == 0 and as_option.strip()
    code, as_argument, _ = run(capsys, name, str(trained_run), *rest)
    assert code == 0
    assert as_argument == as_option
    code, _, err = run(capsys, name, *rest)
    assert code == 2
    assert_one_line_error(code, err, r"which model\? give a model file or run folder")
    code, _, err = run(capsys, name, str(trained_run), "--model", str(trained_run.parent), *rest)
    assert code == 2
    assert_one_line_error(code, err, r"two models given")


def test_offline_without_a_copy(tmp_path, capsys, monkeypatch):
    import urllib.error

    from mfrec.data import fetch

    monkeypatch.setenv("MFREC_DATA", str(tmp_path))
    monkeypatch.setattr(
        fetch.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline"))
    )
    code, _, err = run(capsys, "datasets", "fetch", "ml-1m")
    assert_one_line_error(code, err, r"ml-1m is not on this machine .*put ml-1m.zip or its extracted folder")


def test_a_real_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mfrec.cli", "train", "--ratings", str(bad), "-q", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {bad}, row 2: rating 'x' is not a number"
    assert proc.stdout == ""


def test_recommend_for_a_new_user(trained_run, capsys):
    code, out, _ = run(
        capsys, "recommend", "--model", str(trained_run), "--ratings", "1000=5,1001=1.5", "-n", "4", "--format", "csv"
    )
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "rank,item,stars,title" and len(lines) == 5  # a rating model: stars, no user column
    assert not {"1000", "1001"} & {line.split(",")[1] for line in lines[1:]}
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--ratings", "1000:5")
    assert_one_line_error(code, err, r"'1000:5' is not ITEM=RATING")
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--ratings", "424242=4")
    assert_one_line_error(code, err, r"unknown item 424242")
    code, _, err = run(capsys, "recommend", "--model", str(trained_run))
    assert_one_line_error(code, err, r"exactly one of --user")


@pytest.fixture
def interactions_csv(tmp_path):
    from tests.conftest import low_rank_ratings

    frame = low_rank_ratings().to_frame()
    frame = frame[frame["rating"] >= 3.0][["user", "item"]]  # views only, no rating column
    path = tmp_path / "views.csv"
    frame.to_csv(path, index=False)
    return path


def test_implicit_model_on_interactions_end_to_end(interactions_csv, tmp_path, capsys):
    import json

    import pandas as pd

    out = tmp_path / "implicit"
    code, stdout, err = run(capsys, "train", "--ratings", str(interactions_csv), "--rating-col", "none",
                            "--model", "implicit_als", "--embedding-dim", "8", "--regularization", "1",
                            "--split", "random", "--out", str(out), "-q")  # fmt: skip
    assert code == 0, err
    assert "ndcg" in stdout and "RMSE" not in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "implicit_als"
    assert 0 < metrics["model"]["test"]["ndcg@10"] <= 1 and "popularity" in metrics["baselines"]
    assert json.loads((out / "config.json").read_text())["preset"] == "implicit"
    code, stdout, _ = run(capsys, "evaluate", "--model", str(out))
    assert code == 0 and "ndcg" in stdout and "RMSE" not in stdout
    recs = tmp_path / "recs.parquet"
    code, stdout, _ = run(capsys, "recommend", "--model", str(out), "--all-users", "--out", str(recs), "-n", "3")
    assert code == 0
    frame = pd.read_parquet(recs)
    assert list(frame.columns) == ["user", "rank", "item", "score", "title"]
    assert frame.groupby("user").size().eq(3).all() and frame["user"].nunique() > 50
    code, _, err = run(capsys, "predict", "--model", str(out), "--user", "100", "--item", "1000")
    assert_one_line_error(code, err, r"needs a rating model")


def test_batch_output_for_a_users_file_and_errors(trained_run, tmp_path, capsys):
    import pandas as pd

    users = tmp_path / "users.txt"
    users.write_text("100\n101\n")
    out = tmp_path / "recs.csv"
    code, stdout, _ = run(capsys, "recommend", "--model", str(trained_run), "--users-file", str(users),
                          "--out", str(out), "-n", "2")  # fmt: skip
    assert code == 0 and "4 recommendations written" in stdout
    assert pd.read_csv(out)["user"].tolist() == [100, 100, 101, 101]
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--all-users")
    assert_one_line_error(code, err, r"add --out")
    users.write_text("100\n999999\n")
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--users-file", str(users),
                       "--out", str(tmp_path / "x.parquet"))  # fmt: skip
    assert_one_line_error(code, err, r"unknown user 999999")
    assert not (tmp_path / "x.parquet").exists()
    code, _, err = run(
        capsys, "recommend", "--model", str(trained_run), "--all-users", "--out", str(tmp_path / "r.txt")
    )
    assert_one_line_error(code, err, r"\.parquet or \.csv")
    # a table with a user column (here gzip-compressed) works too; an empty file writes nothing
    import gzip

    table = tmp_path / "users.csv.gz"
    table.write_bytes(gzip.compress(b"user,segment\n101,a\n100,b\n"))
    code, stdout, _ = run(capsys, "recommend", "--model", str(trained_run), "--users-file", str(table),
                          "--out", str(out), "-n", "1")  # fmt: skip
    assert code == 0 and pd.read_csv(out)["user"].tolist() == [101, 100]
    users.write_text("\n")
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--users-file", str(users),
                       "--out", str(tmp_path / "none.csv"))  # fmt: skip
    assert_one_line_error(code, err, r"no user ids \(the file is empty\)")
    assert not (tmp_path / "none.csv").exists()
    users.write_text("id\n100\n101\n")  # a header that names no 'user' column
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--users-file", str(users),
                       "--out", str(tmp_path / "none.csv"))  # fmt: skip
    assert_one_line_error(code, err, r"users\.txt: id 1 of 3: unknown user 'id'.*\(if it is a header, name the "
                                     r"column 'user'\)")  # fmt: skip
    users.write_text("100\n999\n101\n998\n997\n")  # where the first unknown id sits, and how many more there are
    code, _, err = run(capsys, "recommend", "--model", str(trained_run), "--users-file", str(users),
                       "--out", str(tmp_path / "none.csv"))  # fmt: skip
    assert_one_line_error(code, err, r"users\.txt: id 2 of 5: unknown user 999; 2 more of its ids are not users")
    assert "header" not in err and not (tmp_path / "none.csv").exists()


@pytest.mark.parametrize("mode", ["user", "ratings", "user-out", "all-users-out"])
def test_exclude_holds_in_every_way_of_asking(trained_run, tmp_path, capsys, mode):
    """--exclude was dropped for a new user's ratings and for every --out; an option recommend does not apply
    in a mode (--include-seen for a new user, --format with --out) is a usage error, not ignored."""
    import json

    import pandas as pd

    model = ["recommend", str(trained_run), "-n", "1"]
    asking = {"user": ["--user", "100"], "ratings": ["--ratings", "1000=5,1001=4"],
              "user-out": ["--user", "100", "--out", str(tmp_path / "a.csv")],
              "all-users-out": ["--all-users", "--out", str(tmp_path / "b.csv")]}[mode]  # fmt: skip

    def first_items(*extra) -> list:
        code, stdout, err = run(capsys, *model, *asking, *extra, *(["--format", "json"] if "--out" not in asking
                                                                     else []))  # fmt: skip
        assert code == 0, err
        if "--out" in asking:
            path = Path(asking[asking.index("--out") + 1])
            items = pd.read_csv(path).groupby("user")["item"].first().tolist()
            path.unlink()
            path.with_name(path.name + ".sha256").unlink()
            return items
        return [row["item"] for row in json.loads(stdout)]

    before = first_items()
    after = first_items("--exclude", str(before[0]))
    assert before[0] not in after
    if mode == "ratings":
        code, _, err = run(capsys, *model, *asking, "--include-seen")
        assert code == 2 and "--include-seen is for known users" in err
    if "--out" in asking:
        code, _, err = run(capsys, *model, *asking, "--format", "csv")
        assert code == 2 and "--format is for the screen" in err


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--dataset", "ml-latest-small", "--user-col", "userId"], "--user-col describes a --ratings file"),
    (["train", "--dataset", "ml-latest-small", "--scale", "1", "10"], "--scale describes a --ratings file"),
    (["train", "--ratings", "{csv}", "--data-path", "{csv}"], "--data-path is a local copy of a --dataset"),
    (["cv", "--ratings", "{csv}", "--data-path", "{csv}"], "--data-path is a local copy of a --dataset"),
    (["tune", "--ratings", "{csv}", "--data-path", "{csv}"], "--data-path is a local copy of a --dataset"),
    (["train", "--ratings", "sqlite:///{tmp}/p.sqlite", "--item-col", "movie"], "a profile database has its own"),
    (["evaluate", "{run}", "--ratings", "{csv}", "--part", "val"], "--ratings evaluates on that file instead"),
    (["evaluate", "{run}", "--ratings", "{csv}", "--split", "{run}/split.parquet"], "--split and --part choose"),
    (["evaluate", "{run}", "--user-col", "uid"], "without one it has nothing to read"),
    (["evaluate", "{run}", "--implicit"], "without one it has nothing to read"),
    (["train", "--refit", "{run}", "--sep", ";"], "leave out --sep"),
])  # fmt: skip
def test_a_data_option_the_source_does_not_read_is_a_usage_error(trained_run, ratings_csv, tmp_path, capsys, args,
                                                                  message):  # fmt: skip
    """Each of these was read by nothing: the run used other columns or another copy than the line said."""
    filled = [a.format(csv=ratings_csv, run=trained_run, tmp=tmp_path) for a in args]
    code, _, err = run(capsys, *filled, *([] if filled[0] in ("evaluate", "cv") else ["--out", str(tmp_path / "o")]))
    assert code == 2
    assert_one_line_error(code, err, re.escape(message))
    assert not (tmp_path / "o").exists() and not (tmp_path / "p.sqlite").exists()


def test_rating_model_refuses_interactions_without_ratings(interactions_csv, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--ratings", str(interactions_csv), "--rating-col", "none",
                       "--model", "biased", "--out", str(tmp_path / "o"), "-q")  # fmt: skip
    assert_one_line_error(code, err, r"predicts ratings, and these interactions have none")


def test_engine_flag_offers_auto_where_a_model_has_it(ratings_csv, tmp_path, capsys):
    common = ["--ratings", str(ratings_csv), "--split", "random", "--epochs", "2", "--device", "cpu", "-q"]
    code, _, err = run(capsys, "train", "--model", "implicit_als", "--engine", "auto", "--embedding-dim", "4",
                         *common, "--out", str(tmp_path / "als"))  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, "train", "--model", "biased", "--engine", "auto", *common, "--out", str(tmp_path / "b"))
    assert_one_line_error(code, err, "engine must be one of torch, compiled, not 'auto'")
    assert not (tmp_path / "b").exists()


def test_evaluate_on_the_training_part_says_ranking_is_not_measured_there(trained_run, capsys):
    # every training item is one the user has seen and is left out of a top-k list: NDCG there was always 0
    import json

    code, out, _ = run(capsys, "evaluate", "--model", str(trained_run), "--part", "train")
    assert code == 0 and "RMSE" in out
    assert out.strip().splitlines()[-1].startswith("top-10: not measured on the training part")
    code, out, _ = run(capsys, "evaluate", "--model", str(trained_run), "--part", "train", "--json")
    metrics = json.loads(out)
    assert code == 0 and metrics["ndcg@10"] is None and metrics["users"] == 0 and metrics["rmse"] > 0
    code, out, _ = run(capsys, "evaluate", "--model", str(trained_run), "--part", "test", "--json")
    assert code == 0 and json.loads(out)["ndcg@10"] is not None


@pytest.mark.parametrize("words", [[], ["datasets"]])
def test_a_group_alone_prints_its_help_not_an_error(capsys, words):
    """`mfrec` alone printed "error: Usage: ..." with the whole help after it, and exit 2."""
    code, out, err = run(capsys, *words)
    assert code == 0 and out.startswith("Usage: mfrec") and "Commands:" in out and err == ""


def test_python_dash_m_mfrec_is_the_command_line():
    done = subprocess.run([sys.executable, "-m", "mfrec", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("mfrec, version")
