"""Biased matrix factorization (Koren, Bell and Volinsky 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mfrec.models.base import SPARSE_OPTIMIZERS, RatingConfig, RatingModel, StepConfig, embedding
from mfrec.options import option

ENGINES = ("torch", "compiled")


def compiled_relevant(config) -> tuple[str, ...]:
    """The compiled engine is plain per-rating SGD: no optimizer choice, no batches."""
    skip = ("optimizer", "batch_size") if config.engine == "compiled" else ()
    return tuple(name for name in config.names() if name not in skip)


@dataclass(frozen=True)
class BiasedConfig(RatingConfig, StepConfig):
    """Hyperparameters of :class:`BiasedMF` (the ``default`` preset's values)."""

    bias_regularization: float = option(0.0, "L2 weight on the biases", check="nonneg", probe=5.0)
    engine: str = option("torch", "torch (CPU or GPU) or compiled (numba, CPU): autograd or per-rating SGD for "
                         "MF, batched or compiled conditionals for Gibbs; auto (implicit ALS's and Bayesian MF's "
                         "default) is compiled on the CPU and torch on a GPU",
                         choices=ENGINES, probe="compiled")  # fmt: skip

    relevant = compiled_relevant


class BiasedMF(RatingModel):
    r"""Global mean, user and item biases, and a dot product.

    .. math::  \hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i

    trained on the regularized squared error, per mini-batch :math:`B`,

    .. math::  L = \frac{1}{|B|}\sum_{(u,i)\in B} (r_{ui} - \hat r_{ui})^2
               + \lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2)
               + \lambda_b (b_u^2 + b_i^2)

    (each parameter is penalised once per rating it takes part in, as in
    Funk/Surprise SGD). :math:`\mu` is fixed to the mean training target.
    A user absent from training contributes neither :math:`b_u` nor
    :math:`p_u`, so its prediction is :math:`\mu + b_i`; likewise for items.
    """

    has_user_bias = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int,
        *,
        init_std: float = 0.1,
        sparse: bool = False,
        sparse_bias: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_users, n_items)
        self.user_embedding = embedding(n_users, embedding_dim, init_std, generator, sparse)
        self.item_embedding = embedding(n_items, embedding_dim, init_std, generator, sparse)
        # Under DDP the bias tables must be dense (sparse_bias=False): sparse one-column
        # tables received wrong gradients there. Alone, they follow ``sparse``.
        sparse_bias = sparse if sparse_bias is None else sparse_bias
        self.user_bias = embedding(n_users, 1, 0.0, None, sparse_bias)
        self.item_bias = embedding(n_items, 1, 0.0, None, sparse_bias)

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> BiasedMF:
        sparse = config.optimizer in SPARSE_OPTIMIZERS
        return cls(n_users, n_items, config.embedding_dim, init_std=config.init_std, generator=generator,
                   sparse=sparse, sparse_bias=False if distributed else None)  # fmt: skip

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users, items, ku, ki = known(self, users, items)
        bu = self.user_bias(users).squeeze(-1) * ku
        bi = self.item_bias(items).squeeze(-1) * ki
        dot = (self.user_embedding(users) * self.item_embedding(items)).sum(-1) * (ku & ki)
        return self.global_mean + bu + bi + dot

    def bias_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.user_bias(users).squeeze(-1).pow(2) + self.item_bias(items).squeeze(-1).pow(2)

    def score(self, bias: torch.Tensor, factors: torch.Tensor, known_user: torch.Tensor) -> torch.Tensor:
        # unknown rows are zero after training (zero_unknown_rows), so no masks are needed here
        offsets = (self.global_mean + bias)[:, None]
        return torch.addmm(self.item_bias.weight.T, factors, self.item_embedding.weight.T).add_(offsets)

    def item_offsets(self) -> torch.Tensor:
        return self.global_mean + self.item_bias.weight.squeeze(-1) * self.item_known


def known(model, users: torch.Tensor, items: torch.Tensor):
    """Clamp index ``-1`` (an id the model never saw) to row 0 and say which rows are known.

    Returns ``(users, items, user_known, item_known)``; a ``-1`` index is unknown.
    """
    users_ok, items_ok = users >= 0, items >= 0
    users, items = users.clamp(min=0), items.clamp(min=0)
    return users, items, model.user_known[users] & users_ok, model.item_known[items] & items_ok
