"""Explicit ALS: biased matrix factorization solved in closed form (Zhou et al. 2008, with biases)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mfrec.models.base import RatingConfig
from mfrec.models.biased import BiasedMF
from mfrec.models.normal_equations import RowIndex, row_systems
from mfrec.options import option


@dataclass(frozen=True)
class ALSConfig(RatingConfig):
    """Hyperparameters of :class:`ExplicitALS` (the ``als`` preset's values)."""

    embedding_dim: int = RatingConfig.default("embedding_dim", 32)
    epochs: int = RatingConfig.default("epochs", 50)
    regularization: float = RatingConfig.default("regularization", 0.2)
    bias_regularization: float = option(10.0, "L2 weight on the biases", check="nonneg", probe=0.5)


class ExplicitALS(BiasedMF):
    r"""Biased MF, :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`, fitted by alternating least squares.

    It minimises the squared error with weighted-:math:`\lambda` regularization of the
    factors (each row's penalty grows with its number of ratings :math:`n_u`, as in Zhou
    et al. 2008, "Large-scale parallel collaborative filtering for the Netflix Prize")
    and a damping constant :math:`\lambda_b` on the biases (as baseline predictors do:
    a bias from few ratings is shrunk towards zero, one from many is not):

    .. math::  \sum_{(u,i)} (r_{ui} - \mu - b_u - b_i - p_u^\top q_i)^2
               + \sum_u (n_u \lambda \lVert p_u\rVert^2 + \lambda_b b_u^2)
               + \sum_i (n_i \lambda \lVert q_i\rVert^2 + \lambda_b b_i^2).

    With the items fixed, every user's :math:`\tilde x_u = (b_u, p_u)` solves one
    :math:`(k+1)`-dimensional linear system, with :math:`\tilde y_i = (1, q_i)`:

    .. math::  \Big(\sum_{i \in I_u} \tilde y_i \tilde y_i^\top
               + \mathrm{diag}(\lambda_b, n_u\lambda, \dots, n_u\lambda)\Big)\,\tilde x_u
               = \sum_{i \in I_u} (r_{ui} - \mu - b_i)\, \tilde y_i,

    and likewise for the items. Every row is solved at once by batched Cholesky
    (the Gram matrices come from :func:`mfrec.models.normal_equations.row_systems`, in
    bounded slices). :math:`\mu` is the mean training target. Each iteration
    lowers the objective, so no learning rate is needed.
    """

    def __init__(self, n_users: int, n_items: int, embedding_dim: int, **kwargs) -> None:
        kwargs.pop("sparse", None)
        super().__init__(n_users, n_items, embedding_dim, **kwargs)
        self.requires_grad_(False)

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> ExplicitALS:
        return cls(n_users, n_items, config.embedding_dim, init_std=config.init_std, generator=generator)

    @torch.no_grad()
    def als_iteration(self, by_user: RowIndex, by_item: RowIndex, regularization: float, bias_regularization: float):
        """One alternating pass: every user against the fixed items, then every item against the users."""
        mu = self.global_mean
        p, q = self.user_embedding.weight, self.item_embedding.weight
        bu, bi = self.user_bias.weight[:, 0], self.item_bias.weight[:, 0]
        b, x = _solve_side(by_user, q, bi, mu, regularization, bias_regularization)
        bu.copy_(b)
        p.copy_(x)
        b, x = _solve_side(by_item, p, bu, mu, regularization, bias_regularization)
        bi.copy_(b)
        q.copy_(x)


def _solve_side(index: RowIndex, factors, biases, mu, regularization: float, bias_regularization: float):
    """Biases and factors of every row of one side, the other side fixed (see :class:`ExplicitALS`)."""
    n_rows, k = index.n_rows, factors.shape[1]
    device = factors.device
    other = torch.cat([torch.ones(len(factors), 1, device=device, dtype=factors.dtype), factors], 1)
    targets = index.values - mu - biases[index.cols.long()]  # r - mu - (the other side's bias), row order
    solution = torch.zeros(n_rows, k + 1, dtype=torch.float64, device=device)
    for rows, gram, rhs in row_systems(index, other, targets):
        ridge = torch.empty(len(rows), k + 1, dtype=torch.float64, device=device)
        ridge[:, 0] = max(float(bias_regularization), 1e-6)  # a damping constant on the bias
        ridge[:, 1:] = (index.counts[rows].clamp(min=1).double() * max(float(regularization), 1e-6))[:, None]
        system = gram + torch.diag_embed(ridge)
        solution[rows] = torch.cholesky_solve(rhs[:, :, None], torch.linalg.cholesky(system))[:, :, 0]
    solution = solution.to(factors.dtype)
    return solution[:, 0], solution[:, 1:]
