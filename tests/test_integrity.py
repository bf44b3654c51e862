"""Persistence invariants, in one place: every file mfrec writes carries a digest of its whole
content, and a single flipped bit anywhere in it is noticed when it is read.

| what | digest | on read |
|---|---|---|
| model file | SHA-256 of tensors and header, in the header | refused (ModelFileError) |
| checkpoint | the same | refused: "damaged checkpoint" |
| run folder | SHA256SUMS over every file | the model and split refused |
| resume state (``.NAME.work/config.json``) | sealed JSON | refused: "damaged run config" |
| parsed-data cache entry | per-file SHA-256 in a sealed meta.json | ignored and parsed again |
| tuning folder | SHA256SUMS | (``sha256sum -c``) |
| batch recommendations | ``FILE.sha256`` beside the file | (``sha256sum -c``) |

Each is written atomically (see ``mfrec._io``); the tests of a killed or failed
write are in test_resume.py, test_nonsense.py and test_bad_input.py.
"""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfrec import MatrixFactorization, errors, load_model
from mfrec.cli import main

FLIPS = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def flip(raw: bytes, data) -> bytes:
    position = data.draw(st.integers(0, len(raw) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(raw)
    damaged[position] ^= 1 << bit
    return bytes(damaged)


@pytest.fixture(scope="module")
def lowrank():
    from mfrec.data import split_ratings
    from tests.conftest import low_rank_ratings

    return split_ratings(low_rank_ratings(20, 10), "random", seed=0)


@pytest.fixture(scope="module")
def checkpoint_bytes(lowrank, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.safetensors"
    MatrixFactorization(epochs=2, patience=0, device="cpu", embedding_dim=2).fit(lowrank.train, lowrank.val,
                                                                                 checkpoint=path)  # fmt: skip
    return path.read_bytes()


@FLIPS
@given(data=st.data())
def test_a_single_bit_flip_anywhere_in_a_checkpoint_is_refused(lowrank, checkpoint_bytes, tmp_path, data):
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(flip(checkpoint_bytes, data))
    with pytest.raises(errors.ModelFileError, match="damaged checkpoint"):
        MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=2).fit(lowrank.train, lowrank.val,
                                                                                     checkpoint=path)  # fmt: skip


def test_an_intact_checkpoint_resumes(lowrank, checkpoint_bytes, tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(checkpoint_bytes)
    model = MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=2)
    assert len(model.fit(lowrank.train, lowrank.val, checkpoint=path).history_) == 2  # the finished run, restored


@pytest.fixture(scope="module")
def run_folder(ratings_csv_module):
    out = ratings_csv_module.parent / "run"
    assert main(["train", "--ratings", str(ratings_csv_module), "--epochs", "2", "-q", "--device", "cpu",
                 "--embedding-dim", "2", "--out", str(out)]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def ratings_csv_module(tmp_path_factory):
    from tests.conftest import low_rank_ratings

    path = tmp_path_factory.mktemp("integrity") / "ratings.csv"
    low_rank_ratings(20, 10).to_frame().to_csv(path, index=False)
    return path


def test_a_run_folder_lists_every_file_and_sha256sum_agrees(run_folder):
    listed = {line.split("  ", 1)[1] for line in (run_folder / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.name for p in run_folder.iterdir()} - {"SHA256SUMS"}
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=run_folder).returncode == 0


@FLIPS
@given(data=st.data())
def test_a_single_bit_flip_in_any_file_of_a_run_folder_is_refused(run_folder, tmp_path_factory, data):
    import shutil

    name = data.draw(st.sampled_from(sorted(p.name for p in run_folder.iterdir())), label="file")
    copy = tmp_path_factory.mktemp("flipped") / "run"
    shutil.copytree(run_folder, copy)
    (copy / name).write_bytes(flip((copy / name).read_bytes(), data))
    with pytest.raises(errors.ModelFileError):
        load_model(copy)
    if name == "split.parquet":  # read on its own too: evaluate --split
        from mfrec.data.split import load_split

        with pytest.raises(errors.DataError):
            load_split(copy / "split.parquet")


@FLIPS
@given(data=st.data())
def test_a_single_bit_flip_in_the_resume_state_is_refused(tmp_path_factory, data):
    from mfrec._io import sealed_json_text
    from mfrec.config import RunConfig, SplitConfig, TrainConfig
    from mfrec.run import resume_config, work_folder

    out = tmp_path_factory.mktemp("resume") / "run"
    work = work_folder(out)
    work.mkdir()
    config = RunConfig(preset="default", dataset=None, ratings_file="r.csv", columns={"user": "user"},
                       split=SplitConfig("random", (0.6, 0.2, 0.2), 1, 1), train=TrainConfig())  # fmt: skip
    text = sealed_json_text(config.to_dict(), indent=2).encode()
    (work / "config.json").write_bytes(text)
    assert resume_config(out).to_dict() == config.to_dict()
    (work / "config.json").write_bytes(flip(text, data))
    with pytest.raises(errors.ConfigError, match=r"damaged|not valid|JSON|UTF-8|utf-8"):
        resume_config(out)


@FLIPS
@given(data=st.data())
def test_a_single_bit_flip_in_a_cache_entry_means_parsing_again(tmp_path_factory, monkeypatch, data):
    from mfrec.data import load_dataset
    from mfrec.data import movielens as movielens_module
    from mfrec.data.fetch import cache_dir
    from tests.test_movielens import make_copy
    from tests.test_parsed_cache import same

    root = tmp_path_factory.mktemp("cache")
    with monkeypatch.context() as local:
        local.setenv("MFREC_CACHE", str(root / "cache"))
        folder = make_copy(root / "data", "ml-1m")
        first = load_dataset("ml-1m", folder)
        (entry,) = (cache_dir() / "parsed").iterdir()
        name = data.draw(st.sampled_from(sorted(p.name for p in entry.iterdir())), label="file")
        (entry / name).write_bytes(flip((entry / name).read_bytes(), data))
        parsed = []
        real = movielens_module.read_movielens
        local.setattr(movielens_module, "read_movielens", lambda *a, **k: parsed.append(1) or real(*a, **k))
        same(load_dataset("ml-1m", folder), first)
    assert parsed, f"a flipped bit in {name} went unnoticed"


def test_batch_recommendations_carry_a_digest(run_folder, tmp_path):
    out = tmp_path / "recs.csv"
    assert main(["recommend", "--model", str(run_folder), "--all-users", "--out", str(out), "-n", "3"]) == 0
    assert (tmp_path / "recs.csv.sha256").is_file()
    assert subprocess.run(["sha256sum", "--quiet", "-c", "recs.csv.sha256"], cwd=tmp_path).returncode == 0


def test_every_single_bit_flip_of_the_digest_list_is_refused(run_folder, tmp_path):
    """Exhaustively: a flip that keeps the list parseable (a newline made a vertical tab) is damage too."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy)
    raw = (run_folder / "SHA256SUMS").read_bytes()
    accepted = []
    for position in range(len(raw)):
        for bit in range(8):
            damaged = bytearray(raw)
            damaged[position] ^= 1 << bit
            (copy / "SHA256SUMS").write_bytes(bytes(damaged))
            try:
                load_model(copy)
            except errors.ModelFileError:
                continue
            accepted.append((position, bit))
    assert accepted == []


def test_metadata_text_must_be_exactly_what_was_written(lowrank, checkpoint_bytes, tmp_path):
    """A digit past a float's precision parses to the same value: the text itself is checked too."""
    import re

    text = checkpoint_bytes.decode("latin-1")
    digit = re.search(r"\d\.\d{17,}", text)
    assert digit, "the checkpoint header holds a float written to full precision"
    position = digit.end() - 1
    damaged = bytearray(checkpoint_bytes)
    damaged[position] = ord("1") if damaged[position] != ord("1") else ord("2")
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(bytes(damaged))
    with pytest.raises(errors.ModelFileError, match="damaged checkpoint"):
        MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=2).fit(lowrank.train, lowrank.val,
                                                                                     checkpoint=path)  # fmt: skip
