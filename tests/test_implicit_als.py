"""Implicit ALS: the CG solve matches a direct solve, fold-in is that solve, a block structure is recovered."""

import numpy as np
import torch

from mfrec import TrainConfig
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
