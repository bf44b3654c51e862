"""What every model shares: its Config base, known-row masks, and the one scoring path.

Scoring goes through two methods and nothing else:

* :meth:`Model.represent` turns user indices into the model's user
  representation (for factor models ``(b_u, p_u, known)``), and
  :meth:`Model.fold_in` makes the same representation for a new user from a
  few (item, value) pairs without retraining;
* :meth:`Model.score` scores every item for a batch of representations.

``score_users`` and ``score_history`` are those two composed, so ``recommend``,
fold-in, evaluation and serving rank with the same function by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from mfrec.options import Options, option

SPARSE_OPTIMIZERS = ("sgd", "sparse_adam", "adagrad")
OPTIMIZERS = ("sgd", "adam", "sparse_adam", "adagrad")
#: Engines of a model whose compiled and torch engines solve the same problem: ``auto`` trains
#: with the compiled engine on the CPU and the torch engine on a GPU.
AUTO_ENGINES = ("auto", "compiled", "torch")


@dataclass(frozen=True)
class ModelConfig(Options):
    """Base of every model's frozen Config: the hyperparameters of one model family."""

    subject: ClassVar[str] = "this model"

    def relevant(self) -> tuple[str, ...]:
        """The fields that shape this configuration's training (all, unless an engine ignores some)."""
        return self.names()


@dataclass(frozen=True)
class FactorConfig(ModelConfig):
    """Hyperparameters every embedding model has."""

    embedding_dim: int = option(64, "factors per user and item", check="positive_int", probe=3)
    epochs: int = option(40, "maximum epochs (sweeps for Gibbs, iterations for ALS)", check="positive_int", probe=3)
    regularization: float = option(0.15, "L2 weight on the factors (see the model's equation)", check="nonneg",
                                   probe=3.0)  # fmt: skip
    init_std: float = option(0.01, "standard deviation of the initial factors", check="nonneg", probe=0.5)


@dataclass(frozen=True)
class RatingConfig(FactorConfig):
    """Hyperparameters every rating model has."""

    rating_divisor: float = option(1.0, "train on rating / this (the notebook uses 5)", check="positive", probe=5.0)


@dataclass(frozen=True)
class StepConfig(ModelConfig):
    """Hyperparameters of models trained by mini-batch gradient steps."""

    optimizer: str = option("adam", "sgd/adagrad: sparse gradients; sparse_adam: Adam on sparse rows; adam: dense",
                            choices=OPTIMIZERS, probe="adagrad")  # fmt: skip
    learning_rate: float = option(0.005, "optimizer step size", check="positive", probe=0.05)
    batch_size: int = option(1024, "ratings per step", check="positive_int", probe=7)


def embedding(rows: int, dim: int, std: float, generator: torch.Generator | None, sparse: bool) -> nn.Embedding:
    """An ``nn.Embedding`` initialised from N(0, std²) with an explicit generator."""
    table = nn.Embedding(rows, dim, sparse=sparse)
    with torch.no_grad():
        if std > 0:
            table.weight.normal_(0.0, std, generator=generator)
        else:
            table.weight.zero_()
    return table


class Model(nn.Module):
    """Base of every model: known-row masks, the global mean, and the scoring path.

    Rows of users or items that had no training data are marked unknown
    (``user_known``/``item_known`` buffers, set before training); unknown items
    are never recommended, and an unknown user scores by what was learned
    without it.
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.register_buffer("global_mean", torch.zeros(()))
        self.register_buffer("user_known", torch.ones(n_users, dtype=torch.bool))
        self.register_buffer("item_known", torch.ones(n_items, dtype=torch.bool))

    @classmethod
    def from_config(cls, n_users: int, n_items: int, config: Any, *, generator: torch.Generator | None = None,
                    distributed: bool = False) -> Model:  # fmt: skip
        """A fresh module for ``config`` (the model's own Config)."""
        raise NotImplementedError

    @classmethod
    def estimated_bytes(cls, n_users: int, n_items: int, config: Any) -> int:
        """Memory a fit needs, roughly: for embedding models, the factor tables four times over
        (parameters, gradients and two optimizer moments) in float32."""
        width = getattr(config, "embedding_dim", 0) * getattr(config, "samples", 1) + 1
        return 16 * (n_users + n_items) * width

    @property
    def n_users(self) -> int:
        return self.user_known.shape[0]

    @property
    def n_items(self) -> int:
        return self.item_known.shape[0]

    @property
    def stored_width(self) -> int:
        """Columns of the stored item representation (the factor width)."""
        return int(self.item_factors().shape[1])

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
        value; afterwards their factors and biases contribute exactly nothing.
        """
        for name, child in self.named_children():
            if isinstance(child, nn.Embedding) and name.startswith(("user_", "item_")):
                known = self.user_known if name.startswith("user_") else self.item_known
                child.weight[~known] = 0.0

    # ------------------------------------------------------- the scoring path
    def represent(self, users: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The representation of trained users (indices), as :meth:`score` takes it."""
        raise NotImplementedError

    def fold_in(self, items: torch.Tensor, values: torch.Tensor, config: Any) -> tuple[torch.Tensor, ...]:
        """The representation of one new user from known ``items`` and their values (targets or weights)."""
        raise NotImplementedError

    def score(self, *representation: torch.Tensor) -> torch.Tensor:
        """Scores of every item for a batch of representations, shape ``(B, n_items)``."""
        raise NotImplementedError

    def explain(self, items: torch.Tensor, values: torch.Tensor, config: Any,
                targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """How each of a new user's ``items`` makes up their score of each of ``targets``.

        Returns ``(base, contributions)``, float64 of shapes ``(T,)`` and ``(T, H)``, with
        ``base + contributions.sum(1)`` equal to ``score_history(items, values, config)[0, targets]``:
        ``base`` is what the target scores with no history, ``contributions[t, h]`` what item ``h``
        adds. Models whose score is not linear in the history raise ``NotImplementedError``.
        """
        raise NotImplementedError

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of ``users`` for every item (predicted targets for rating models), ``(B, n_items)``."""
        return self.score(*self.represent(users))

    def score_history(self, items: torch.Tensor, values: torch.Tensor, config: Any) -> torch.Tensor:
        """Scores of every item, ``(1, n_items)``, for a new user given as (item, value) pairs."""
        return self.score(*self.fold_in(items, values, config))

    def item_factors(self) -> torch.Tensor:
        """The item embedding table, shape ``(n_items, width)``."""
        raise NotImplementedError

    def similarity(self, items: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of ``items`` to every item, ``(len(items), n_items)`` (float64).

        The unit-length factors are kept between calls while the factor tensor is the same object,
        unmodified (its version counter): normalising every item took most of each query's time
        (about 7 of 11 ms at 18,672 items)."""
        factors = self.item_factors()
        kept = self.__dict__.get("_unit_factors")
        if kept is None or kept[0] is not factors or kept[1] != factors._version:
            unit = nn.functional.normalize(factors.detach().double(), dim=1)
            kept = self.__dict__["_unit_factors"] = (factors, factors._version, unit)
        unit = kept[2]
        return unit[items] @ unit.T


class FactorModel(Model):
    """An embedding model whose user representation is ``(b_u, p_u, known)``.

    ``b_u`` is the user bias (zero for models without one), ``p_u`` the factors
    and ``known`` whether the user had training data.
    """

    def represent(self, users: torch.Tensor) -> tuple[torch.Tensor, ...]:
        factors = self.user_embedding.weight[users]
        bias = self.user_bias.weight[users, 0] if hasattr(self, "user_bias") else factors.new_zeros(len(users))
        return bias, factors, self.user_known[users]

    def item_factors(self) -> torch.Tensor:
        return self.item_embedding.weight

    def fold_in(self, items: torch.Tensor, values: torch.Tensor, config: Any) -> tuple[torch.Tensor, ...]:
        return self.fold_in_solve(items, values, config).representation()

    def fold_in_solve(self, items: torch.Tensor, values: torch.Tensor, config: Any) -> RidgeSolve:
        """The linear system a new user's representation solves (:func:`implicit_fold_in` here)."""
        return implicit_fold_in(self, items, values, config)

    def explain(self, items: torch.Tensor, values: torch.Tensor, config: Any,
                targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        r"""The fold-in's decomposition (:meth:`RidgeSolve.explain`): with :math:`x = G^{-1}(\sum_h w_h d_h + p)`
        and a score linear in :math:`x`, item :math:`h` adds :math:`w_h\, e_t^\top G^{-1} d_h` to target
        :math:`t` (as in implicit's ``explain``); the base is the empty history's score plus the prior's part."""
        solve = self.fold_in_solve(items, values, config)
        k = self.item_factors().shape[1]
        empty = self.score(torch.zeros(1), torch.zeros(1, k), torch.ones(1, dtype=torch.bool))[0, targets]
        y = self.item_factors().detach().double()[targets]
        rows = torch.cat([torch.ones(len(targets), 1, dtype=torch.float64), y], 1) if solve.has_bias else y
        return solve.explain(rows, empty.double())


@dataclass(frozen=True)
class RidgeSolve:
    r"""A fold-in's linear system, :math:`G x = \sum_h w_h d_h + p = D^\top w + p`.

    ``gram`` is :math:`G` ``(k, k)``, ``design`` the rows :math:`d_h` ``(H, k)`` of the user's
    items, ``weights`` :math:`w` ``(H,)`` and ``prior`` :math:`p` ``(k,)`` or ``None``, all
    float64. With ``has_bias`` the first entry of :math:`x` is the user bias (and each
    :math:`d_h` starts with a 1).
    """

    gram: torch.Tensor
    design: torch.Tensor
    weights: torch.Tensor
    prior: torch.Tensor | None = None
    has_bias: bool = False

    def solution(self) -> torch.Tensor:
        rhs = self.design.T @ self.weights
        return torch.linalg.solve(self.gram, rhs if self.prior is None else rhs + self.prior)

    def representation(self) -> tuple[torch.Tensor, ...]:
        """``(b_u, p_u, known)`` of the solution, as :meth:`Model.score` takes it."""
        x = self.solution().float()
        bias, factors = (x[:1], x[1:]) if self.has_bias else (torch.zeros(1), x)
        return bias, factors[None, :], torch.ones(1, dtype=torch.bool)

    def explain(self, rows: torch.Tensor, empty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(base, contributions)`` for targets whose score is ``empty + rows @ x``: item :math:`h` adds
        :math:`w_h\, r_t^\top G^{-1} d_h`, and the prior adds :math:`r_t^\top G^{-1} p` to the base."""
        influence = torch.linalg.solve(self.gram, self.design.T)  # G^{-1} D^T, (k, H)
        contributions = (rows @ influence) * self.weights[None, :]
        base = empty if self.prior is None else empty + rows @ torch.linalg.solve(self.gram, self.prior)
        return base, contributions


def implicit_fold_in(model: Model, items: torch.Tensor, weights: torch.Tensor, config: Any) -> RidgeSolve:
    r"""The implicit-ALS user solve against fixed item factors :math:`Y`.

    .. math::  (\alpha_0 Y^\top Y + \sum_{i \in I_u} (c_{ui} - \alpha_0) y_i y_i^\top + \lambda_u I)\, x
               = \sum_{i \in I_u} c_{ui}\, y_i, \qquad c_{ui} = \beta + \alpha w_{ui} / \bar w

    with :math:`\lambda_u = \lambda (|I_u| + \alpha_0 n_{items})^\nu`; exact (a Cholesky-backed
    solve), so for an ALS model it reproduces a trained user's last update. Models
    without the implicit-ALS options (BPR) use :math:`\alpha = 1, \beta = 1, \alpha_0 = 1, \nu = 0`.
    """
    factors = model.item_factors()
    y = factors.detach().double()
    yi = y[items]
    a0 = getattr(config, "unobserved_weight", 1.0)
    if getattr(config, "confidence", "rating") == "binary":
        weights = torch.ones_like(weights)
    scale = getattr(model, "weight_scale", None)
    offset = getattr(model, "confidence_offset", None)  # the model's own: files keep the meaning they trained with
    conf = (1.0 if offset is None else float(offset)) + getattr(config, "alpha", 1.0) * weights.double() * (
        1.0 if scale is None else float(scale))  # fmt: skip
    lam = config.regularization * (len(items) + a0 * len(y)) ** getattr(config, "reg_exponent", 0.0)
    key = (factors.data_ptr(), factors._version)
    cached = getattr(model, "_item_gram", None)
    if cached is None or cached[0] != key:  # Y^T Y is shared by every fold-in until the factors change
        cached = (key, y.T @ y)
        model._item_gram = cached
    gram = a0 * cached[1] + yi.T @ ((conf - a0)[:, None] * yi) + lam * torch.eye(y.shape[1], dtype=torch.float64)
    return RidgeSolve(gram, yi, conf)


class RatingModel(FactorModel):
    """Base of the rating models: predictions in *target units* (ratings / ``rating_divisor``)."""

    #: True when the prediction has a user bias (the fold-in solves for it)
    has_user_bias = False

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def item_offsets(self) -> torch.Tensor:
        """The part of every item's prediction that does not depend on the user, ``(n_items,)``."""
        return torch.zeros(self.n_items, device=self.global_mean.device)

    def fold_in_ridge(self, config, n: int, k: int) -> torch.Tensor:
        """The diagonal ridge of the fold-in solve for ``n`` ratings: the training penalty, ``n`` times."""
        ridge = [max(getattr(config, "bias_regularization", 0.0), 1e-9)] if self.has_user_bias else []
        return n * torch.tensor(ridge + [config.regularization] * k, dtype=torch.float64)

    def bias_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | None:
        """Per-rating L2 penalty of the biases; ``None`` for models without biases."""
        return None

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Per-rating L2 penalty of the factors touched by each (user, item) pair, shape ``(B,)``."""
        return self.user_embedding(users).pow(2).sum(-1) + self.item_embedding(items).pow(2).sum(-1)

    def fold_in_solve(self, items: torch.Tensor, targets: torch.Tensor, config: Any) -> RidgeSolve:
        r"""A new user's bias and factors from their ratings, item side fixed.

        Minimises the training loss restricted to one user,
        :math:`\sum_{i} (t_i - o_i - b_u - p^\top q_i)^2 + n(\lambda \lVert p\rVert^2 + \lambda_b b_u^2)`
        with :math:`o_i` the item offset (:math:`\mu + b_i` for biased models), as one
        regularized least-squares solve (no :math:`b_u` for models without a user bias).
        ``items`` must be known items. In :meth:`explain`, the base is the item's offset
        :math:`o_t` and item :math:`h` adds its residual :math:`t_h - o_h` times its influence.
        """
        q = self.item_factors()[items].detach().double()
        n = len(items)
        residual = targets.double() - self.item_offsets()[items].double()
        design = torch.cat([torch.ones(n, 1, dtype=torch.float64), q], dim=1) if self.has_user_bias else q
        gram = design.T @ design + torch.diag(self.fold_in_ridge(config, n, q.shape[1]).clamp_min(1e-9))
        return RidgeSolve(gram, design, residual, None, self.has_user_bias)
