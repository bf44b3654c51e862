"""Shared fixtures: tiny synthetic data with known answers, and the real ml-latest-small."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mfrec.data import Ratings

pytest.register_assert_rewrite("tests.contract")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config):
    # Real-data tests read ml-latest-small from MFREC_DATA, defaulting to ../shared/data.
    if not os.environ.get("MFREC_DATA") and SHARED.is_dir():
        os.environ["MFREC_DATA"] = str(SHARED)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's real cache from a test."""
    monkeypatch.setenv("MFREC_CACHE", str(tmp_path_factory.mktemp("cache")))


def low_rank_ratings(n_users=60, n_items=40, rank=2, density=0.6, noise=0.0, seed=0) -> Ratings:
    """Ratings from a known rank-``rank`` model plus biases, on the 0.5-5 scale (not rounded)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.6, (n_users, rank))
    q = rng.normal(0, 0.6, (n_items, rank))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    full = 3.5 + bu[:, None] + bi[None, :] + p @ q.T + rng.normal(0, noise, (n_users, n_items))
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    values = np.clip(full[users, items], 0.5, 5.0)
    return Ratings.from_arrays(users + 100, items + 1000, values, timestamps=np.arange(len(users)), name="lowrank")


@pytest.fixture
def ratings_csv(tmp_path):
    """The low-rank ratings rounded to half stars, as a CSV file (user, item, rating, timestamp)."""
    path = tmp_path / "ratings.csv"
    frame = low_rank_ratings().to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def lowrank() -> Ratings:
    return low_rank_ratings()


@pytest.fixture(scope="session")
def ml_small():
    """The real ml-latest-small; skipped outside CI when absent, an error in CI."""
    from mfrec.data import load_dataset
    from mfrec.errors import DatasetNotFoundError

    try:
        return load_dataset("ml-latest-small", download=False)
    except DatasetNotFoundError:
        if os.environ.get("CI"):
            raise
        pytest.skip("ml-latest-small is not available (set MFREC_DATA)")


@pytest.fixture(scope="session")
def ml_split(ml_small):
    from mfrec.data import split_ratings

    return split_ratings(ml_small, "stratified", seed=42)
