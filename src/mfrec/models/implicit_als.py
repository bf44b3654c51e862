"""Implicit-feedback ALS (Hu, Koren and Volinsky 2008), solved by batched conjugate gradient."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mfrec.models.base import AUTO_ENGINES, FactorConfig, FactorModel, embedding
from mfrec.options import option

CONFIDENCES = ("rating", "binary")


@dataclass(frozen=True)
class ImplicitALSConfig(FactorConfig):
    """Hyperparameters of :class:`ImplicitALS` (the ``implicit`` preset's values)."""

    embedding_dim: int = FactorConfig.default("embedding_dim", 128)
    epochs: int = FactorConfig.default("epochs", 15, help="ALS iterations")
    regularization: float = FactorConfig.default("regularization", 0.7, probe=1.0)
    alpha: float = option(3.5, "confidence c = offset + alpha * w / mean(w) of an observed pair", check="nonneg",
                          probe=8.0)  # fmt: skip
    confidence_offset: float = option(0.0, "the offset in c = offset + alpha * w / mean(w): 0 makes confidence "
                                      "proportional to the weight (a low rating counts little), 1 is Hu et al.'s "
                                      "c = 1 + alpha * w", check="nonneg", probe=1.0)  # fmt: skip
    confidence: str = option("rating", "what w is: the rating or count (rating) or 1 (binary)", choices=CONFIDENCES,
                             probe="binary")  # fmt: skip
    unobserved_weight: float = option(0.5, "weight of the unobserved pairs", check="nonneg", probe=0.2)
    reg_exponent: float = option(0.5, "scale lambda by (n_u + a0 n)^this (0 = plain lambda)", check="nonneg",
                                 probe=1.0)  # fmt: skip
    cg_steps: int = option(3, "conjugate-gradient steps per half-iteration", check="positive_int", probe=1)
    engine: str = option("auto", "auto (compiled on the CPU, torch on a GPU), compiled (numba per-row solves, "
                         "CPU) or torch (batched, CPU or GPU)", choices=AUTO_ENGINES, probe="torch",
                         same=True)  # fmt: skip


class ImplicitALS(FactorModel):
    r"""Weighted matrix factorization of binary preferences.

    Every (user, item) pair has a preference :math:`p_{ui} = [\text{observed}]`
    and a confidence :math:`c_{ui} = \beta + \alpha\, w_{ui} / \bar w` for observed pairs
    (:math:`w_{ui}` is the rating, a count, or 1; :math:`\bar w` its mean over the training
    pairs, kept as ``weight_scale`` = :math:`1/\bar w`, so that one :math:`\alpha` suits stars,
    counts and binary input alike; :math:`\beta` is ``confidence_offset``: 0, the preset, makes
    confidence proportional to the weight, so a one-star rating counts for little, and 1 is
    Hu et al.'s :math:`1 + \alpha w`) and :math:`\alpha_0` for the
    others. The factors minimise

    .. math::  \sum_{u,i} c_{ui} (p_{ui} - x_u^\top y_i)^2
               + \sum_u \lambda_u \lVert x_u\rVert^2 + \sum_i \lambda_i \lVert y_i\rVert^2

    with :math:`\lambda_u = \lambda (n_u + \alpha_0 n_{items})^\nu` (:math:`\nu = 0`:
    plain :math:`\lambda`, Rendle et al. 2022 for :math:`\nu > 0`), by alternating
    exact minimisation of each side. With the items fixed, user :math:`u` solves

    .. math::  (\alpha_0 Y^\top Y + \sum_{i \in I_u} (c_{ui} - \alpha_0) y_i y_i^\top + \lambda_u I)\, x_u
               = \sum_{i \in I_u} c_{ui}\, y_i,

    and a matrix-vector product costs :math:`O(n_u k)` because :math:`Y^\top Y`
    is shared. A few conjugate-gradient steps warm-started from the previous
    solution (Takács et al. 2011) solve every user at once with scatter-adds over
    the observed pairs only, taken in slices, so memory stays
    :math:`O((n_{users} + n_{items})\,k)` plus one slice. Scores are :math:`x_u^\top y_i`.
    """

    def __init__(
        self, n_users: int, n_items: int, embedding_dim: int, *, init_std: float = 0.01, generator=None, **_
    ) -> None:
        super().__init__(n_users, n_items)
        self.user_embedding = embedding(n_users, embedding_dim, init_std, generator, False)
        self.item_embedding = embedding(n_items, embedding_dim, init_std, generator, False)
        #: 1 / the mean training weight (1 in files written before confidences were scaled)
        self.register_buffer("weight_scale", torch.ones(()))
        #: the offset beta of the confidence (1, Hu et al.'s, in files written before it was an option)
        self.register_buffer("confidence_offset", torch.ones(()))
        self.requires_grad_(False)

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> ImplicitALS:
        return cls(n_users, n_items, config.embedding_dim, init_std=config.init_std, generator=generator)

    def score(self, bias: torch.Tensor, factors: torch.Tensor, known_user: torch.Tensor) -> torch.Tensor:
        return factors @ self.item_embedding.weight.T

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user_embedding.weight[users] * self.item_embedding.weight[items]).sum(-1)

    @torch.no_grad()
    def als_iteration(self, users: torch.Tensor, items: torch.Tensor, weights: torch.Tensor, config) -> None:
        """One alternating pass: all users against fixed items, then all items against fixed users."""
        x, y = self.user_embedding.weight, self.item_embedding.weight
        x.copy_(_cg_solve(x, y, users, items, weights, config))
        y.copy_(_cg_solve(y, x, items, users, weights, config))


def _cg_solve(x, y, rows, cols, weights, config) -> torch.Tensor:
    """``config.cg_steps`` conjugate-gradient steps for every row of ``x`` against fixed ``y``."""
    a0 = config.unobserved_weight
    w = config.alpha * weights
    gram = a0 * (y.T @ y)
    counts = torch.zeros(len(x), device=x.device, dtype=x.dtype).index_add_(0, rows, torch.ones_like(w))
    lam = (config.regularization * (counts + a0 * len(y)) ** config.reg_exponent)[:, None]
    offset = config.confidence_offset
    extra_weight = offset + w - a0  # observed confidence beyond what the gram term already counts
    span = max(1, (1 << 22) // y.shape[1])  # observed pairs per slice: y[cols] is never whole (nnz x k)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        out = v @ gram + lam * v
        for first in range(0, len(rows), span):
            r, y_obs = rows[first : first + span], y[cols[first : first + span]]
            extra = (extra_weight[first : first + span] * (y_obs * v[r]).sum(1))[:, None] * y_obs
            out.index_add_(0, r, extra)
        return out

    b = torch.zeros_like(x)
    for first in range(0, len(rows), span):
        piece = slice(first, first + span)
        b.index_add_(0, rows[piece], (offset + w[piece])[:, None] * y[cols[piece]])
    r = b - matvec(x)
    p = r.clone()
    rs = (r * r).sum(1, keepdim=True)
    for _ in range(config.cg_steps):
        ap = matvec(p)
        step = rs / (p * ap).sum(1, keepdim=True).clamp_min(1e-20)
        x = x + step * p
        r = r - step * ap
        rs_new = (r * r).sum(1, keepdim=True)
        p = r + (rs_new / rs.clamp_min(1e-20)) * p
        rs = rs_new
    return x
