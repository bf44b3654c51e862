"""The Parquet cache of parsed datasets: same result, no re-parse, invalidation, damage, read-only caches."""

import os
import time

import numpy as np
import pytest

from mfrec.data import load_dataset
from mfrec.data import movielens as movielens_module
from mfrec.data.fetch import cache_dir
from tests.test_movielens import make_copy, make_zip


def same(a, b):
    assert np.array_equal(a.users, b.users) and np.array_equal(a.items, b.items)
    assert np.array_equal(a.ratings, b.ratings) and a.ratings.dtype == b.ratings.dtype
    assert np.array_equal(a.timestamps, b.timestamps)
    assert a.user_map == b.user_map and a.item_map == b.item_map
    assert list(a.titles) == list(b.titles)
    assert (a.scale, a.name, a.kind) == (b.scale, b.name, b.kind)


def refuse_parsing(monkeypatch):
    def parse(*_, **__):
        raise AssertionError("parsed the text again")

    monkeypatch.setattr(movielens_module, "read_movielens", parse)


@pytest.mark.parametrize("name", ["ml-25m", "ml-1m", "ml-100k"])
def test_the_second_load_reads_the_cache_and_gives_the_same_ratings(tmp_path, monkeypatch, name):
    folder = make_copy(tmp_path / "data", name)
    first = load_dataset(name, folder)
    assert len(list((cache_dir() / "parsed").iterdir())) == 1
    refuse_parsing(monkeypatch)
    same(load_dataset(name, folder), first)


def test_a_changed_file_is_parsed_again(tmp_path):
    folder = make_copy(tmp_path / "data", "ml-25m")
    assert len(load_dataset("ml-25m", folder)) == 3
    ratings = folder / "ratings.csv"
    ratings.write_text(ratings.read_text() + "3,20,1.5,103\n")
    later = time.time() + 5
    os.utime(ratings, (later, later))
    again = load_dataset("ml-25m", folder)
    assert len(again) == 4 and again.n_users == 3


def test_a_damaged_entry_is_ignored_and_rewritten(tmp_path, monkeypatch):
    zipped = tmp_path / "ml-latest-small.zip"
    make_zip(zipped, "ml-latest-small")
    first = load_dataset("ml-latest-small", zipped)
    (entry,) = (cache_dir() / "parsed").iterdir()
    (entry / "ratings.parquet").write_bytes(b"PAR1 not parquet")
    same(load_dataset("ml-latest-small", zipped), first)
    refuse_parsing(monkeypatch)
    same(load_dataset("ml-latest-small", zipped), first)  # the rewritten entry is whole again


def test_an_unwritable_cache_only_costs_the_speed_up(tmp_path, monkeypatch):
    folder = make_copy(tmp_path / "data", "ml-25m")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MFREC_CACHE", str(blocked))
    assert len(load_dataset("ml-25m", folder)) == 3
    assert len(load_dataset("ml-25m", folder, cache=False)) == 3


@pytest.mark.slow
def test_ml_latest_small_round_trips_through_the_cache(ml_small, monkeypatch):
    load_dataset("ml-latest-small", download=False)  # fills this test's empty cache
    refuse_parsing(monkeypatch)
    same(load_dataset("ml-latest-small", download=False), ml_small)
