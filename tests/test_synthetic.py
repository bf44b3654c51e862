"""Synthetic MovieLens-shaped data goes through the real loader."""

import numpy as np

from mfrec.cli import main
from mfrec.data import load_dataset
from mfrec.data.synthetic import SHAPES, synthesize


def test_synthetic_arrays_have_the_promised_shape():
    users, items, ratings, stamps, n_items = synthesize(SHAPES["ml-25m"], fraction=0.002, seed=1)
    assert len(np.unique(users * n_items + items)) == len(users)  # no repeated pairs
    assert set(np.unique(ratings * 2)) <= set(range(1, 11))  # half stars from 0.5 to 5
    counts = np.bincount(users)[1:]
    assert counts.min() >= 20 and counts.max() > 5 * np.median(counts)  # long-tailed activity
    assert abs(len(users) - 25_000_095 * 0.002) / (25_000_095 * 0.002) < 0.05
    assert stamps.min() >= SHAPES["ml-25m"].start


def test_written_layout_loads_with_the_ml25m_reader(tmp_path, capsys):
    assert main(["datasets", "synth", "--like", "ml-25m", "--fraction", "0.001", "--out", str(tmp_path)]) == 0
    data = load_dataset("ml-25m", tmp_path / "ml-25m")
    assert len(data) > 20_000 and data.n_users > 100
    assert data.title(0).startswith("Synthetic Movie")
    assert data.timestamps is not None and data.ratings.min() >= 0.5


def test_synth_never_writes_over_a_folder_that_holds_anything(tmp_path, capsys):
    import subprocess

    real = tmp_path / "data" / "ml-latest-small"
    real.mkdir(parents=True)
    (real / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n")  # a user's real copy
    args = ["datasets", "synth", "--like", "ml-latest-small", "--fraction", "0.01", "--out", str(tmp_path / "data")]
    assert main(args) == 1
    assert "already exists and is not empty; nothing was written" in capsys.readouterr().err
    assert [p.name for p in real.iterdir()] == ["ratings.csv"] and "1,1,4.0,1" in (real / "ratings.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ml-latest-small"]  # no work folder left
    (real / "ratings.csv").unlink()  # an empty folder is filled
    assert main(args) == 0
    assert sorted(p.name for p in real.iterdir()) == ["README.txt", "SHA256SUMS", "movies.csv", "ratings.csv"]
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=real).returncode == 0
    assert main([*args[:-1], str(tmp_path / "other"), "--seed", "-1"]) == 1
    assert "seed must be an integer from 0 to 2^63 - 1" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
