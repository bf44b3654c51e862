"""Implicit ALS: the CG solve matches a direct solve, fold-in is that solve, a block structure is recovered."""

import numpy as np
import pytest
import torch

from mfrec import MatrixFactorization, TrainConfig
from mfrec.data import Ratings
from mfrec.models.base import implicit_fold_in
from mfrec.models.implicit_als import ImplicitALS, _cg_solve


def test_cg_matches_the_closed_form_solution():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 5, 7, 3
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    w = torch.from_numpy(rng.random(len(users)).astype(np.float32))
    config = TrainConfig(model="implicit_als", embedding_dim=k, regularization=0.3, alpha=2.0, cg_steps=k + 5,
                         unobserved_weight=0.7, reg_exponent=0.5)  # fmt: skip
    y = torch.randn(n_items, k)
    x = _cg_solve(torch.zeros(n_users, k), y, torch.from_numpy(users), torch.from_numpy(items), w, config)
    model = ImplicitALS(n_users, n_items, k)
    with torch.no_grad():
        model.item_embedding.weight.copy_(y)
    for u in range(n_users):
        rows = users == u
        yu = y[items[rows]]
        c = 1 + config.alpha * w[rows]
        lam = 0.3 * (rows.sum() + 0.7 * n_items) ** 0.5
        a = 0.7 * y.T @ y + yu.T @ torch.diag(c - 0.7) @ yu + lam * torch.eye(k)
        expected = torch.linalg.solve(a, yu.T @ c)
        torch.testing.assert_close(x[u], expected, rtol=1e-3, atol=1e-4)
        _, folded, _ = implicit_fold_in(model, torch.from_numpy(items[rows]), w[rows], config)
        folded = folded[0]
        torch.testing.assert_close(folded, expected, rtol=1e-4, atol=1e-5)


def blocks():
    """Users 0-9 like items 0-9, users 10-19 like items 10-19; each misses one item of their block."""
    users, items = [], []
    for u in range(20):
        block = range(0, 10) if u < 10 else range(10, 20)
        users += [u] * 9
        items += [i for i in block if i != (u % 10) + (0 if u < 10 else 10)]
    return Ratings.from_arrays(np.array(users), np.array(items), np.ones(len(users)), kind="implicit")


def test_block_structure_is_recovered_by_every_ranking_model():
    data = blocks()
    expected = np.array([u % 10 + (0 if u < 10 else 10) for u in range(20)])
    for kind, options in (
        ("implicit_als", {"embedding_dim": 4, "regularization": 0.1, "epochs": 20}),
        ("bpr", {"embedding_dim": 4, "epochs": 200, "learning_rate": 0.05, "batch_size": 32, "patience": 0}),
    ):
        model = MatrixFactorization(model=kind, device="cpu", seed=1, **options).fit(data)
        recs = model.recommend(np.arange(20), n=1)
        assert np.array_equal(recs.items[:, 0], expected), kind


def test_same_seed_same_factors():
    data = blocks()
    a = MatrixFactorization(model="implicit_als", embedding_dim=2, epochs=3, seed=3, device="cpu").fit(data)
    b = MatrixFactorization(model="implicit_als", embedding_dim=2, epochs=3, seed=3, device="cpu").fit(data)
    assert torch.equal(a.module_.user_embedding.weight, b.module_.user_embedding.weight)


@pytest.mark.parametrize(
    ("kind", "name", "value"),
    [("implicit_als", "embedding_dim", 3), ("implicit_als", "regularization", 5.0), ("implicit_als", "alpha", 4.0),
     ("implicit_als", "epochs", 2), ("implicit_als", "confidence", "binary"),
     ("implicit_als", "unobserved_weight", 0.3),
     ("implicit_als", "reg_exponent", 0.5), ("implicit_als", "cg_steps", 1), ("implicit_als", "init_std", 0.5),
     ("implicit_als", "seed", 9),
     ("bpr", "embedding_dim", 3), ("bpr", "learning_rate", 0.05), ("bpr", "regularization", 0.1), ("bpr", "epochs", 2),
     ("bpr", "batch_size", 16), ("bpr", "optimizer", "sgd"), ("bpr", "init_std", 0.5), ("bpr", "seed", 9)],
)  # fmt: skip
def test_every_ranking_hyperparameter_matters(lowrank, kind, name, value):
    from mfrec.data import split_ratings

    split = split_ratings(lowrank, "random", seed=0)
    base = {"model": kind, "embedding_dim": 4, "epochs": 6, "patience": 0, "device": "cpu", "regularization": 0.5,
            "batch_size": 64, "learning_rate": 0.01, "init_std": 0.1}  # fmt: skip
    if kind == "bpr":
        base["regularization"] = 0.001

    def scores(options):
        model = MatrixFactorization(**options).fit(split.train)
        return model.module_.score_users(torch.arange(model.module_.n_users)).detach()

    assert not torch.allclose(scores(base), scores({**base, name: value}))
