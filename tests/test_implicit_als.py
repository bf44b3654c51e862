"""Implicit ALS: the CG solve matches a direct solve, and a block structure is recovered."""

import numpy as np
import torch

from mfrec.models.implicit_als import ImplicitALS


def test_cg_matches_the_closed_form_solution():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 5, 7, 3
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    w = torch.from_numpy(rng.random(len(users)).astype(np.float32))
    model = ImplicitALS(factors=k, regularization=0.3, alpha=2.0, cg_steps=k + 5, unobserved_weight=0.7)
    y = torch.randn(n_items, k)
    x0 = torch.zeros(n_users, k)
    x = model._solve(x0, y, torch.from_numpy(users), torch.from_numpy(items), model.alpha * w)
    for u in range(n_users):
        rows = users == u
        yu = y[items[rows]]
        c = 1 + model.alpha * w[rows]
        a = 0.7 * y.T @ y + yu.T @ torch.diag(c - 0.7) @ yu + 0.3 * torch.eye(k)
        b = yu.T @ c
        torch.testing.assert_close(x[u], torch.linalg.solve(a, b), rtol=1e-3, atol=1e-4)


def test_block_structure_is_recovered():
    # users 0-9 like items 0-9, users 10-19 like items 10-19; each user misses one item of their block
    users, items = [], []
    for u in range(20):
        block = range(0, 10) if u < 10 else range(10, 20)
        for i in block:
            if i != (u % 10) + (0 if u < 10 else 10):
                users.append(u)
                items.append(i)
    u_t, i_t = torch.tensor(users), torch.tensor(items)
    model = ImplicitALS(factors=4, regularization=0.1, alpha=1.0, iterations=20, seed=1)
    model.fit(u_t, i_t, torch.ones(len(users)), 20, 20)
    scores = model.score_users(torch.arange(20))
    scores[u_t, i_t] = -torch.inf  # mask what each user already has
    top = scores.argmax(1)
    expected = torch.tensor([u % 10 + (0 if u < 10 else 10) for u in range(20)])
    assert torch.equal(top, expected)


def test_same_seed_same_factors():
    u, i = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 2])
    a = ImplicitALS(factors=2, seed=3).fit(u, i, torch.ones(4), 3, 3)
    b = ImplicitALS(factors=2, seed=3).fit(u, i, torch.ones(4), 3, 3)
    assert torch.equal(a.user_factors_, b.user_factors_)
