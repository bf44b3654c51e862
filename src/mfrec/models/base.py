"""What every factor model shares: known-row masks, the global mean, init, fold-in."""

from __future__ import annotations

import torch
from torch import nn


def embedding(rows: int, dim: int, std: float, generator: torch.Generator | None, sparse: bool) -> nn.Embedding:
    """An ``nn.Embedding`` initialised from N(0, std²) with an explicit generator."""
    table = nn.Embedding(rows, dim, sparse=sparse)
    with torch.no_grad():
        if std > 0:
            table.weight.normal_(0.0, std, generator=generator)
        else:
            table.weight.zero_()
    return table


class FactorModel(nn.Module):
    """Base of every model: users and items as vectors, scores for every item at once.

    Rows of users or items that had no training data are marked unknown
    (``user_known``/``item_known`` buffers, set by the trainer); their
    untrained embeddings never reach a score: the learned parts that exist
    (global mean, the other side's bias) are used instead, and unknown items
    are never recommended.
    """

    #: True when scores include a user and item bias (the explicit fold-in solves for ``b_u``).
    has_bias = False
    #: True for models that predict ratings (RMSE applies); False for ranking-only models.
    predicts_ratings = False

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.register_buffer("global_mean", torch.zeros(()))
        self.register_buffer("user_known", torch.ones(n_users, dtype=torch.bool))
        self.register_buffer("item_known", torch.ones(n_items, dtype=torch.bool))

    @property
    def n_users(self) -> int:
        return self.user_known.shape[0]

    @property
    def n_items(self) -> int:
        return self.item_known.shape[0]

    def mark_known(self, users: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> None:
        """Record which rows have training data and the mean training target."""
        with torch.no_grad():
            self.user_known.zero_()
            self.item_known.zero_()
            self.user_known[users] = True
            self.item_known[items] = True
            self.global_mean.fill_(targets.double().mean().item() if len(targets) else 0.0)
        self.zero_unknown_rows()

    @torch.no_grad()
    def zero_unknown_rows(self) -> None:
        """Zero every ``user_*``/``item_*`` embedding row of an unknown user or item.

        Unknown rows never receive a gradient, so zeroing them changes no trained
        value; afterwards their factors and biases contribute exactly nothing, and
        scoring needs no masks (a user without training data scores by the
        learned item side, an unknown item by the user side).
        """
        for name, child in self.named_children():
            if isinstance(child, nn.Embedding) and name.startswith(("user_", "item_")):
                known = self.user_known if name.startswith("user_") else self.item_known
                child.weight[~known] = 0.0

    def known(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clamp index ``-1`` (an id the model never saw) to row 0 and say which rows are known.

        Returns ``(users, items, user_known, item_known)``; a ``-1`` index is unknown.
        """
        users_ok = users >= 0
        items_ok = items >= 0
        users = users.clamp(min=0)
        items = items.clamp(min=0)
        return users, items, self.user_known[users] & users_ok, self.item_known[items] & items_ok

    def score_users(self, users: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Scores (predicted targets for rating models) of ``users`` for every item, shape ``(B, n_items)``."""
        raise NotImplementedError

    def item_factors(self) -> torch.Tensor:  # pragma: no cover
        """The item embedding table, shape ``(n_items, dim)``."""
        raise NotImplementedError

    def item_biases(self) -> torch.Tensor:
        """Item biases of known items (0 for unknown ones and for models without biases), ``(n_items,)``."""
        return torch.zeros(self.n_items, device=self.global_mean.device)

    def score_vector(self, bias: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """Scores of every item for a user given as ``(b_u, p)``, shape ``(n_items,)``."""
        dot = self.item_factors() @ factors
        if self.has_bias:
            return self.global_mean + bias + self.item_biases() + dot * self.item_known
        return torch.where(self.item_known, dot, self.global_mean)

    def fold_in(self, items: torch.Tensor, values: torch.Tensor, config) -> tuple[torch.Tensor, torch.Tensor]:
        """A new user's ``(bias, factors)`` from their items and ratings (or weights), item side fixed."""
        return implicit_fold_in(self, items, values, config)


def implicit_fold_in(
    model: FactorModel, items: torch.Tensor, weights: torch.Tensor, config
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The implicit-ALS user solve against fixed item factors :math:`Y`.

    .. math::  (\alpha_0 Y^\top Y + \sum_{i \in I_u} (c_{ui} - \alpha_0) y_i y_i^\top + \lambda_u I)\, x
               = \sum_{i \in I_u} c_{ui}\, y_i, \qquad c_{ui} = 1 + \alpha w_{ui}

    with :math:`\lambda_u = \lambda (|I_u| + \alpha_0 n_{items})^\nu`; exact (a Cholesky-backed
    solve), so for an ALS model it reproduces a trained user's last update.
    """
    factors = model.item_factors()
    y = factors.detach().double()
    yi = y[items]
    a0 = config.unobserved_weight
    conf = 1.0 + config.alpha * weights.double()
    lam = config.regularization * (len(items) + a0 * len(y)) ** config.reg_exponent
    key = (factors.data_ptr(), factors._version)
    cached = getattr(model, "_item_gram", None)
    if cached is None or cached[0] != key:  # Y^T Y is shared by every fold-in until the factors change
        cached = (key, y.T @ y)
        model._item_gram = cached
    gram = a0 * cached[1] + yi.T @ ((conf - a0)[:, None] * yi) + lam * torch.eye(y.shape[1], dtype=torch.float64)
    x = torch.linalg.solve(gram, yi.T @ conf)
    return torch.zeros((), dtype=torch.float32), x.float()


class RatingModel(FactorModel):
    """Base of the rating models: predictions in *target units* (ratings / ``rating_divisor``)."""

    predicts_ratings = True

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def bias_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | None:
        """Per-rating L2 penalty of the biases; ``None`` for models without biases."""
        return None

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Per-rating L2 penalty of the parameters touched by each (user, item) pair, shape ``(B,)``."""
        raise NotImplementedError

    def fold_in(self, items: torch.Tensor, targets: torch.Tensor, config) -> tuple[torch.Tensor, torch.Tensor]:
        r"""A new user's bias and factors from their ratings, item side fixed.

        Minimises the training loss restricted to one user,
        :math:`\sum_{i} (t_i - \mu - b_i - b_u - p^\top q_i)^2 + n(\lambda \lVert p\rVert^2 + \lambda_b b_u^2)`
        (no :math:`b_u`, :math:`\mu`, :math:`b_i` terms for models without biases), as
        one regularized least-squares solve. ``items`` must be known items;
        returns ``(b_u, p)`` with ``b_u = 0`` for models without biases.
        """
        regularization, bias_regularization = config.regularization, config.bias_regularization
        q = self.item_factors()[items].detach().double()
        n, k = len(items), q.shape[1]
        if self.has_bias:
            residual = targets.double() - self.global_mean.double() - self.item_biases()[items].double()
            design = torch.cat([torch.ones(n, 1, dtype=torch.float64), q], dim=1)
            penalty = torch.tensor([max(bias_regularization, 1e-9)] + [regularization] * k, dtype=torch.float64)
        else:
            residual, design = targets.double(), q
            penalty = torch.full((k,), regularization, dtype=torch.float64)
        gram = design.T @ design + torch.diag(n * penalty.clamp_min(1e-9))
        solution = torch.linalg.solve(gram, design.T @ residual)
        if self.has_bias:
            return solution[0].float(), solution[1:].float()
        return torch.zeros((), dtype=torch.float32), solution.float()
