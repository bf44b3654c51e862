"""The bad-input corpus: each case is a typed error in the library and one line plus a non-zero
exit at the CLI, with no traceback and no output that looks complete."""

import errno
import re
import warnings

import numpy as np
import pytest

from mfrec import MatrixFactorization, errors, load_model
from mfrec.cli import main
from mfrec.data import Columns, load_dataset, read_ratings

GOOD_ROWS = "".join(f"{u},{i},{(u * 7 + i) % 9 / 2 + 0.5},{u * 100 + i}\n" for u in range(1, 9) for i in range(1, 9))
HEADER = "user,item,rating,timestamp\n"


def write(tmp_path, text, name="ratings.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# (name, file contents, extra CLI args, expected library error, message pattern)
FILE_CASES = [
    ("malformed line", HEADER + GOOD_ROWS + '1,"2,3,4\n', [], errors.DataError, r"malformed"),
    ("wrong delimiter", HEADER.replace(",", ";") + GOOD_ROWS.replace(",", ";"), [], errors.DataError,
     r"missing column\(s\)"),
    ("non-UTF-8 bytes", (HEADER + GOOD_ROWS).encode() + b"9,\xff\xfe,3,1\n", [], errors.DataError,
     r"not valid utf-8"),
    ("NaN rating", HEADER + GOOD_ROWS + "9,1,NaN,1\n", [], errors.DataError, r"rating is missing"),
    ("inf rating", HEADER + GOOD_ROWS + "9,1,inf,1\n", [], errors.DataError, r"rating 'inf' is not finite"),
    ("empty rating", HEADER + GOOD_ROWS + "9,1,,1\n", [], errors.DataError, r"rating is missing"),
    ("text rating", HEADER + GOOD_ROWS + "9,1,great,1\n", [], errors.DataError, r"'great' is not a number"),
    ("no header line", GOOD_ROWS, [], errors.DataError,
     r"its first line looks like data, not a header: add a header line"),
    ("a NUL byte in an id", HEADER + GOOD_ROWS + "9\x00,1,3,1\n", [], errors.DataError,
     r"line \d+: a NUL byte, which text never holds"),  # the parser cut the id there: 9 read as '9', ids as text
    ("a decimal comma", HEADER + GOOD_ROWS + '9,1,"3,5",1\n', [], errors.DataError,
     r"rating '3,5' is not a number \(a decimal comma\? write 3\.5\)"),
    ("rating above the scale", HEADER + GOOD_ROWS + "9,1,6,1\n", [], errors.DataError,
     r"rating 6 is outside the rating scale \[0.5, 5\]"),
    ("negative rating", HEADER + GOOD_ROWS + "9,1,-1,1\n", [], errors.DataError, r"outside the rating scale"),
    ("missing user id", HEADER + GOOD_ROWS + ",1,3,1\n", [], errors.DataError, r"user id is missing"),
    ("duplicate pairs refused", HEADER + GOOD_ROWS + "1,1,3,999\n", ["--duplicates", "error"], errors.DataError,
     r"duplicate rating for user 1 and item 1"),
    ("a single user", HEADER + "".join(f"1,{i},{i % 5 + 1},{i}\n" for i in range(1, 30)), [], errors.DataError,
     r"1 user\(s\) and \d+ item\(s\)"),
    ("a single item", HEADER + "".join(f"{u},1,{u % 5 + 1},{u}\n" for u in range(1, 30)), [], errors.DataError,
     r"\d+ user\(s\) and 1 item\(s\)"),
    ("all ratings identical", HEADER + "".join(f"{u},{i},4,{u}\n" for u in range(1, 9) for i in range(1, 9)), [],
     errors.DataError, r"all \d+ training ratings are 4"),
    ("empty file", "", [], errors.DataError, r"empty"),
    ("header only", HEADER, [], errors.DataError, r"no ratings"),
    ("negative interaction weight", HEADER + GOOD_ROWS + "9,1,-2,1\n", ["--implicit", "--model", "implicit_als"],
     errors.DataError, r"interaction weight -2 is negative"),
    # a header shorter than its rows: never an index column, never shifted fields
    ("header of 3 names over 4 fields", "user,item,rating\n" + GOOD_ROWS, [], errors.DataError,
     r"line 2: 4 fields, but the header names 3 columns"),
    ("header of 4 names over 5 fields", HEADER + GOOD_ROWS.replace("\n", ",x\n"), [], errors.DataError,
     r"line 2: 5 fields, but the header names 4 columns"),
    ("header of 2 names over 4 fields", "user,item\n" + GOOD_ROWS, [], errors.DataError,
     r"4 fields, but the header names 2 columns"),
    # timestamps are exact or refused: never wrapped, rounded or clipped
    ("timestamp beyond int64", HEADER + GOOD_ROWS + "9,1,3,9223372036854775808\n", [], errors.DataError,
     r"timestamp 9223372036854775808 is outside the 64-bit integer range"),
    ("timestamp below int64", HEADER + GOOD_ROWS + "9,1,3,-9223372036854775809\n", [], errors.DataError,
     r"outside the 64-bit integer range"),
    ("timestamp 1e30", HEADER + GOOD_ROWS + "9,1,3,1e30\n", [], errors.DataError, r"timestamp 1e30 is outside"),
    ("fractional timestamp", HEADER + GOOD_ROWS + "9,1,3,1.5\n", [], errors.DataError,
     r"timestamp 1.5 is not an integer"),
    ("timestamp float text beyond 2^53", HEADER + GOOD_ROWS + "9,1,3,1.5e17\n", [], errors.DataError,
     r"cannot be read exactly"),
    ("timestamp as a word", HEADER + GOOD_ROWS + "9,1,3,yesterday\n", [], errors.DataError,
     r"timestamp 'yesterday' is not a number"),
    ("missing timestamp", HEADER + GOOD_ROWS + "9,1,3,\n", [], errors.DataError, r"timestamp is missing"),
]  # fmt: skip


def assert_one_line(code, err, pattern):
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


def library_train(path, args):
    from mfrec.data import split_ratings

    implicit = "--implicit" in args
    on_duplicates = "error" if "--duplicates" in args else "keep-latest"
    data = read_ratings(path, columns=Columns("user", "item", "rating", "timestamp"), on_duplicates=on_duplicates,
                        implicit=implicit)  # fmt: skip
    split = split_ratings(data, "random", seed=0)
    model = "implicit_als" if implicit else "biased"
    MatrixFactorization(model=model, epochs=1, device="cpu").fit(split.train, split.val)


@pytest.mark.parametrize(("name", "text", "args", "error", "pattern"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_ratings_files(tmp_path, capsys, name, text, args, error, pattern):
    path = write(tmp_path, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=pattern):
            library_train(path, args)
    out = tmp_path / "run"
    code = main(["train", "--ratings", str(path), "--timestamp-col", "timestamp", "--split", "random", "--epochs",
                 "1", "--out", str(out), "-q", *args])  # fmt: skip
    assert_one_line(code, capsys.readouterr().err, pattern)
    assert not out.exists() and not (tmp_path / ".run.work").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]


def test_bom_is_accepted_not_an_error(tmp_path, capsys):
    path = write(tmp_path, "\ufeff" + HEADER + GOOD_ROWS)
    data = read_ratings(path, columns=Columns("user", "item", "rating", "timestamp"))
    assert len(data) == 64 and data.user_map.raw(data.users)[0] == 1


def test_non_integer_ids_where_movielens_expects_integers(tmp_path, capsys):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4,1\nabc,20,3,2\n")
    with pytest.raises(errors.DataError, match=r"row 3: user id 'abc' is not an integer"):
        load_dataset("ml-latest-small", folder)
    code = main(["train", "--dataset", "ml-latest-small", "--data-path", str(folder), "--out", str(tmp_path / "o")])
    assert_one_line(code, capsys.readouterr().err, r"user id 'abc' is not an integer")


def test_missing_file_and_unknown_dataset(tmp_path, capsys):
    with pytest.raises(errors.DataError, match="no such file"):
        read_ratings(tmp_path / "missing.csv")
    assert_one_line(main(["train", "--ratings", str(tmp_path / "missing.csv")]), capsys.readouterr().err,
                    r"no such file")  # fmt: skip
    with pytest.raises(errors.DatasetNotFoundError, match="unknown dataset"):
        load_dataset("movielens-9000")
    assert_one_line(main(["datasets", "info", "movielens-9000"]), capsys.readouterr().err, r"unknown dataset")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from tests.conftest import low_rank_ratings

    model = MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=4).fit(low_rank_ratings())
    return model, model.save(tmp_path_factory.mktemp("model") / "model.safetensors")


@pytest.mark.parametrize(
    ("call", "argv", "error", "pattern"),
    [
        (lambda m: m.predict([999], [1000], unknown="error"), ["predict", "--user", "999", "--item", "1000"],
         errors.UnknownIdError, r"unknown user 999"),
        (lambda m: m.predict([100], [5], unknown="error"), ["predict", "--user", "100", "--item", "5"],
         errors.UnknownIdError, r"unknown item 5"),
        (lambda m: m.recommend(999), ["recommend", "--user", "999"], errors.UnknownIdError, r"unknown user 999"),
        (lambda m: m.similar_items(5), ["similar", "--item", "5"], errors.UnknownIdError, r"unknown item 5"),
        (lambda m: m.recommend(100, n=0), ["recommend", "--user", "100", "-n", "0"], errors.ConfigError,
         r"n must be an integer from 1"),
        (lambda m: m.recommend(100, n=10**12), ["recommend", "--user", "100", "-n", str(10**12)], errors.ConfigError,
         r"n must be an integer from 1"),
        (lambda m: m.similar_items(1000, n=-5), ["similar", "--item", "1000", "-n", "-5"], errors.ConfigError,
         r"n must be an integer"),
    ],
)  # fmt: skip
def test_unknown_ids_and_bad_n(saved, capsys, call, argv, error, pattern):
    model, path = saved
    with pytest.raises(error, match=pattern):
        call(model)
    assert_one_line(main([argv[0], "--model", str(path), *argv[1:]]), capsys.readouterr().err, pattern)


@pytest.mark.parametrize("damage", ["truncated", "tampered", "newer", "pickle"])
def test_damaged_model_files(saved, tmp_path, capsys, damage, monkeypatch):
    model, path = saved
    target = tmp_path / "model.safetensors"
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        target.write_bytes(bytes(raw[: len(raw) * 2 // 3]))
        pattern = r"truncated|not a readable"
    elif damage == "tampered":
        raw[-10] ^= 0x55
        target.write_bytes(bytes(raw))
        pattern = r"checksum mismatch"
    elif damage == "newer":
        from mfrec import store

        monkeypatch.setattr(store, "FORMAT_VERSION", 7)
        model.save(target)
        monkeypatch.setattr(store, "FORMAT_VERSION", 1)
        pattern = r"format 7.*upgrade mfrec"
    else:
        import pickle

        target.write_bytes(pickle.dumps({"weights": np.zeros(3)}))
        pattern = r"not a readable model file"
    with pytest.raises(errors.ModelFileError, match=pattern):
        load_model(target)
    assert_one_line(main(["recommend", "--model", str(target), "--user", "100"]), capsys.readouterr().err, pattern)


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = write(tmp_path, HEADER + GOOD_ROWS)
    code = main(["train", "--ratings", str(path), "--out", str(blocker / "run"), "-q"])
    assert_one_line(code, capsys.readouterr().err, r"a-file is a file, so it cannot hold the run folder")
    with pytest.raises(errors.OutputError):
        from mfrec.run import prepare_output

        prepare_output(blocker / "run", overwrite=False)


def test_full_disk_leaves_nothing_that_looks_complete(tmp_path, capsys, monkeypatch):
    import safetensors.torch

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    path = write(tmp_path, HEADER + GOOD_ROWS)
    monkeypatch.setattr(safetensors.torch, "save_file", no_space)
    out = tmp_path / "run"
    code = main(["train", "--ratings", str(path), "--timestamp-col", "timestamp", "--split", "random", "--epochs",
                 "2", "--out", str(out), "-q"])  # fmt: skip
    assert_one_line(code, capsys.readouterr().err, r"No space left on device")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_divergence_stops_with_the_epoch_and_saves_nothing(tmp_path, capsys):
    path = write(tmp_path, HEADER + GOOD_ROWS)
    out = tmp_path / "run"
    code = main(["train", "--ratings", str(path), "--split", "random", "--optimizer", "sgd", "--learning-rate", "1e9",
                 "--init-std", "1", "--epochs", "5", "--out", str(out), "-q"])  # fmt: skip
    assert_one_line(code, capsys.readouterr().err, r"diverged at epoch \d+ .*smaller learning rate than 1e\+09")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]


# ---------------------------------------------------------------- ids stay exactly as written
# (rows, the item ids the reader must keep, in order of first appearance)
EXACT_ID_CASES = [
    ("1e3 is not 1000", ["1e3", "1000"], ["1e3", "1000"]),
    ("010 is not 10", ["010", "10"], ["010", "10"]),
    ("+5 is not 5", ["+5", "5"], ["+5", "5"]),
    ("1_0 is not 10", ["1_0", "10"], ["1_0", "10"]),
    ("0x10 is not 16", ["0x10", "16"], ["0x10", "16"]),
    ("-0 is not 0", ["-0", "0"], ["-0", "0"]),
    ("Arabic digits are not 10", ["\u0661\u0660", "10"], ["\u0661\u0660", "10"]),
    ("an id beyond 64 bits stays text", ["99999999999999999999", "10"], ["99999999999999999999", "10"]),
    ("10.0 is not 10", ["10.0", "10"], ["10.0", "10"]),
    ("plain integers are integers", ["10", "-3"], [10, -3]),
    ("surrounding spaces are not part of an id", [" 10", "10 "], [10]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "raw", "expected"), EXACT_ID_CASES, ids=[c[0] for c in EXACT_ID_CASES])
def test_ids_stay_exactly_as_written(tmp_path, name, raw, expected):
    rows = "".join(f"{u},{item},{3 + u % 2},{u}\n" for u in range(1, 6) for item in raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the spaces case merges rows: a duplicate warning
        data = read_ratings(write(tmp_path, HEADER + rows), columns=Columns("user", "item", "rating", "timestamp"))
    assert data.item_map.to_list() == expected
    assert all(type(v) is type(expected[0]) for v in data.item_map.to_list())


def test_a_text_id_is_found_from_the_command_line_exactly(tmp_path, capsys):
    rows = "".join(f"{u},{item},{(u + len(item)) % 5 + 1},{u}\n" for u in range(1, 9) for item in ("1e3", "1000", "7"))
    out = tmp_path / "run"
    assert main(["train", "--ratings", str(write(tmp_path, HEADER + rows)), "--split", "random", "--epochs", "1",
                 "-q", "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--user", "1", "--item", "1e3"]) == 0
    assert main(["predict", "--model", str(out), "--user", "1", "--item", "1E3"]) == 1  # no such item
    assert "unknown item '1E3'" in capsys.readouterr().err


PARQUET_CASES = [
    ("uint64 ids at 2^63 stay exact", {"user": np.array([2**63, 1, 2**64 - 1], dtype=np.uint64)}, "user",
     ["9223372036854775808", "1", "18446744073709551615"]),
    ("uint64 ids below 2^63 are integers", {"user": np.array([5, 1, 2], dtype=np.uint64)}, "user", [5, 1, 2]),
    ("whole float ids (widened by a missing value) are integers", {"item": [3.0, 1.0, 2.0]}, "item", [3, 1, 2]),
    ("fractional float ids stay text", {"item": [3.5, 1.0, 2.0]}, "item", ["3.5", "1.0", "2.0"]),
    ("int32 ids are integers", {"user": np.array([7, 8, 9], dtype=np.int32)}, "user", [7, 8, 9]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "columns", "which", "expected"), PARQUET_CASES, ids=[c[0] for c in PARQUET_CASES])
def test_parquet_ids_stay_exact(tmp_path, name, columns, which, expected):
    import pandas as pd

    frame = pd.DataFrame({"user": [1, 2, 3], "item": [10, 11, 12], "rating": [4.0, 3.0, 5.0], **columns})
    frame.to_parquet(tmp_path / "r.parquet")
    data = read_ratings(tmp_path / "r.parquet")
    assert getattr(data, f"{which}_map").to_list() == expected


@pytest.mark.parametrize(("stamps", "pattern"), [
    (np.array([2**63, 1, 2], dtype=np.uint64), r"row 1: timestamp 9223372036854775808 is outside"),
    (np.array([2**64 - 1, 1, 2], dtype=np.uint64), r"row 1: timestamp 18446744073709551615 is outside"),
    ([1.5, 2.0, 3.0], r"row 1: timestamp 1.5 is not an integer"),
])  # fmt: skip
def test_parquet_timestamps_are_exact_or_refused(tmp_path, stamps, pattern):
    import pandas as pd

    pd.DataFrame({"user": [1, 2, 3], "item": [10, 11, 12], "rating": [4.0, 3.0, 5.0], "timestamp": stamps}).to_parquet(
        tmp_path / "r.parquet")  # fmt: skip
    with pytest.raises(errors.DataError, match=pattern):
        read_ratings(tmp_path / "r.parquet", columns=Columns("user", "item", "rating", "timestamp"))


def test_parquet_datetimes_become_unix_seconds(tmp_path):
    import pandas as pd

    when = pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"])
    pd.DataFrame({"user": [1, 2, 3], "item": [10, 11, 12], "rating": [4.0, 3.0, 5.0], "timestamp": when}).to_parquet(
        tmp_path / "r.parquet")  # fmt: skip
    data = read_ratings(tmp_path / "r.parquet", columns=Columns("user", "item", "rating", "timestamp"))
    assert data.timestamps.tolist() == [1577836800, 1609459200, 1640995200]


# ---------------------------------------------------------------- nonsense options: mfrec's own one-line errors
OPTION_CASES = [
    (["--threads", "100000"], r"threads must be an integer from 0 to 1024"),
    (["--threads", "-1"], r"threads must be an integer from 0"),
    (["--batch-size", str(2**63)], r"batch_size must be an integer from 1 to 2\^63 - 1"),
    (["--epochs", "0"], r"epochs must be an integer from 1"),
    (["--embedding-dim", "0"], r"embedding_dim must be an integer from 1"),
    (["--seed", str(2**64)], r"seed must be an integer from 0 to 2\^63 - 1"),
    (["--split-seed", str(2**32)], r"split seed must be an integer from 0 to 2\^32 - 1"),
    (["--split-seed", "-1"], r"split seed must be an integer from 0"),
    (["--split-fractions", "nan", "0.5", "0.5"], r"'--split-fractions': 'nan' is not a finite number"),  # usage
    (["--split-fractions", "1", "0", "0"], r"split fractions 1 0 0 leave nothing for val and test"),
    (["--split-fractions", "0", "0.5", "0.5"], r"leave nothing to train on"),
    (["--split-fractions", "0.5", "0.5", "0.5"], r"must add up to 1, not 1.5"),
    (["--split-fractions", "-0.2", "0.6", "0.6"], r"non-negative"),
    (["--sep", "ab"], r"field separator must be one character"),
    (["--sep", ""], r"field separator must be one character"),
    (["--sep", "\n"], r"field separator must be one character"),
    (["--learning-rate", "nan"], r"learning_rate must be a positive number, not nan"),
    (["--regularization", "-1"], r"regularization must be a non-negative number"),
    (["--split", "temporal-user", "--holdout", "0"], r"holdout must be at least 1"),
    (["--scale", "5", "1"], r"rating scale must be two finite numbers, lowest first"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "pattern"), OPTION_CASES, ids=[" ".join(c[0]) for c in OPTION_CASES])
def test_nonsense_options_are_one_line_errors(tmp_path, capsys, args, pattern):
    path = write(tmp_path, HEADER + GOOD_ROWS)
    out = tmp_path / "run"
    epochs = [] if "--epochs" in args else ["--epochs", "1"]  # an option is given once
    code = main(["train", "--ratings", str(path), "--timestamp-col", "timestamp", *epochs, "--out", str(out),
                 "-q", *args])  # fmt: skip
    assert code == (2 if "is not a finite number" in pattern else 1)  # refused by the option's type: usage
    assert_one_line(code, capsys.readouterr().err, pattern)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]


def _ratings_parameters() -> set[tuple[str, str]]:
    """(callable, parameter) for every public callable of the Python API that takes Ratings or a Split."""
    import inspect

    import mfrec
    from mfrec import tune

    targets = {"split_ratings": mfrec.split_ratings, "load_split": mfrec.load_split,
               "cross_validate": tune.cross_validate, "tune": tune.tune}  # fmt: skip
    for name in dir(MatrixFactorization):
        if not name.startswith("_") and inspect.isfunction(getattr(MatrixFactorization, name)):
            targets[f"MatrixFactorization.{name}"] = getattr(MatrixFactorization, name)
    found = set()
    for label, function in targets.items():
        for parameter in inspect.signature(function).parameters.values():
            annotation = str(parameter.annotation)
            if annotation.split(" | ")[0] in ("Ratings", "Split"):
                found.add((label, parameter.name))
    return found


def test_every_public_callable_that_takes_ratings_names_a_wrong_type(lowrank, tmp_path):
    # a DataFrame, a list or None where Ratings belong was an AttributeError deep inside (a bug, exit 3)
    import pandas as pd

    import mfrec
    from mfrec import tune

    def given(bad):  # an optional part left out (None) is not wrong: try a list there instead
        return [1] if bad is None else bad

    frame = lowrank.to_frame()
    model = MatrixFactorization(embedding_dim=2, epochs=1, patience=0, device="cpu").fit(lowrank)
    split = mfrec.split_ratings(lowrank, "random")
    calls = {
        ("split_ratings", "data"): lambda bad: mfrec.split_ratings(bad, "random"),
        ("load_split", "like"): lambda bad: mfrec.load_split(tmp_path / "split.parquet", like=given(bad)),
        ("cross_validate", "data"): lambda bad: tune.cross_validate(bad, model.config),
        ("tune", "split"): lambda bad: tune.tune(bad),
        ("MatrixFactorization.fit", "train"): lambda bad: MatrixFactorization().fit(bad),
        ("MatrixFactorization.fit", "val"): lambda bad: MatrixFactorization().fit(lowrank, val=given(bad)),
        ("MatrixFactorization.fit", "interactions"): lambda bad: MatrixFactorization().fit(lowrank,
                                                                                            interactions=given(bad)),
        ("MatrixFactorization.set_seen", "ratings"): lambda bad: model.set_seen(bad),
        ("MatrixFactorization.evaluate", "ratings"): lambda bad: model.evaluate(bad),
        ("MatrixFactorization.evaluate_ranking", "test"): lambda bad: model.evaluate_ranking(bad),
        ("MatrixFactorization.evaluate_ranking", "train"): lambda bad: model.evaluate_ranking(split.test,
                                                                                              train=given(bad)),
        ("MatrixFactorization.evaluate_ranking", "exclude"): lambda bad: model.evaluate_ranking(split.test,
                                                                                                exclude=given(bad)),
        ("MatrixFactorization.rank_test_users", "test"): lambda bad: model.rank_test_users(bad),
        ("MatrixFactorization.rank_test_users", "train"): lambda bad: model.rank_test_users(split.test,
                                                                                            train=given(bad)),
        ("MatrixFactorization.rank_test_users", "exclude"): lambda bad: model.rank_test_users(split.test,
                                                                                              exclude=given(bad)),
    }  # fmt: skip
    assert set(calls) == _ratings_parameters()  # a new callable taking Ratings joins this test
    for (label, name), call in calls.items():
        for bad in (frame, [1, 2, 3], None, pd.Series([1.0])):
            with pytest.raises(errors.ConfigError, match=f"^{name} must be (Ratings|a Split)") as caught:
                call(bad)
            shown = {type(bad).__name__, type(given(bad)).__name__}
            assert caught.value.args[0].rsplit("not ", 1)[1] in shown, (label, caught.value)
    with pytest.raises(errors.ConfigError, match=r"mfrec\.read_ratings\(table\) makes them from this table"):
        mfrec.split_ratings(frame, "random")


@pytest.mark.parametrize(("arrays", "pattern"), [
    (([1, 2], [1], [4.0, 3.0]), r"the arrays differ in length \(users 2, items 1, ratings 2\)"),
    (([[1, 2]], [[1, 2]], [[4.0, 3.0]]), "users must be a one-dimensional array or list, not 2 dimensions"),
    (([1, 2], [1, 2], None), "ratings must be a one-dimensional array or list, not None"),
    (([1, 2], [1, 2], [4.0, float("nan")]), "row 2: rating is missing"),
    (([1, 2], [1, 2], [4.0, float("inf")]), "row 2: rating inf is not a finite number|row 2: rating"),
    (([1, 2], [1, 2], [4.0, 9.0]), r"row 2: rating 9 is outside the rating scale \[0.5, 5\]"),
    (([1, 2], [1, 2], ["4", "x"]), "row 2: rating 'x' is not a number"),
    (([1, 1], [3, 3], [4.0, 2.0]), "row 2: duplicate rating for user 1 and item 3"),
    (([1, None], [3, 4], [4.0, 2.0]), "row 2: user id is missing|row 2: the user id is missing"),
])  # fmt: skip
def test_ratings_from_arrays_are_checked_as_a_file_is(arrays, pattern):
    """``Ratings.from_arrays`` (shown in the README) built NaN, out-of-scale and repeated ratings silently."""
    from mfrec import Ratings
    from mfrec.errors import DataError

    with pytest.raises(DataError, match=pattern):
        Ratings.from_arrays(*arrays)


def test_ratings_from_arrays_keep_the_file_rules_for_ids_and_kinds():
    from mfrec import Ratings

    data = Ratings.from_arrays(np.array(["10", "7"], dtype=object), ["a", "b"], [4.0, 3.0])
    assert data.user_map.ids.dtype == np.int64  # text that is all plain integers becomes integers, as in a file
    weights = Ratings.from_arrays([1, 2], [1, 2], [0.0, 12.0], kind="implicit")
    assert weights.kind == "implicit" and weights.scale == (0.0, 12.0)
    assert len(Ratings.from_arrays([], [], [])) == 0  # nothing to check; fitting on it is refused later


def _public_parameters(wanted, classes=(MatrixFactorization,)) -> set[tuple[str, str]]:
    """(callable, parameter) for every public function of the Python API and public method of ``classes`` whose
    parameter annotation (as text) ``wanted`` accepts."""
    import inspect

    import mfrec

    targets = {name: getattr(mfrec, name) for name in mfrec.__all__ if inspect.isfunction(getattr(mfrec, name))}
    for cls in classes:
        for name in dir(cls):
            if not name.startswith("_") and callable(getattr(cls, name)):
                targets[f"{cls.__name__}.{name}"] = getattr(cls, name)
    found = set()
    for label, function in targets.items():
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            continue
        found |= {(label, p.name) for p in parameters if wanted(str(p.annotation))}
    return found


def _path_parameters() -> set[tuple[str, str]]:
    """(callable, parameter) for every public callable of the Python API that takes a file path."""
    return _public_parameters(lambda annotation: annotation.startswith("str | Path"))


def test_every_public_path_parameter_names_a_value_that_is_not_a_path(lowrank, tmp_path):
    """An int, bytes or None where a path belongs was a TypeError from pathlib (a bug, exit 3)."""
    import mfrec

    model = MatrixFactorization(embedding_dim=2, epochs=1, patience=0, device="cpu").fit(lowrank)
    calls = {
        ("load_dataset", "path"): lambda bad: mfrec.load_dataset("ml-latest-small", bad or 3, download=False),
        ("load_model", "path"): lambda bad: mfrec.load_model(bad),
        ("load_split", "path"): lambda bad: mfrec.load_split(bad),
        ("read_items", "source"): lambda bad: mfrec.read_items(bad),
        ("read_ratings", "source"): lambda bad: mfrec.read_ratings(bad),
        ("read_ratings", "items"): lambda bad: mfrec.read_ratings(lowrank.to_frame(), items=bad or 3),
        ("train_run", "out"): lambda bad: mfrec.train_run(mfrec.RunConfig(dataset="ml-latest-small"), bad),
        ("train_run", "data_path"): lambda bad: mfrec.train_run(mfrec.RunConfig(dataset="ml-latest-small"),
                                                                tmp_path / "run", data_path=bad or 3),
        ("MatrixFactorization.fit", "checkpoint"): lambda bad: MatrixFactorization(epochs=1).fit(
            lowrank, checkpoint=bad or 3),
        ("MatrixFactorization.load", "path"): lambda bad: MatrixFactorization.load(bad),
        ("MatrixFactorization.save", "path"): lambda bad: model.save(bad),
    }  # fmt: skip
    assert set(calls) == _path_parameters()  # a new path parameter must be added here
    for (label, name), call in calls.items():
        for bad in (3, b"model", None, ""):
            with pytest.raises(mfrec.MfrecError) as caught:
                call(bad)
            assert "Traceback" not in str(caught.value), (label, name, bad)
        # a URL read as a path was a missing 'https:/...' file (pathlib folds '//'): named as given instead
        for url in ("https://example.com/data/x.csv", "s3://bucket/x", "file:///tmp/x.csv"):
            with pytest.raises(mfrec.MfrecError, match=rf"'{url}' is a (file )?URL") as caught:
                call(url)
        with pytest.raises(mfrec.MfrecError, match=r"'-' names no file here"):  # never a file named '-'
            call("-")
    assert not (tmp_path / "run").exists() and not (tmp_path / "-").exists()


#: What a command needs beside the path for the path to be the only thing wrong (nothing that would run long).
PATH_OPTION_ARGS = {"similar": ["--item", "1"], "recommend": ["--user", "1"], "predict": ["--user", "1", "--item", "1"],
                    "datasets synth": ["--like", "ml-latest-small", "--fraction", "0.001"]}  # fmt: skip


def _commands():
    """(command words, command) for every command of the CLI, nested groups walked."""
    import click

    from mfrec.cli import cli

    def walk(command, words):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*words, name])
        else:
            yield words, command

    return list(walk(cli, []))


def _local_path_options():
    """(command words, flag, nargs) for every option or argument of the CLI that takes a path on this machine."""
    import click

    from mfrec.cli.options import LocalPath

    return [(words, param.opts[0] if isinstance(param, click.Option) else None, param.nargs)
            for words, command in _commands() for param in command.params
            if isinstance(param.type, LocalPath) and not getattr(param, "hidden", False)]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "pattern"),
    [("https://example.com/data/x.csv", r"'https://example.com/data/x.csv' is (a URL|neither a file)"),
     ("", r"an empty path \(''\)"), ("  ", r"an empty path \('  '\)"),
     ("-", r"'-' names no file here: .*give /dev/stdin")],  # it wrote a file named '-' (report --out -)
)  # fmt: skip
def test_a_url_or_nothing_where_the_cli_takes_a_path_is_a_usage_line(tmp_path, capsys, monkeypatch, value, pattern):
    """Every path option, derived from the commands: a URL is not folded into a missing 'https:/...' file, and an
    empty value (an unset variable) is not the current folder (a tuning result or data set was written there)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("the user's")
    found = _local_path_options()
    assert len(found) >= 20
    for words, flag, nargs in found:
        given = [flag, *[value] * nargs] if flag else [value]
        argv = [*words, *given, *PATH_OPTION_ARGS.get(" ".join(words), [])]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert_one_line(code, err, pattern)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_an_option_given_twice_is_a_usage_line_on_every_command(tmp_path, capsys, monkeypatch):
    """The second --epochs replaced the first without a word; derived from every command's options."""
    import click

    from mfrec.cli.options import StrictCommand

    monkeypatch.chdir(tmp_path)
    commands = _commands()
    assert len(commands) >= 14 and all(isinstance(c, StrictCommand) for _, c in commands)
    checked = 0
    for words, command in commands:
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden or param.multiple or param.is_flag:
                continue
            value = ["1"] * param.nargs
            code = main([*words, param.opts[0], *value, param.opts[0], *value])
            assert code == 2, (words, param.opts)
            assert_one_line(code, capsys.readouterr().err, rf"^error: {param.opts[0]} given 2 times; give it once")
            checked += 1
    assert checked >= 100 and list(tmp_path.iterdir()) == []
    code = main(["recommend", "--model", "m", "--genre", "a", "--genre", "b", "--user", "1"])  # a list repeats
    assert code == 1 and "given 2 times" not in capsys.readouterr().err
    assert main(["train", "--epochs", "1", "--epochs", "2", "--help"]) == 0  # help answers whatever else is there
    assert "Usage: mfrec train" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("url", "pattern"),
    [("mysql://u@h/db", r"not 'mysql'"), ("postgres://u@h/db", r"not 'postgres' \(PostgreSQL's is postgresql\+psycopg"),
     ("https://example.com/db", r"not 'https'")],
)  # fmt: skip
def test_a_profile_database_of_another_kind_is_named_before_any_driver_is_loaded(tmp_path, capsys, url, pattern):
    from mfrec.data.profiles import ProfileStore

    with pytest.raises(errors.ConfigError, match=pattern):
        ProfileStore(url)
    assert main(["serve", str(tmp_path / "model.safetensors"), "--db", url]) == 1  # refused before the model is read
    assert_one_line(1, capsys.readouterr().err, pattern)
    code = main(["serve", str(tmp_path / "model.safetensors"), "--db", ""])  # an unset variable: not the default
    assert code == 2
    assert_one_line(code, capsys.readouterr().err, r"--db: give a database URL")


@pytest.mark.parametrize("header", [b"[1, 2]", b"[" * 50_000 + b"]" * 50_000, b'{"a": 1, "a": 2}', b"7"])
@pytest.mark.parametrize("mmap", [False, True])
def test_a_model_file_whose_header_is_not_a_json_object_is_refused(tmp_path, header, mmap):
    """A safetensors header that is a list, nests deeply or repeats a key was an internal error (exit 3)."""
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(errors.ModelFileError, match=r"not a readable model file|not an mfrec model"):
        load_model(path, mmap=mmap)


def _flag_parameters() -> set[tuple[str, str]]:
    """(callable, parameter) for every public callable of the Python API that takes a yes/no flag (``bool``)."""
    from mfrec import Ratings

    return _public_parameters(lambda annotation: annotation == "bool", (MatrixFactorization, Ratings))


def test_every_public_flag_refuses_what_is_not_true_or_false(lowrank, tmp_path):
    """``exclude_seen="no"`` was truthy, so it excluded what was seen: the opposite of what it says. A flag takes
    True or False (numpy's too); text, numbers and None are named."""
    import mfrec

    model = MatrixFactorization(embedding_dim=2, epochs=1, patience=0, device="cpu").fit(lowrank)
    model_file = model.save(tmp_path / "m.safetensors")
    config = mfrec.RunConfig(dataset=None, ratings_file=str(tmp_path / "nowhere.csv"))
    frame = lowrank.to_frame()
    calls = {
        ("load_dataset", "download"): lambda bad: mfrec.load_dataset("ml-latest-small", download=bad),
        ("load_dataset", "cache"): lambda bad: mfrec.load_dataset("ml-latest-small", cache=bad),
        ("load_model", "mmap"): lambda bad: mfrec.load_model(model_file, mmap=bad),
        ("read_ratings", "implicit"): lambda bad: mfrec.read_ratings(frame, implicit=bad),
        ("train_run", "overwrite"): lambda bad: mfrec.train_run(config, tmp_path / "run", overwrite=bad),
        ("train_run", "progress"): lambda bad: mfrec.train_run(config, tmp_path / "run", progress=bad),
        ("train_run", "resume"): lambda bad: mfrec.train_run(config, tmp_path / "run", resume=bad),
        ("MatrixFactorization.fit", "progress"): lambda bad: MatrixFactorization(epochs=1).fit(lowrank, progress=bad),
        ("MatrixFactorization.load", "mmap"): lambda bad: MatrixFactorization.load(model_file, mmap=bad),
        ("MatrixFactorization.predict_indices", "clip"): lambda bad: model.predict_indices(
            np.array([0]), np.array([0]), clip=bad),
        ("MatrixFactorization.recommend", "exclude_seen"): lambda bad: model.recommend(100, 3, exclude_seen=bad),
        ("MatrixFactorization.top_positions", "exclude_seen"): lambda bad: model.top_positions(
            np.array([0]), 3, exclude_seen=bad),
        ("Ratings.from_arrays", "validate"): lambda bad: mfrec.Ratings.from_arrays([1], [2], [3.0], validate=bad),
    }  # fmt: skip
    assert set(calls) == _flag_parameters()  # a new flag must be added here
    for (_, name), call in calls.items():
        for bad in ("no", "False", 0, 1, None, 2.0):
            with pytest.raises(mfrec.ConfigError, match=rf"{name} must be True or False, not {re.escape(repr(bad))}"):
                call(bad)
    assert model.recommend(100, 3, exclude_seen=np.bool_(False)).items.shape == (1, 3)
    assert not (tmp_path / "run").exists()


def test_every_float_option_refuses_nan_and_infinity():
    """NaN passes every comparison, so a plain float (or click's FloatRange) took `--watch nan` and watched
    nothing. Found from the commands: every float option is a FiniteFloat, except the training options, whose
    configs refuse a non-finite value naming the model (checked here too)."""
    import click

    from mfrec.cli import main
    from mfrec.cli.options import FiniteFloat, train_option_specs

    training = {flag for flag, *_ in train_option_specs()}
    floats = [(words, param) for words, command in _commands() for param in command.params
              if isinstance(param.type, click.types.FloatParamType)]  # fmt: skip
    assert len(floats) >= 8
    for words, param in floats:
        flag = param.opts[0]
        if flag in training:
            continue
        assert isinstance(param.type, FiniteFloat), f"mfrec {' '.join(words)} {flag} takes NaN"
        for text in ("nan", "inf", "-inf"):
            with pytest.raises(click.BadParameter, match="is not a finite number"):
                param.type.convert(text, param, None)
    learning_rate = main(["train", "--dataset", "ml-latest-small", "--learning-rate", "nan", "--out", "/nonexistent/x"])
    assert learning_rate == 1
