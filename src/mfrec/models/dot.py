"""The notebook's model: one embedding per side and a dot product."""

from __future__ import annotations

import torch

from mfrec.models.base import RatingModel, embedding


class DotMF(RatingModel):
    r"""Plain matrix factorization.

    .. math::  \hat r_{ui} = p_u^\top q_i

    trained on the loss, per mini-batch :math:`B`,

    .. math::  L = \frac{1}{|B|}\sum_{(u,i)\in B} (r_{ui} - \hat r_{ui})^2
               + \lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2)

    with :math:`r` in target units. For a user or item without training
    ratings the prediction is the global training mean :math:`\mu`.

    ``notebook_einsum=True`` reproduces the tutorial notebook's bug:
    ``einsum('bi,bj->b', p, q)`` sums over *both* indices, so the "prediction"
    is :math:`(\sum_k p_{uk})(\sum_k q_{ik})`, not a dot product. It exists only
    to reproduce the notebook's numbers.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int,
        *,
        init_std: float = 0.1,
        sparse: bool = False,
        notebook_einsum: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_users, n_items)
        self.notebook_einsum = notebook_einsum
        self.user_embedding = embedding(n_users, embedding_dim, init_std, generator, sparse)
        self.item_embedding = embedding(n_items, embedding_dim, init_std, generator, sparse)

    def _interaction(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        if self.notebook_einsum:
            return torch.einsum("bi,bj->b", p, q)
        return (p * q).sum(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users, items, ku, ki = self.known(users, items)
        dot = self._interaction(self.user_embedding(users), self.item_embedding(items))
        return torch.where(ku & ki, dot, self.global_mean)

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.user_embedding(users).pow(2).sum(-1) + self.item_embedding(items).pow(2).sum(-1)

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        p = self.user_embedding(users)
        q = self.item_embedding.weight
        scores = torch.outer(p.sum(-1), q.sum(-1)) if self.notebook_einsum else p @ q.T
        known = self.user_known[users][:, None] & self.item_known[None, :]
        return torch.where(known, scores, self.global_mean)

    def item_factors(self) -> torch.Tensor:
        return self.item_embedding.weight
