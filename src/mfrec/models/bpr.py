"""Bayesian personalized ranking (Rendle et al. 2009)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mfrec.models.base import FactorModel, embedding


class BPR(FactorModel):
    r"""Pairwise ranking with matrix factorization.

    .. math::  s_{ui} = p_u^\top q_i + b_i

    trained on triples :math:`(u, i, j)` (``i`` observed for ``u``, ``j`` drawn
    uniformly from the known items) by minimising, per mini-batch :math:`B`,

    .. math::  L = -\frac{1}{|B|}\sum_{(u,i,j)\in B} \log\sigma(s_{ui} - s_{uj})
               + \lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2 + \lVert q_j\rVert^2 + b_i^2 + b_j^2).

    Scores have no unit; they order items. The fold-in of a new user uses the
    implicit-ALS least-squares solve against the fixed item factors.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int,
        *,
        init_std: float = 0.01,
        sparse: bool = False,
        generator: torch.Generator | None = None,
        **_,
    ) -> None:
        super().__init__(n_users, n_items)
        self.user_embedding = embedding(n_users, embedding_dim, init_std, generator, sparse)
        self.item_embedding = embedding(n_items, embedding_dim, init_std, generator, sparse)
        self.item_bias = embedding(n_items, 1, 0.0, None, sparse)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user_embedding(users) * self.item_embedding(items)).sum(-1) + self.item_bias(items).squeeze(-1)

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, reg: float):
        """``(sum of -log σ(s_ui - s_uj), sum of the penalty)`` over the batch."""
        p = self.user_embedding(users)
        qi, qj = self.item_embedding(positives), self.item_embedding(negatives)
        bi, bj = self.item_bias(positives).squeeze(-1), self.item_bias(negatives).squeeze(-1)
        margin = (p * (qi - qj)).sum(-1) + bi - bj
        ranking = -F.logsigmoid(margin).sum()
        penalty = (p.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1) + bi.pow(2) + bj.pow(2)).sum()
        return ranking, reg * penalty

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_embedding(users) @ self.item_embedding.weight.T + self.item_bias.weight.squeeze(-1)

    def item_factors(self) -> torch.Tensor:
        return self.item_embedding.weight
