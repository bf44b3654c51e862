"""The notebook's model: one embedding per side and a dot product."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mfrec.models.base import SPARSE_OPTIMIZERS, RatingConfig, RatingModel, RidgeSolve, StepConfig, embedding
from mfrec.models.biased import ENGINES, compiled_relevant, known
from mfrec.options import option


@dataclass(frozen=True)
class DotConfig(RatingConfig, StepConfig):
    """Hyperparameters of :class:`DotMF`; the ``notebook`` preset sets the tutorial's values."""

    notebook_einsum: bool = option(False, "reproduce the notebook's einsum('bi,bj->b') bug", probe=True)
    engine: str = option("torch", "torch (autograd, CPU or GPU) or compiled (per-rating SGD in numba, CPU)",
                         choices=ENGINES, probe="compiled")  # fmt: skip

    relevant = compiled_relevant

    def validate(self) -> None:
        if self.engine == "compiled" and self.notebook_einsum:
            from mfrec.errors import ConfigError

            raise ConfigError("the compiled engine computes a true dot product; drop --notebook-einsum")


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

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> DotMF:
        return cls(n_users, n_items, config.embedding_dim, init_std=config.init_std, generator=generator,
                   sparse=config.optimizer in SPARSE_OPTIMIZERS, notebook_einsum=config.notebook_einsum)  # fmt: skip

    def _interaction(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        if self.notebook_einsum:
            return torch.einsum("bi,bj->b", p, q)
        return (p * q).sum(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users, items, ku, ki = known(self, users, items)
        dot = self._interaction(self.user_embedding(users), self.item_embedding(items))
        return torch.where(ku & ki, dot, self.global_mean)

    def score(self, bias: torch.Tensor, factors: torch.Tensor, known_user: torch.Tensor) -> torch.Tensor:
        q = self.item_embedding.weight
        scores = torch.outer(factors.sum(-1), q.sum(-1)) if self.notebook_einsum else factors @ q.T
        return torch.where(known_user[:, None] & self.item_known[None, :], scores, self.global_mean)

    def fold_in_solve(self, items: torch.Tensor, targets: torch.Tensor, config) -> RidgeSolve:
        if self.notebook_einsum:
            from mfrec.errors import ConfigError

            raise ConfigError("fold-in needs a true dot product; this model reproduces the notebook's einsum")
        return super().fold_in_solve(items, targets, config)
