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
