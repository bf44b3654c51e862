"""similar_items: each similarity against a dense reference computed here, the ``auto`` default, and its errors."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfrec import MatrixFactorization
from mfrec.data import Ratings
from mfrec.errors import ConfigError

USERS, ITEMS = 7, 6


@pytest.fixture(scope="module")
def grid_model():
    """A model that knows every user and item of a 7 x 6 grid; tests give it other remembered data."""
    users, items = np.divmod(np.arange(USERS * ITEMS), ITEMS)
    values = 1.0 + (users * 3 + items * 5) % 5
    data = Ratings.from_arrays(users + 100, items + 1000, values)
    return MatrixFactorization(model="ease", device="cpu").fit(data)


def reference(dense: np.ndarray, shrinkage: float, centred: bool) -> np.ndarray:
    """Item-item similarities from a dense (users, items) matrix with NaN where unrated, by the textbook formulas."""
    rated = ~np.isnan(dense)
    if centred:
        means = np.nanmean(np.where(rated.any(1, keepdims=True), dense, 0.0), axis=1, keepdims=True)
        values = np.where(rated, dense - means, 0.0)
    else:
        values = rated.astype(float)
    inner = values.T @ values
    norms = np.sqrt(np.diag(inner))
    with np.errstate(invalid="ignore", divide="ignore"):
        sims = np.where(np.outer(norms, norms) > 0, inner / np.outer(norms, norms), 0.0)
    together = rated.T.astype(float) @ rated.astype(float)
    return sims * (together / (together + shrinkage) if shrinkage else 1.0)


def remembered(mask: np.ndarray, values: np.ndarray) -> Ratings:
    users, items = np.nonzero(mask)
    return Ratings.from_arrays(users + 100, items + 1000, values[users, items])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mask=st.lists(st.booleans(), min_size=USERS * ITEMS, max_size=USERS * ITEMS),
    stars=st.lists(st.integers(1, 10), min_size=USERS * ITEMS, max_size=USERS * ITEMS),
    shrinkage=st.sampled_from([0.0, 1.5, 20.0]),
    similar=st.sampled_from(["ratings", "cooccurrence"]),
)
def test_ratings_and_cooccurrence_equal_the_dense_formulas(grid_model, mask, stars, shrinkage, similar):
    mask = np.array(mask).reshape(USERS, ITEMS)
    values = np.array(stars, dtype=float).reshape(USERS, ITEMS) / 2
    mask[0, :] = True  # every item rated at least once, by a user whose ratings differ
    values[0, :2] = [1.0, 5.0]
    grid_model.set_seen(remembered(mask, values))
    expected = reference(np.where(mask, values, np.nan), shrinkage, centred=similar == "ratings")
    found = grid_model.similar_items(np.arange(ITEMS) + 1000, ITEMS - 1, shrinkage=shrinkage, similar=similar)
    for query in range(ITEMS):
        items = found.items[query].astype(int) - 1000
        assert query not in items
        np.testing.assert_allclose(found.scores[query], expected[query, items], atol=1e-6)  # float32 sums
        assert (np.diff(found.scores[query]) <= 1e-12).all()


def test_auto_is_ratings_where_ratings_differ_within_users_and_factors_where_they_do_not(grid_model):
    mask = np.ones((USERS, ITEMS), dtype=bool)
    values = 1.0 + np.add.outer(np.arange(USERS), np.arange(ITEMS) * 7) % 5
    grid_model.set_seen(remembered(mask, values))
    assert grid_model.prepare_similar() == "ratings"
    auto = grid_model.similar_items(1000, 4)
    assert np.array_equal(auto.items, grid_model.similar_items(1000, 4, similar="ratings").items)
    assert np.allclose(auto.scores, grid_model.similar_items(1000, 4, similar="ratings").scores)

    grid_model.set_seen(remembered(mask, np.ones((USERS, ITEMS))))  # clicks: one value per user
    assert grid_model.prepare_similar() == "factors"
    assert np.allclose(grid_model.similar_items(1000, 4).scores,
                       grid_model.similar_items(1000, 4, similar="factors").scores)  # fmt: skip
    with pytest.raises(ConfigError, match="one value per user"):
        grid_model.similar_items(1000, 4, similar="ratings")
    with pytest.raises(ConfigError, match="similar must be one of auto, ratings, factors, cooccurrence"):
        grid_model.similar_items(1000, 4, similar="pearson")


def test_a_pair_rated_alike_is_nearer_than_a_pair_rated_apart(grid_model):
    """Users who rate item 0 above their mean rate item 1 above it too, and item 2 below: 1 is near, 2 is far."""
    values = np.array([[5, 5, 1, 3, 3, 3], [1, 1, 5, 3, 3, 3], [4, 5, 2, 3, 3, 3], [2, 1, 4, 3, 3, 3],
                       [5, 4, 1, 3, 3, 3], [1, 2, 5, 3, 3, 3], [3, 3, 3, 3, 3, 3]], dtype=float)  # fmt: skip
    grid_model.set_seen(remembered(np.ones_like(values, dtype=bool), values))
    near = grid_model.similar_items(1000, ITEMS - 1, shrinkage=0, similar="ratings").to_frame()
    assert near["item"].iloc[0] == 1001 and near["item"].iloc[-1] == 1002
    assert near["similarity"].iloc[0] > 0.8 and near["similarity"].iloc[-1] < -0.8


def test_each_similarity_builds_only_the_matrices_it_reads(grid_model):
    """cooccurrence counts co-raters from the patterns alone; ratings adds the centred values, float32."""
    mask = np.ones((USERS, ITEMS), dtype=bool)
    values = 1.0 + np.add.outer(np.arange(USERS), np.arange(ITEMS) * 7) % 5
    grid_model.set_seen(remembered(mask, values))
    before = grid_model.similar_items(1000, 4, similar="cooccurrence")
    kept = grid_model._item_columns
    assert "ones_by_item" in kept and "by_item" not in kept
    grid_model.similar_items(1000, 4, similar="ratings")
    kept = grid_model._item_columns
    assert kept["by_item"].dtype == np.float32
    assert np.shares_memory(kept["by_item"].indices, kept["ones_by_item"].indices)  # one index array per orientation
    after = grid_model.similar_items(1000, 4, similar="cooccurrence")
    assert np.array_equal(before.items, after.items) and np.allclose(before.scores, after.scores)


def test_similar_arrays_round_trip_into_another_copy_of_the_model(grid_model, tmp_path):
    """What one process builds, another copy of the model reads without copying, and answers the same."""
    from mfrec.estimator import load_model

    mask = np.ones((USERS, ITEMS), dtype=bool)
    mask[2, 3] = mask[4, 0] = False
    values = 1.0 + np.add.outer(np.arange(USERS) * 3, np.arange(ITEMS) * 7) % 5
    grid_model.set_seen(remembered(mask, values))
    arrays = grid_model.similar_arrays()
    grid_model.save(tmp_path / "model.safetensors")
    other = load_model(tmp_path / "model.safetensors")
    other.use_similar_arrays(arrays)
    assert np.shares_memory(other._item_columns["by_item"].data, arrays["centred_by_item"])
    queries = np.arange(ITEMS) + 1000
    for similar in ("ratings", "cooccurrence"):
        mine = grid_model.similar_items(queries, 3, similar=similar)
        theirs = other.similar_items(queries, 3, similar=similar)
        assert np.array_equal(mine.items, theirs.items) and np.array_equal(mine.scores, theirs.scores)

    with pytest.raises(ConfigError, match="other data"):
        other.use_similar_arrays({**arrays, "user_items": arrays["user_items"][::-1].copy()})
    with pytest.raises(ConfigError, match="similar arrays are"):
        other.use_similar_arrays({k: v for k, v in arrays.items() if k != "ones"})
    grid_model.set_seen(remembered(mask, np.ones((USERS, ITEMS))))  # one value per user: factors reads the model
    assert grid_model.similar_arrays() == {}
