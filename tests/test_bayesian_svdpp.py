"""Bayesian SVD++: the compiled conditionals against direct formulas, and what the implicit features add."""

import numpy as np
import pytest
import torch

from mfrec import MatrixFactorization
from mfrec.data import Ratings
from mfrec.models import registry

kernels = pytest.importorskip("mfrec.training.gibbs_kernels")


def _problem(seed=0, n_users=5, n_items=6, k=3):
    """A tiny side: CSR ratings by user, the other side's table (k factors + 2 bias columns)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < 0.6
    mask[:, 0] = True  # every user has a rating
    users, items = np.nonzero(mask)
    targets = rng.normal(0, 1, len(users))
    other = rng.normal(0, 1, (n_items, k + 2))
    other[:, k + 1] = 1.0  # an item's constant meets the user bias column
    indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))]
    return rng, users, items, targets, other, indptr


def test_row_statistics_are_the_gram_and_moment_of_each_row():
    _, users, items, targets, other, indptr = _problem()
    k = other.shape[1] - 2
    free, fixed = np.r_[np.arange(k), k + 1], k  # the item side of the real sampler, on a made-up table
    gram, moment = np.zeros((5, k + 1, k + 1)), np.zeros((5, k + 1))
    kernels.row_statistics(indptr, items, targets, other, free, fixed, gram, moment)
    for u in range(5):
        rows = users == u
        v = other[items[rows]][:, free]
        np.testing.assert_allclose(gram[u], v.T @ v, atol=1e-12)
        np.testing.assert_allclose(moment[u], v.T @ (targets[rows] - other[items[rows], fixed]), atol=1e-12)


def test_sample_rows_centre_is_the_ridge_regression_on_the_residual():
    rng, users, items, targets, other, indptr = _problem(1)
    k = other.shape[1] - 2
    free, fixed = np.arange(k + 1), k + 1
    gram, moment = np.zeros((5, k + 1, k + 1)), np.zeros((5, k + 1))
    kernels.row_statistics(indptr, items, targets, other, free, fixed, gram, moment)
    offset, rows = rng.normal(0, 1, (5, k + 1)), np.zeros((5, k + 1))
    mean, precision, noise = rng.normal(0, 1, k + 1), rng.uniform(0.5, 2, k + 1), 1.7
    kernels.sample_rows(gram, moment, offset, rows, precision * mean, np.diag(precision), noise, np.zeros((5, k + 1)))
    for u in range(5):
        sel = users == u
        v = other[items[sel]][:, free]
        residual = targets[sel] - other[items[sel], fixed] - v @ offset[u]
        expected = np.linalg.solve(noise * v.T @ v + np.diag(precision), noise * v.T @ residual + precision * mean)
        np.testing.assert_allclose(rows[u], expected, atol=1e-10)


def test_sample_features_centre_is_the_exact_conditional_per_rating():
    """The first feature's draw (zero noise) against its conditional built rating by rating."""
    rng, users, items, targets, other, indptr = _problem(2)
    k = other.shape[1] - 2
    m = k + 1
    free, fixed = np.arange(m), k + 1
    gram, moment = np.zeros((5, m, m)), np.zeros((5, m))
    kernels.row_statistics(indptr, items, targets, other, free, fixed, gram, moment)
    n_features = 4
    owns = rng.random((5, n_features)) < 0.7  # user u has implicit feature j
    owns[:, 0] = [True, True, False, True, True]
    weight = 1 / np.sqrt(owns.sum(1))
    features = rng.normal(0, 1, (n_features, m))
    own = rng.normal(0, 1, (5, m))
    total = own + weight[:, None] * (owns @ features)
    feat_users = [np.flatnonzero(owns[:, j]) for j in range(n_features)]
    fptr = np.r_[0, np.cumsum([len(f) for f in feat_users])]
    mean, precision, noise = rng.normal(0, 1, m), rng.uniform(0.5, 2, m), 1.3
    before = features.copy()
    kernels.sample_features(fptr, np.concatenate(feat_users), weight, gram, moment, total, features, mean, precision,
                            noise, np.zeros((n_features, m)))  # fmt: skip
    # feature 0 is drawn first, from the state as it was
    a_rest = own + weight[:, None] * (owns[:, 1:] @ before[1:])
    lhs, rhs = np.diag(precision), precision * mean
    for pos in range(len(users)):
        u, i = users[pos], items[pos]
        if not owns[u, 0]:
            continue
        design = weight[u] * other[i, free]
        residual = targets[pos] - other[i, fixed] - a_rest[u] @ other[i, free]
        lhs = lhs + noise * np.outer(design, design)
        rhs = rhs + noise * design * residual
    np.testing.assert_allclose(features[0], np.linalg.solve(lhs, rhs), atol=1e-10)
    # and the representations follow every draw
    np.testing.assert_allclose(total, own + weight[:, None] * (owns @ features), atol=1e-10)


def grouped_ratings(seed=0, n_users=80, n_items=40, per_user=12, in_train=3, new_items=4):
    """Two taste groups: a user rates mostly its own group's items (high) and some of the other's (low).

    Only ``in_train`` ratings per user are for training (never of the last ``new_items`` items);
    the rest are the pairs to predict. Which items a user rated therefore tells their group, which
    only the implicit features can use. An item's group is its id modulo 2, a user's likewise.
    """
    rng = np.random.default_rng(seed)
    users, items, values, train = [], [], [], []
    for u in range(n_users):
        group = u % 2
        own = rng.choice(np.arange(group, n_items, 2), per_user - 2, replace=False)
        other = rng.choice(np.arange(1 - group, n_items, 2), 2, replace=False)
        chosen = rng.permutation(np.r_[own, other])
        users += [u] * per_user
        items += chosen.tolist()
        values += [4.5 if i % 2 == group else 1.5 for i in chosen]
        train += [j < in_train and i < n_items - new_items for j, i in enumerate(chosen)]
    noisy = np.clip(np.array(values) + rng.normal(0, 0.2, len(users)), 0.5, 5)
    data = Ratings.from_arrays(np.array(users), np.array(items), noisy)
    train = np.array(train)
    return data.subset(np.flatnonzero(train)), data.subset(np.flatnonzero(~train))


def _fit(train, interactions, **overrides):
    settings = {**registry.get("bayesian_svdpp").quick, "epochs": 60, "burn_in": 20, "samples": 30, **overrides}
    return MatrixFactorization(model="bayesian_svdpp", device="cpu", seed=3, **settings).fit(
        train, interactions=interactions
    )


def _rmse(model, ratings):
    users, items = ratings.user_map.raw(ratings.users), ratings.item_map.raw(ratings.items)
    return float(np.sqrt(np.mean((model.predict(users, items) - ratings.ratings) ** 2)))


def test_the_pairs_to_predict_tell_each_users_taste():
    train, test = grouped_ratings()
    with_pairs = _rmse(_fit(train, test), test)
    train_only = _rmse(_fit(train, test, implicit_pairs="train"), test)
    bpmf = MatrixFactorization(model="bayesian", device="cpu", seed=3, embedding_dim=4, epochs=60, burn_in=20,
                               samples=30, posterior_rank=0).fit(train)  # fmt: skip
    assert with_pairs < 0.6 * min(train_only, _rmse(bpmf, test)), (with_pairs, train_only, _rmse(bpmf, test))


def test_an_item_known_only_from_pairs_is_scored_by_who_rated_it():
    train, test = grouped_ratings(seed=1)
    users, new_items = np.arange(80), (36, 37, 38, 39)  # rated by nobody in training

    def gap(model) -> float:
        """How much higher the item's own group of users is scored than the other, averaged over the new items."""
        gaps = []
        for raw_item in new_items:
            assert not model.module_.item_known[model.item_map_.index(np.array([raw_item]))[0]]
            scores = model.predict(users, np.full(len(users), raw_item))
            same = users % 2 == raw_item % 2
            gaps.append(scores[same].mean() - scores[~same].mean())
        return float(np.mean(gaps))

    with_pairs, train_only = gap(_fit(train, test)), gap(_fit(train, test, implicit_pairs="train"))
    assert with_pairs > 0.8 and with_pairs > train_only + 0.6, (with_pairs, train_only)


def test_fold_in_follows_the_ratings_and_starts_from_the_mean_user():
    train, test = grouped_ratings(seed=2)
    model = _fit(train, test)
    likes_even = {raw: (4.5 if raw % 2 == 0 else 1.5) for raw in range(2, 10)}
    scores = model.module_.score(*model.fold_in(likes_even))[0].numpy()
    groups = model.item_map_.raw(np.arange(len(scores))).astype(int) % 2
    assert scores[groups == 0].mean() > scores[groups == 1].mean() + 1.0
    module = model.module_
    mean_user = module.user_embedding.weight[module.user_known].mean(0)
    nothing = module.fold_in(torch.zeros(0, dtype=torch.long), torch.zeros(0), model.config.params)[1][0]
    torch.testing.assert_close(nothing, mean_user)


@pytest.mark.slow
def test_accurate_preset_on_ml_latest_small(ml_split):
    """A shortened chain of the accurate preset already beats BPMF's 0.8497 on the seed-42 split, and the
    test pairs' presence (never their ratings) is what does it."""
    short = {"epochs": 60, "burn_in": 20, "samples": 40}
    model = MatrixFactorization.from_preset("accurate", **short).fit(
        ml_split.train, ml_split.val, interactions=ml_split.test
    )
    rmse = model.evaluate(ml_split.test)["rmse"]
    train_only = MatrixFactorization.from_preset("accurate", implicit_pairs="train", **short).fit(
        ml_split.train, ml_split.val, interactions=ml_split.test
    )
    assert rmse < 0.83, rmse
    assert rmse < train_only.evaluate(ml_split.test)["rmse"] - 0.02
