"""Run folders never lose what a user owns: --overwrite replaces only runs; a kept run is really kept."""

import os
import stat

import pytest

from mfrec.cli import main
from mfrec.errors import ConfigError, OutputError
from mfrec.run import prepare_output


@pytest.fixture
def ratings_csv(tmp_path):
    from tests.conftest import low_rank_ratings

    path = tmp_path / "ratings.csv"
    low_rank_ratings().to_frame().to_csv(path, index=False)
    return path


def train(ratings_csv, out, *extra):
    return main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "--device", "cpu", "-q", "--out", str(out),
                 *extra])  # fmt: skip


@pytest.mark.parametrize("contents", [{"thesis.tex": "chapter 1"}, {"chapters/one.tex": "x"},
                                      {"config.json": "{}", "notes.txt": "mine"}])  # fmt: skip
def test_overwrite_refuses_a_folder_that_is_not_a_run_and_deletes_nothing(ratings_csv, tmp_path, capsys, contents):
    out = tmp_path / "mine"
    for name, text in contents.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    assert train(ratings_csv, out, "--overwrite") == 1
    assert "not an mfrec run folder" in capsys.readouterr().err
    assert all((out / name).read_text() == text for name, text in contents.items())



def test_a_run_inside_a_run_or_a_file_is_refused_and_extra_files_are_named(ratings_csv, tmp_path, capsys):
    """A run written inside another run made the outer one hold a folder it did not write, so a later
    --overwrite of it was refused as "not an mfrec run folder (it holds SHA256SUMS, config.json, ...)"."""
    outer = tmp_path / "outer"
    assert train(ratings_csv, outer) == 0
    before = sorted(p.name for p in outer.iterdir())
    assert train(ratings_csv, outer / "inner") == 1
    assert f"inside the run folder {outer}" in capsys.readouterr().err
    assert sorted(p.name for p in outer.iterdir()) == before
    (outer / "recs.csv").write_text("user,item\n")  # a user's file put beside the model: named, and kept
    assert train(ratings_csv, outer, "--overwrite") == 1
    assert "a run folder that also holds recs.csv, which mfrec did not write" in capsys.readouterr().err
    assert (outer / "recs.csv").read_text() == "user,item\n"
    assert train(ratings_csv, ratings_csv / "run") == 1
    assert f"{ratings_csv} is a file, so it cannot hold the run folder" in capsys.readouterr().err


def test_overwrite_replaces_a_run_folder(ratings_csv, tmp_path):
    out = tmp_path / "run"
    assert train(ratings_csv, out) == 0
    assert train(ratings_csv, out, "--overwrite", "--seed", "3") == 0
    assert (out / "model.safetensors").exists()


@pytest.mark.parametrize(("out", "error", "pattern"), [
    (".", OutputError, "current folder"), ("..", OutputError, "current folder"),
    ("", ConfigError, "out must name a file or folder, not ''"),  # pathlib would read it as "."
])  # fmt: skip
def test_the_current_folder_or_its_parents_are_refused(ratings_csv, tmp_path, monkeypatch, out, error, pattern):
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(error, match=pattern):
        prepare_output(out, overwrite=True)
    assert work.exists()


def test_a_run_folder_appearing_while_training_keeps_the_new_run(ratings_csv, tmp_path, capsys, monkeypatch):
    import mfrec.run as run

    out = tmp_path / "run"
    real = run.baseline_metrics

    def meanwhile(split):  # another process creates the folder during training
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")
        return real(split)

    monkeypatch.setattr(run, "baseline_metrics", meanwhile)
    assert train(ratings_csv, out) == 1
    err = capsys.readouterr().err
    kept = err.split("the new run is kept at ")[1].strip()
    assert (tmp_path / kept).is_dir() or os.path.isdir(kept)
    assert (out / "theirs.txt").read_text() == "theirs"


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_run_folders_follow_the_umask(ratings_csv, tmp_path, umask):
    old = os.umask(umask)
    try:
        assert train(ratings_csv, tmp_path / "run") == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o777 & ~umask


def test_batch_recommendations_and_tuning_never_replace_a_file_mfrec_did_not_write(ratings_csv, tmp_path, capsys):
    """`recommend --out my.csv` replaced the user's own file, and `tune --out` their best.json."""
    run = tmp_path / "run"
    assert main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "-q", "--device", "cpu", "--out",
                 str(run)]) == 0  # fmt: skip
    mine = tmp_path / "mine.csv"
    mine.write_bytes(ratings_csv.read_bytes())
    recommend = ["recommend", str(run), "--all-users", "-n", "2", "--out"]
    capsys.readouterr()
    assert main([*recommend, str(mine)]) == 1
    err = capsys.readouterr().err.strip()
    assert "is not a recommendations file that mfrec wrote" in err and "\n" not in err
    assert mine.read_bytes() == ratings_csv.read_bytes() and not (tmp_path / "mine.csv.sha256").exists()
    ours = tmp_path / "recs.csv"
    assert main([*recommend, str(ours)]) == 0
    assert main([*recommend, str(ours)]) == 0  # its own earlier output is replaced
    with ours.open("a") as handle:  # ... until someone changes it
        handle.write("edited\n")
    assert main([*recommend, str(ours)]) == 1
    assert ours.read_text().endswith("edited\n")
    tuning = tmp_path / "tuning"
    tuning.mkdir()
    (tuning / "best.json").write_text('{"epochs": 3}\n')
    capsys.readouterr()
    assert main(["tune", "--ratings", str(ratings_csv), "--trials", "1", "--out", str(tuning)]) == 1
    err = capsys.readouterr().err.strip()
    assert "best.json: exists and is not a tuning result that mfrec wrote" in err and "trial 0" not in err
    assert sorted(p.name for p in tuning.iterdir()) == ["best.json"] and "3" in (tuning / "best.json").read_text()
    (tuning / "best.json").unlink()
    (tuning / "SHA256SUMS").write_text("not mine\n")
    assert main(["tune", "--ratings", str(ratings_csv), "--trials", "1", "--out", str(tuning)]) == 1
    assert (tuning / "SHA256SUMS").read_text() == "not mine\n"


def test_a_second_run_of_the_same_folder_at_once_is_refused_and_touches_nothing(ratings_csv, tmp_path, capsys):
    """It took the running one's work folder for an interrupted run, and --overwrite deleted it."""
    from mfrec.run import run_lock, work_folder

    out = tmp_path / "run"
    work = work_folder(out)
    work.mkdir()
    (work / "config.json").write_text("{}")  # the running one's work folder
    with run_lock(out):
        for extra in ([], ["--overwrite"]):
            code = train(ratings_csv, out, *extra)
            err = capsys.readouterr().err.strip()
            assert code == 1 and "another mfrec train is writing this run folder now" in err and "\n" not in err
            assert (work / "config.json").read_text() == "{}" and not out.exists()
    assert not (tmp_path / ".run.lock").exists()  # gone with its holder
    assert train(ratings_csv, out, "--overwrite") == 0 and not work.exists()
