"""A property test over the whole command line.

Hypothesis builds argument vectors for every verb from the commands' own click
declarations: each option gets real values and hostile ones for its type (ids
beyond 64 bits, ``nan``, negative counts, text where a number belongs, paths
that are folders, damaged files, someone's thesis). Whatever the vector:

- the exit code is 0, 1 (a user error) or 2 (a usage error), never 3 (a bug);
- a failure prints exactly one line starting with ``error:`` (``note:`` lines aside);
- nothing is written outside the named output, and nothing the user owns changes.

Options that only say how much work to do (epochs, trials, folds...) get small
values or hostile ones, never large valid ones, so the test stays bounded in CI.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfrec.cli import cli, main

#: Options whose valid values only scale the work: small values, or hostile ones.
WORK = {"--epochs", "--samples", "--burn-in", "--cg-steps", "--trials", "--embedding-dim", "--posterior-rank",
        "--folds", "--nproc", "--max-items", "-n", "--timeout", "--holdout"}  # fmt: skip
#: Options that would leave the test process: serving, downloading.
SKIP = {"--data-path", "--help"}

HOSTILE_INTS = ["-1", "-9223372036854775809", "9223372036854775808", "18446744073709551616", "9" * 30, "1.5", "nan",
                "", "x", "1e3", "0x10", "1_0", " 2", "٢"]  # fmt: skip
SMALL_INTS = ["0", "1", "2", "3"]
FLOATS = ["0", "0.5", "1", "4", "-1", "nan", "inf", "-inf", "1e308", "1e-320", "", "x", "1,5", "5", "0.001"]
TEXTS = ["100", "1000", "1002", "999", "99999999999999999999", "-1", "1_0", "1e3", "", " ", "abc", "é", " 100",
         "100=4,1002=5", "1000=nan", "1000=99", "x=y", "1000=4,1000=5", "0x10", "+100", "0100", "user", "rating",
         "none", ",", "::", "\t"]  # fmt: skip
PATHS = ["ratings", "ratings_bad", "ratings_parquet", "missing", "folder", "run", "model", "garbage", "config",
         "config_types", "empty", "precious", "precious.txt", "fresh", "fresh/deep/er"]  # fmt: skip
#: Paths a command may write: a fresh name (which may be created) and the default outputs.
WRITABLE = {"fresh", "fresh/deep/er", "runs"}

VERBS = {
    # verb: (arguments that come first, so that a drawn option may override them)
    "train": ["--ratings", "@ratings", "--epochs", "2", "--out", "@fresh", "-q"],
    "evaluate": ["--model", "@run"],
    "predict": ["--model", "@run", "--user", "100", "--item", "1000"],
    "recommend": ["--model", "@run", "--user", "100"],
    "similar": ["--model", "@run", "--item", "1000"],
    "tune": ["--ratings", "@ratings", "--trials", "1", "--out", "@fresh"],
    "cv": ["--ratings", "@ratings", "--folds", "2", "--epochs", "2"],
    "presets": [],
    "datasets list": [],
    "datasets info": [],
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Read-only inputs every example may name: data files, a run folder, a model file, configs."""
    from tests.conftest import low_rank_ratings

    base = tmp_path_factory.mktemp("cli-shared")
    frame = low_rank_ratings().to_frame()
    frame.to_csv(base / "ratings.csv", index=False)
    frame.to_parquet(base / "ratings.parquet")
    (base / "ratings_bad.csv").write_text("user,item,rating\n1,2,3,4\n5,6,7,8\n")
    (base / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    (base / "config.json").write_text('{"train": {"embedding_dim": 4, "epochs": 2}}')
    (base / "config_types.json").write_text('{"train": null, "split": [1, 2]}')
    (base / "empty.csv").write_text("")
    (base / "folder").mkdir()
    assert main(["train", "--ratings", str(base / "ratings.csv"), "--epochs", "2", "-q", "--device", "cpu",
                 "--out", str(base / "run")]) == 0  # fmt: skip
    shutil.copytree(base, base.parent / "pristine")
    paths = {
        "ratings": base / "ratings.csv", "ratings_bad": base / "ratings_bad.csv",
        "ratings_parquet": base / "ratings.parquet", "missing": base / "missing.csv", "folder": base / "folder",
        "run": base / "run", "model": base / "run" / "model.safetensors", "garbage": base / "garbage.bin",
        "config": base / "config.json", "config_types": base / "config_types.json", "empty": base / "empty.csv",
    }  # fmt: skip
    return base, paths


def restore_shared(base: Path) -> None:
    """Put back the shared inputs that an example named as its output, so later examples read the originals."""
    shutil.rmtree(base)
    shutil.copytree(base.parent / "pristine", base)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its content (folders as entries too)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return found


#: Realistic paths for an option, by its name; any path in :data:`PATHS` is its hostile value.
REAL_PATHS = {"--ratings": ["ratings", "ratings_parquet"], "--config": ["config"], "--model": ["run", "model"],
              "--resume": ["fresh", "run"], "--split": ["run"], "--users-file": ["ratings"]}  # fmt: skip


def option_values(option: click.Option) -> st.SearchStrategy[list[str]]:
    """Real and (three times in ten) hostile command-line words for one option, from its click type."""
    kind, name = option.type, option.opts[0]
    if isinstance(kind, click.Choice):
        real, hostile = list(map(str, kind.choices)), ["", "nope", str(kind.choices[0]).upper()]
    elif isinstance(kind, click.types.IntParamType):  # also IntRange
        real = SMALL_INTS if name in WORK else [*SMALL_INTS, "9223372036854775807", "4294967296", "42"]
        hostile = HOSTILE_INTS
    elif isinstance(kind, click.types.FloatParamType):
        real = ["0.5", "1", "4", "5", "0.001", "0.1"] if name not in WORK else ["0.5", "1"]
        hostile = FLOATS
    elif isinstance(kind, click.Path | click.File):
        real = [f"@{p}" for p in REAL_PATHS.get(name, ["fresh"])]
        hostile = [f"@{p}" for p in PATHS]
    else:
        real, hostile = TEXTS[:4], TEXTS + [f"@{p}" for p in PATHS]
    word = st.integers(0, 9).flatmap(lambda k: st.sampled_from(hostile if k < 3 else real))
    return st.lists(word, min_size=option.nargs, max_size=option.nargs)


def command(verb: str) -> click.Command:
    found: click.Command = cli
    for part in verb.split():
        found = found.commands[part]  # type: ignore[attr-defined]
    return found


@st.composite
def argv(draw, verb: str) -> list[str]:
    options = [p for p in command(verb).params if isinstance(p, click.Option) and p.opts[0] not in SKIP]
    words = verb.split() + list(VERBS[verb])
    if verb == "datasets info":
        words.append(draw(st.sampled_from(["ml-latest-small", "ml-100k", "movielens-9000", "", "../etc"])))
    for option in draw(st.lists(st.sampled_from(options), max_size=4, unique_by=lambda o: o.name)) if options else []:
        words.append(option.opts[0])
        if not option.is_flag:
            words.extend(draw(option_values(option)))
    if draw(st.integers(0, 9)) == 0 and verb not in ("presets", "datasets list", "datasets info"):
        words.append(draw(st.sampled_from(["--bogus-option", "extra-argument", "-z"])))
    return words


def resolve(words: list[str], paths: dict[str, Path], work: Path) -> list[str]:
    named = {**{k: str(v) for k, v in paths.items()}, **{name: str(work / name) for name in PATHS if name not in paths}}
    return [named[w[1:]] if w.startswith("@") else w for w in words]


def named_outputs(words: list[str], paths: dict[str, Path], work: Path) -> set[Path]:
    """The files a command was told to write (``--out``), with the digest file beside each."""
    argv = resolve(words, paths, work)
    named = {Path(argv[k + 1]) for k, word in enumerate(argv[:-1]) if word == "--out"}
    return named | {path.with_name(path.name + ".sha256") for path in named}


def named(path: Path, allowed: set[Path]) -> bool:
    """Whether ``path`` is a named output or inside one (a run folder's files)."""
    return path in allowed or any(parent in allowed for parent in path.parents)


def unchanged(before: dict[str, str], after: dict[str, str], root: Path, allowed: set[Path]) -> list[str]:
    """Files of ``before`` that changed or went away, other than the named outputs and what they hold."""
    return [key for key, digest in before.items() if after.get(key) != digest and not named(root / key, allowed)]


def check(verb_words: list[str], shared, capsys, monkeypatch) -> None:
    base, paths = shared
    before_shared = snapshot(base)
    with tempfile.TemporaryDirectory(dir=base.parent) as scratch:
        work = Path(scratch)
        (work / "precious").mkdir()
        (work / "precious" / "thesis.txt").write_text("four years of work")
        (work / "precious.txt").write_text("notes")
        before = snapshot(work)
        with monkeypatch.context() as local:  # back to the old folder before this one goes
            local.chdir(work)
            capsys.readouterr()
            code = main(resolve(verb_words, paths, work))
            err = capsys.readouterr().err
        after = snapshot(work)
        allowed = named_outputs(verb_words, paths, work)
    assert code in (0, 1, 2), (verb_words, code, err)
    assert "Traceback" not in err and "internal error" not in err, (verb_words, err)
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
        assert len(lines) == 1 and lines[0].startswith("error: "), (verb_words, err)
    # nothing the user owns changed or went away, except a file named as the output
    assert not unchanged(before, after, work, allowed), (verb_words, code, err)
    for key in set(after) - set(before):  # new files only under the named output
        assert key.split("/")[0] in WRITABLE or named(work / key, allowed), (verb_words, key)
    after_shared = snapshot(base)
    if after_shared != before_shared:  # a shared input it replaced, or a digest file beside one
        restore_shared(base)
    assert not unchanged(before_shared, after_shared, base, allowed), verb_words
    assert all(named(base / key, allowed) for key in set(after_shared) - set(before_shared)), verb_words


SETTINGS = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}


@pytest.mark.parametrize("verb", ["evaluate", "predict", "recommend", "similar", "presets", "datasets list",
                                  "datasets info"])  # fmt: skip
def test_read_only_verbs_never_fail_with_a_bug(shared, capsys, monkeypatch, verb):
    @settings(max_examples=100, **SETTINGS)
    @given(words=argv(verb))
    def run(words):
        check(words, shared, capsys, monkeypatch)

    run()


@pytest.mark.parametrize(("verb", "examples"), [("train", 100), ("cv", 15), ("tune", 10)])
def test_training_verbs_never_fail_with_a_bug_or_touch_other_files(shared, capsys, monkeypatch, verb, examples):
    @settings(max_examples=examples, **SETTINGS)
    @given(words=argv(verb))
    def run(words):
        check(words, shared, capsys, monkeypatch)

    run()


def test_the_property_catches_a_bug(shared, capsys, monkeypatch):
    """The check itself must fail on an internal error, so a green run means something."""
    from mfrec.estimator import MatrixFactorization

    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(MatrixFactorization, "recommend", broken)
    with pytest.raises(AssertionError):
        check(["recommend", "--model", "@run", "--user", "100"], shared, capsys, monkeypatch)


def test_a_thesis_folder_survives_overwrite(shared, capsys, monkeypatch):
    check(["train", "--ratings", "@ratings", "--epochs", "1", "-q", "--out", "@precious", "--overwrite"], shared,
          capsys, monkeypatch)  # fmt: skip



def test_a_run_folder_written_where_a_shared_input_was_missing_is_the_named_output(shared, capsys, monkeypatch):
    # the files inside a folder named by --out are that output; the next example sees the shared inputs as they were
    base, _ = shared
    words = ["train", "--ratings", "@ratings", "--epochs", "1", "-q", "--device", "cpu", "--out", "@missing"]
    for extra in ([], ["--overwrite"]):
        check(words + extra, shared, capsys, monkeypatch)
        assert not (base / "missing.csv").exists()
