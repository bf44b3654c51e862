"""Ranking metrics: hand-computed cases, properties, and the batched protocol."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mfrec.data import Ratings
from mfrec.evaluation.ranking import METRICS, evaluate_ranking, per_user_metrics, ranking_metrics_from_lists


def test_hand_computed_case():
    # list [a, b, c], relevant {a, c, z}: hits at ranks 1 and 3
    m = ranking_metrics_from_lists(np.array([["a", "b", "c"]]), [{"a", "c", "z"}], k=3)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["precision"][0] == pytest.approx(2 / 3)
    assert m["recall"][0] == pytest.approx(2 / 3)
    assert m["ndcg"][0] == pytest.approx(dcg / idcg)
    assert m["map"][0] == pytest.approx((1 + 2 / 3) / 3)
    assert m["hit_rate"][0] == 1.0 and m["mrr"][0] == 1.0


def test_idcg_and_map_use_min_of_relevant_and_k():
    m = ranking_metrics_from_lists(np.array([["x", "a"]]), [{"a"}], k=2)
    assert m["ndcg"][0] == pytest.approx((1 / math.log2(3)) / 1.0)
    assert m["map"][0] == pytest.approx(0.5)  # precision@2 = 1/2, divided by min(1, 2)
    assert m["mrr"][0] == pytest.approx(0.5)


@given(
    hits=st.lists(st.lists(st.booleans(), min_size=5, max_size=5), min_size=1, max_size=20),
    extra=st.lists(st.integers(0, 10), min_size=20, max_size=20),
)
def test_every_metric_is_in_unit_interval(hits, extra):
    hits = np.array(hits)
    n_rel = hits.sum(1) + np.array(extra[: len(hits)])
    n_rel = np.maximum(n_rel, 1)
    m = per_user_metrics(hits, n_rel, 5)
    for name in METRICS:
        assert np.all((m[name] >= 0) & (m[name] <= 1 + 1e-12)), name


@given(st.integers(1, 12), st.integers(1, 10))
def test_a_perfect_ranking_scores_one(n_relevant, k):
    hits = np.zeros((1, k), dtype=bool)
    hits[0, : min(n_relevant, k)] = True
    m = per_user_metrics(hits, np.array([n_relevant]), k)
    for name in ("ndcg", "map", "hit_rate", "mrr"):
        assert m[name][0] == pytest.approx(1.0)
    assert m["precision"][0] == pytest.approx(min(n_relevant, k) / k)


def checkerboard(n=6):
    """User u rated every item except u and u+n; item u is relevant to user u in test."""
    users, items = [], []
    for u in range(n):
        for i in range(n):
            if i != u:
                users.append(u)
                items.append(i)
    train = Ratings.from_arrays(np.array(users), np.array(items), np.full(len(users), 3.0))
    test = Ratings.from_arrays(
        np.arange(n), np.arange(n), np.full(n, 5.0), user_map=train.user_map, item_map=train.item_map
    )
    return train, test


def test_protocol_masks_train_items_and_scores_oracle_perfectly():
    train, test = checkerboard()
    n = train.n_users
    oracle = lambda users: torch.eye(n, dtype=torch.float64)[users]  # noqa: E731
    result = evaluate_ranking(oracle, train, test, k=1)
    assert result["ndcg"] == 1.0 and result["precision"] == 1.0 and result["users"] == n
    # an anti-oracle that prefers train items still gets everything right: train items are masked
    anti = lambda users: 1 - torch.eye(n, dtype=torch.float64)[users]  # noqa: E731
    assert evaluate_ranking(anti, train, test, k=1)["ndcg"] == 1.0
    nobody = evaluate_ranking(oracle, train, test, k=1, threshold=5.5)
    # no relevant rating: every mean is undefined (NaN), never a 0 that reads as "missed everything"
    assert nobody["users"] == 0 and all(math.isnan(nobody[name]) for name in METRICS)


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.3)
    ratings = rng.choice([1.0, 3.0, 5.0], len(users))
    data = Ratings.from_arrays(users, items, ratings)
    from mfrec.data import split_ratings

    split = split_ratings(data, "random", seed=0)
    scores = torch.from_numpy(rng.random((data.n_users, data.n_items)))
    fn = lambda u: scores[u]  # noqa: E731
    a = evaluate_ranking(fn, split.train, split.test, chunk_size=3)
    b = evaluate_ranking(fn, split.train, split.test, chunk_size=1000)
    assert a == pytest.approx(b)


@pytest.mark.slow
def test_popularity_matches_the_measured_baseline(ml_split):
    from mfrec.evaluation.ranking import popularity_scores

    r = evaluate_ranking(popularity_scores(ml_split.train), ml_split.train, ml_split.test)
    assert r["users"] == 598
    assert r["ndcg"] == pytest.approx(0.1296, abs=5e-4) and r["recall"] == pytest.approx(0.0934, abs=5e-4)


@given(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=50),
    st.floats(-3, 3, allow_nan=False),
)
def test_rating_metric_properties(values, shift):
    from mfrec.evaluation.metrics import mae, rmse

    actual = np.array(values)
    assert rmse(actual, actual) == 0 and mae(actual, actual) == 0
    predicted = actual + shift
    assert rmse(predicted, actual) == pytest.approx(abs(shift), abs=1e-9)
    noisy = actual + np.linspace(-1, 1, len(actual)) * shift
    assert rmse(noisy, actual) >= mae(noisy, actual) - 1e-12 >= -1e-12


def test_a_user_sample_is_a_seeded_subset_and_the_whole_when_large_enough():
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 50
    users = np.repeat(np.arange(n_users), 6)
    items = np.concatenate([rng.choice(n_items, 6, replace=False) for _ in range(n_users)])
    ratings = rng.choice([1.0, 5.0], len(users))
    data = Ratings.from_arrays(users, items, ratings)
    train, test = data.subset(np.arange(0, len(users), 2)), data.subset(np.arange(1, len(users), 2))
    table = torch.as_tensor(rng.normal(size=(n_users, n_items)))

    def score(u):
        return table[u]

    whole = evaluate_ranking(score, train, test, k=5)
    assert evaluate_ranking(score, train, test, k=5, sample_users=10_000) == whole
    sampled = evaluate_ranking(score, train, test, k=5, sample_users=40, seed=3)
    assert sampled["users"] == 40 < whole["users"]
    assert evaluate_ranking(score, train, test, k=5, sample_users=40, seed=3) == sampled
    assert evaluate_ranking(score, train, test, k=5, sample_users=40, seed=4)["ndcg"] != sampled["ndcg"]


@given(st.integers(0, 10_000), st.floats(0.1, 0.6))
def test_test_pairs_also_in_train_or_excluded_are_not_relevant(seed, overlap):
    """A list never holds a user's train or excluded items, so such a test pair could never be a hit: evaluating
    on ratings that overlap the training data measures exactly the rest (it read as near-zero metrics)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 25, 20
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    data = Ratings.from_arrays(users, items, rng.choice([1.0, 4.0, 5.0], len(users)))
    from mfrec.data import split_ratings

    split = split_ratings(data, "random", seed=seed)
    scores = torch.from_numpy(rng.random((data.n_users, data.n_items)))
    fn = lambda u: scores[u]  # noqa: E731
    held = evaluate_ranking(fn, split.train, split.test, exclude=split.val)
    extra = split.train.subset(np.flatnonzero(rng.random(len(split.train)) < overlap))
    mixed = Ratings(np.r_[split.test.users, extra.users, split.val.users],
                    np.r_[split.test.items, extra.items, split.val.items],
                    np.r_[split.test.ratings, extra.ratings, split.val.ratings], data.user_map, data.item_map)
    both = evaluate_ranking(fn, split.train, mixed, exclude=split.val)
    assert both.keys() == held.keys()
    for name, value in held.items():
        assert (math.isnan(value) and math.isnan(both[name])) or both[name] == pytest.approx(value), name
    only_seen = evaluate_ranking(fn, split.train, split.train)
    assert only_seen["users"] == 0 and all(math.isnan(only_seen[name]) for name in METRICS)


def test_the_csr_lookup_finds_exactly_the_stored_pairs():
    from mfrec.data.csr import build_csr, csr_contains

    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 50, 400), rng.integers(0, 70, 400)
    indptr, indices = build_csr(users, items, 50)
    qu, qi = rng.integers(0, 50, 2000), rng.integers(0, 90, 2000)
    stored = set(zip(users.tolist(), items.tolist(), strict=True))
    assert csr_contains(indptr, indices, qu, qi).tolist() == [(u, i) in stored for u, i in zip(qu, qi, strict=True)]
    assert csr_contains(indptr, indices, [], []).shape == (0,)
