"""Bayesian personalized ranking (Rendle et al. 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mfrec.models.base import SPARSE_OPTIMIZERS, FactorConfig, FactorModel, StepConfig, embedding
from mfrec.models.biased import compiled_relevant
from mfrec.options import option


@dataclass(frozen=True)
class BPRConfig(FactorConfig, StepConfig):
    """Hyperparameters of :class:`BPR` (the ``bpr`` preset's values, found on validation NDCG@10).

    The compiled engine is per-triple SGD whose step falls linearly from ``learning_rate``
    to 0 over the epochs (``optimizer`` and ``batch_size`` do not apply); the torch engine
    takes mini-batch steps with ``optimizer``, whose learning rates differ (Adam: about
    0.001, so give ``--learning-rate`` with ``--engine torch``).
    """

    embedding_dim: int = FactorConfig.default("embedding_dim", 128)
    epochs: int = FactorConfig.default("epochs", 100)
    regularization: float = FactorConfig.default("regularization", 0.04, probe=0.5)
    learning_rate: float = StepConfig.default("learning_rate", 0.05)
    batch_size: int = StepConfig.default("batch_size", 2048)
    hard_negatives: int = option(10, "draw this many negatives and train on the one scored highest (dynamic "
                                 "negative sampling; 1 = plain BPR)", check="positive_int", probe=1)  # fmt: skip
    negatives: str = option("uniform", "negatives: uniform over the items a user has not interacted with, or "
                            "popularity (in proportion to interaction counts)", choices=("uniform", "popularity"),
                            probe="popularity")  # fmt: skip
    engine: str = option("compiled", "compiled (numba per-triple SGD, CPU) or torch (mini-batch autograd, CPU or "
                         "GPU)", choices=("compiled", "torch"), probe="torch")  # fmt: skip

    relevant = compiled_relevant


class BPR(FactorModel):
    r"""Pairwise ranking with matrix factorization.

    .. math::  s_{ui} = p_u^\top q_i + b_i

    trained on triples :math:`(u, i, j)` (``i`` observed for ``u``, ``j`` an item
    ``u`` has not interacted with, drawn uniformly or by popularity; of ``hard_negatives``
    draws, the one scored highest: Zhang et al. 2013's dynamic negative sampling) by minimising, per
    mini-batch :math:`B` (the compiled engine: per triple, :math:`|B| = 1`, plain SGD),

    .. math::  L = -\frac{1}{|B|}\sum_{(u,i,j)\in B} \log\sigma(s_{ui} - s_{uj})
               + \lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2 + \lVert q_j\rVert^2 + b_i^2 + b_j^2).

    Scores have no unit; they order items. The fold-in of a new user uses the
    implicit-ALS least-squares solve against the fixed item factors, and its
    scores include the item biases, as a trained user's do.
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

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> BPR:
        return cls(n_users, n_items, config.embedding_dim, init_std=config.init_std, generator=generator,
                   sparse=config.optimizer in SPARSE_OPTIMIZERS)  # fmt: skip

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

    def score(self, bias: torch.Tensor, factors: torch.Tensor, known_user: torch.Tensor) -> torch.Tensor:
        return factors @ self.item_embedding.weight.T + self.item_bias.weight.squeeze(-1)
