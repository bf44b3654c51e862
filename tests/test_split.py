import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfrec.data import Ratings, load_split, split_ratings
from mfrec.errors import ConfigError, DataError


def synthetic(n, seed, n_users=20):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = np.arange(n)  # unique pairs
    ratings = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], n)
    return Ratings.from_arrays(users, items, ratings, timestamps=rng.integers(0, 1000, n))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(30, 400),
    seed=st.integers(0, 2**16),
    method=st.sampled_from(["stratified", "random", "user", "temporal", "temporal-user"]),
)
def test_parts_are_disjoint_complete_and_deterministic(n, seed, method):
    data = synthetic(n, seed)
    split = split_ratings(data, method, seed=seed)
    rows = np.concatenate([split.rows[p] for p in ("train", "val", "test")])
    assert len(rows) == n and len(np.unique(rows)) == n
    again = split_ratings(data, method, seed=seed)
    assert all(np.array_equal(split.rows[p], again.rows[p]) for p in split.rows)
    assert len(split.train) > 0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(200, 1000), seed=st.integers(0, 2**16))
def test_stratified_keeps_rating_shares(n, seed):
    data = synthetic(n, seed)
    split = split_ratings(data, "stratified", seed=seed)
    overall = np.bincount(data.ratings.astype(int), minlength=6) / n
    for part, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        r = split.part(part).ratings.astype(int)
        assert abs(len(r) / n - share) < 0.02
        assert np.abs(np.bincount(r, minlength=6) / len(r) - overall).max() < 0.06


def test_different_seeds_differ():
    data = synthetic(300, 1)
    a = split_ratings(data, "random", seed=1).rows["train"]
    b = split_ratings(data, "random", seed=2).rows["train"]
    assert not np.array_equal(a, b)


def test_temporal_cut_orders_by_time():
    data = synthetic(300, 3)
    split = split_ratings(data, "temporal")
    assert split.train.timestamps.max() <= split.val.timestamps.min()
    assert split.val.timestamps.max() <= split.test.timestamps.min()


def test_last_k_holds_out_each_users_latest():
    users = np.repeat([1, 2], 5)
    stamps = np.array([5, 1, 4, 2, 3, 10, 30, 20, 50, 40])
    data = Ratings.from_arrays(users, np.arange(10), np.full(10, 3.0), timestamps=stamps)
    split = split_ratings(data, "temporal-user", holdout=1)
    assert sorted(split.test.timestamps.tolist()) == [5, 50]
    assert sorted(split.val.timestamps.tolist()) == [4, 40]


def test_cold_start_counts():
    data = Ratings.from_arrays(np.array([1, 1, 2, 3]), np.array([1, 2, 1, 9]), np.array([1.0, 2, 3, 4]))
    from mfrec.data.split import Split

    split = Split(data, {"train": np.array([0, 1]), "val": np.array([2]), "test": np.array([3])}, "manual", 0)
    cold = split.cold_start()
    assert cold["val"] == {"ratings": 1, "unseen_user": 1, "unseen_item": 0, "unseen_either": 1}
    assert cold["test"]["unseen_item"] == 1 and cold["test"]["unseen_user"] == 1


def test_save_and_load_round_trip(tmp_path):
    data = synthetic(100, 4)
    split = split_ratings(data, "random", seed=4)
    split.save(tmp_path / "split.parquet")
    loaded = load_split(tmp_path / "split.parquet")
    assert loaded.method == "random" and loaded.seed == 4
    for part in ("train", "val", "test"):
        a, b = split.part(part).to_frame(), loaded.part(part).to_frame()
        assert (
            a.sort_values(["user", "item"])
            .reset_index(drop=True)
            .equals(b.sort_values(["user", "item"]).reset_index(drop=True))
        )



def _rewritten(split, path, change, meta=None):
    """The split file as other code might rewrite it (in a run folder its SHA256SUMS would be resealed too)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    split.save(path)
    table = pq.read_table(path)
    frame = change(table.to_pandas())
    out = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(out.replace_schema_metadata({**table.schema.metadata, **(meta or {})}), path)
    return path


@pytest.mark.parametrize("change, meta, message", [
    (lambda f: f.assign(split=np.where(np.arange(len(f)) == 3, "bogus", f["split"])), None,
     r"row 4: part 'bogus' is not one of train, val, test"),
    (lambda f: f.assign(rating=np.where(np.arange(len(f)) == 0, np.nan, f["rating"])), None, r"row 1: rating"),
    (lambda f: f.assign(rating=np.where(np.arange(len(f)) == 0, 9.0, f["rating"])), None, r"row 1: .*outside"),
    (lambda f: f.iloc[[0, 1, 0]], None, r"duplicate rating"),
    (lambda f: f, {b"mfrec.split.scale": b"5,1"}, r"scale 5 to 1"),
    (lambda f: f, {b"mfrec.split.seed": b"forty"}, r"seed or scale is not a number"),
    (lambda f: f, {b"mfrec.split.kind": b"stars"}, r"kind 'stars'"),
])  # fmt: skip
def test_a_split_file_is_checked_like_ratings_whoever_wrote_it(tmp_path, change, meta, message):
    """A split's digest proves it is the file written, not that mfrec wrote it: its rows are checked as a
    ratings file is (and its parts named), so a rewritten file is one error naming the row, not wrong metrics."""
    data = synthetic(60, 2)
    path = _rewritten(split_ratings(data, "random", seed=1), tmp_path / "split.parquet", change, meta)
    with pytest.raises(DataError, match=message):
        load_split(path)
    good = _rewritten(split_ratings(data, "random", seed=1), tmp_path / "good.parquet", lambda f: f)
    assert len(load_split(good).data) == 60  # the rewriting alone changes nothing


@pytest.mark.parametrize("column, hint", [("timestamp", "--timestamp-col timestamp"), ("rated date", "'rated date'"),
                                          ("ts", "--timestamp-col ts"), ("weight", None)])  # fmt: skip
def test_a_temporal_split_without_timestamps_points_to_a_time_column_left_unread(tmp_path, column, hint):
    from mfrec.data import read_ratings

    path = tmp_path / "r.csv"
    path.write_text(f"user,item,rating,{column}\n" + "".join(f"{k % 4},{k},3,{k}\n" for k in range(12)))
    data = read_ratings(path)
    assert data.info["unread_columns"] == [column]
    with pytest.raises(DataError, match="needs timestamps") as error:
        split_ratings(data, "temporal")
    assert (hint in str(error.value)) if hint else ("--timestamp-col" not in str(error.value))


def test_bad_arguments():
    data = synthetic(50, 5)
    with pytest.raises(ConfigError, match="unknown split method"):
        split_ratings(data, "nope")
    with pytest.raises(ConfigError, match="add up to 1"):
        split_ratings(data, "random", fractions=(0.5, 0.2, 0.2))
    no_time = Ratings.from_arrays(np.arange(10), np.arange(10), np.full(10, 3.0))
    with pytest.raises(DataError, match="needs timestamps"):
        split_ratings(no_time, "temporal")


@pytest.mark.slow
def test_notebook_split_sizes(ml_split):
    assert ml_split.sizes() == {"train": 60501, "val": 20167, "test": 20168}


def test_an_implicit_split_with_a_weight_of_0_keeps_its_parts_aligned(tmp_path):
    """The reader drops interactions of weight 0; a split file written before that holds them, and its parts
    must lose the same rows, not shift by one."""
    data = Ratings.from_arrays(np.repeat(np.arange(10), 6), np.tile(np.arange(6), 10),
                               np.arange(1.0, 61.0), kind="implicit", scale=(0, 60))  # fmt: skip
    split = split_ratings(data, "random", seed=0)
    _rewritten(split, tmp_path / "split.parquet",
               lambda f: f.assign(rating=np.where(np.arange(len(f)) == 0, 0.0, f["rating"])))  # fmt: skip
    expected = split.to_frame().iloc[1:]  # the row given a weight of 0 is gone; every other keeps its part
    loaded = load_split(tmp_path / "split.parquet")
    for part in ("train", "val", "test"):
        got = loaded.part(part).to_frame()
        want = expected[expected["split"] == part]
        assert sorted(zip(got["user"], got["item"], got["rating"], strict=True)) == \
            sorted(zip(want["user"], want["item"], want["rating"], strict=True))  # fmt: skip
