"""The Gibbs-sampled model predicts ids it never saw from what it learned, as the other rating models do."""

import numpy as np
import pytest

from mfrec import MatrixFactorization
from mfrec.models import registry
from tests.conftest import low_rank_ratings


@pytest.fixture(scope="module")
def fitted():
    data = low_rank_ratings(80, 40)
    held_out = np.isin(data.users, np.arange(8))  # eight users the model never sees
    train = data.subset(np.flatnonzero(~held_out))
    quick = registry.get("bayesian").quick
    model = MatrixFactorization(model="bayesian", device="cpu", seed=1, **quick).fit(train)
    return model, data, held_out


def test_a_new_user_gets_each_items_effect_not_one_score(fitted):
    model, data, _ = fitted
    items = data.item_map.ids[:20]
    scores = model.predict(np.full(20, 99_999), items)  # an id in no map
    assert np.unique(np.round(scores, 6)).size > 10  # not the global mean for every item
    module = model.module_
    mean_user = module.user_embedding.weight[module.user_known].mean(0)
    expected = module.global_mean + module.item_embedding.weight[model.item_map_.index(items)] @ mean_user
    np.testing.assert_allclose(scores, np.clip(expected.numpy(), 0.5, 5.0), rtol=1e-5)


def test_cold_users_are_predicted_as_well_as_by_the_biased_model(fitted):
    model, data, held_out = fitted
    rows = np.flatnonzero(held_out)
    items = data.item_map.raw(data.items[rows])
    truth = data.ratings[rows]

    def rmse(predicted):
        return float(np.sqrt(np.mean((predicted - truth) ** 2)))

    train = data.subset(np.flatnonzero(~held_out))
    biased = MatrixFactorization(model="biased", device="cpu", seed=1, **registry.get("biased").quick).fit(train)
    new_users = np.full(len(rows), 99_999)
    ours, theirs = rmse(model.predict(new_users, items)), rmse(biased.predict(new_users, items))
    mean = rmse(np.full(len(rows), float(model.module_.global_mean)))
    assert ours < mean and ours <= 1.05 * theirs, (ours, theirs, mean)


def test_a_new_item_gets_each_users_effect(fitted):
    model, data, _ = fitted
    users = data.user_map.ids[8:28]
    scores = model.predict(users, np.full(len(users), 77_777))
    assert np.unique(np.round(scores, 6)).size > 10


def test_compiled_bpmf_conditional_centre_is_the_normal_equations_solve():
    kernels = pytest.importorskip("mfrec.training.gibbs_kernels")
    rng = np.random.default_rng(0)
    n_users, n_items, k = 6, 9, 3
    mask = rng.random((n_users, n_items)) < 0.5
    mask[:, 0] = True
    users, items = np.nonzero(mask)
    targets = rng.normal(0, 1, len(users))
    other = rng.normal(0, 1, (n_items, k))
    a = rng.normal(0, 1, (k, k))
    precision, mean, noise = a @ a.T + np.eye(k), rng.normal(0, 1, k), 1.9
    indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))]
    rows = np.zeros((n_users, k))
    kernels.sample_rating_rows(indptr, items, targets, other, precision @ mean, precision, noise,
                               np.zeros((n_users, k)), rows)  # fmt: skip
    for u in range(n_users):
        v, t = other[items[users == u]], targets[users == u]
        expected = np.linalg.solve(precision + noise * v.T @ v, precision @ mean + noise * v.T @ t)
        np.testing.assert_allclose(rows[u], expected, atol=1e-10)
