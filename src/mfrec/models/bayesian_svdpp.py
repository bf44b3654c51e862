"""Bayesian SVD++ with implicit user and item features ("flipped" SVD++), sampled by Gibbs.

The factorization machine of Rendle (2012) restricted to what rating data holds:
the user and item ids, and as implicit features the items each user rated and the
users who rated each item (Koren 2008's SVD++ on both sides; Rendle, Zhang and
Koren 2019's "flipped" Bayesian timeSVD++ without time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mfrec.models.base import ModelConfig, RatingConfig, RidgeSolve
from mfrec.models.bayesian import BayesianConfig, BayesianMF
from mfrec.options import option

#: which (user, item) pairs make the implicit features
IMPLICIT_PAIRS = ("all", "train")


@dataclass(frozen=True)
class BayesianSVDppConfig(ModelConfig):
    """Hyperparameters of :class:`BayesianSVDpp` (the ``accurate`` preset's values)."""

    embedding_dim: int = RatingConfig.default("embedding_dim", 16)
    epochs: int = RatingConfig.default("epochs", 200, help="Gibbs sweeps in all", probe=16)
    init_std: float = RatingConfig.default("init_std", 0.1)
    rating_divisor: float = RatingConfig.default("rating_divisor", 1.0)
    burn_in: int = BayesianConfig.default("burn_in", 30)
    samples: int = BayesianConfig.default("samples", 170)
    posterior_rank: int = BayesianConfig.default("posterior_rank", 256)
    implicit_pairs: str = option(
        "all", "implicit features from every known (user, item) pair: train, validation and the pairs to be "
        "predicted, without their ratings ('all'), or from the training ratings only ('train')",
        choices=IMPLICIT_PAIRS, probe="train",
    )  # fmt: skip

    def validate(self) -> None:
        BayesianConfig.validate(self)


class BayesianSVDpp(BayesianMF):
    r"""Bayesian SVD++ with implicit features on both sides, averaged over posterior samples.

    Model, for a rating :math:`r_{ui}` (in target units, ratings / ``rating_divisor``):

    .. math::  r_{ui} \sim \mathcal N\big(\mu + b_u + b_i + (p_u + |N(u)|^{-1/2}\textstyle\sum_{j \in N(u)} y_j)^\top
               (q_i + |N(i)|^{-1/2}\textstyle\sum_{v \in N(i)} z_v),\ \alpha^{-1}\big)

    where :math:`N(u)` are the items user :math:`u` is known to have rated and :math:`N(i)` the users
    known to have rated item :math:`i`, whether or not the rating is in the training set (which pairs
    exist is known when a prediction is asked for; their ratings are not), and :math:`\mu` is the
    mean training rating. The biases ride along as one more column of each side's factors, and each
    implicit feature carries a bias part too (:math:`y_j, z_v \in \mathbb R^{k+1}`, the implicit
    terms of a factorization machine). Priors are Gaussian with a Normal-Gamma hyperprior per
    column, shared by every group (:math:`p, q, y, z`), and :math:`\alpha \sim \Gamma(1, 1)`, so nothing but the
    dimension and the number of sweeps is set by hand.

    Gibbs sampling (:class:`~mfrec.training.gibbs.SVDppGibbsTrainer`) draws, per sweep, the
    hyperparameters, every :math:`p_u` (batched), every :math:`y_j` in turn, then the item side,
    then :math:`\alpha`. What is stored per kept sample is each side's whole representation, so
    the model file, scoring and serving are those of :class:`~mfrec.models.bayesian.BayesianMF`:
    sample tables side by side, compressed to ``posterior_rank`` columns.
    """

    def __init__(self, n_users: int, n_items: int, embedding_dim: int, **kwargs: Any) -> None:
        super().__init__(n_users, n_items, embedding_dim, **kwargs)
        # posterior mean of the noise variance 1/alpha, for the fold-in of new users
        self.register_buffer("noise_variance", torch.ones(()))

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> BayesianSVDpp:
        return cls(n_users, n_items, config.embedding_dim + 2, samples=config.samples,
                   posterior_rank=config.posterior_rank)  # fmt: skip

    @classmethod
    def estimated_bytes(cls, n_users: int, n_items: int, config: Any) -> int:
        """The float64 per-row Gram matrices of both sides, plus the kept sample tables in float32."""
        k = config.embedding_dim + 2
        return 8 * (n_users + n_items) * (k * k + 8 * k) + 4 * (n_users + n_items) * k * config.samples

    def fold_in_solve(self, items: torch.Tensor, targets: torch.Tensor, config: Any) -> RidgeSolve:
        r"""A new user's stored representation :math:`x` from their ratings, the item side fixed.

        Empirical Bayes on the trained users: the prior is :math:`\mathcal N(\bar x, \mathrm{diag}(s^2))`
        with :math:`\bar x` and :math:`s^2` the mean and variance of the trained users' rows, and the
        likelihood :math:`t_i \sim \mathcal N(\mu + x^\top v_i, \sigma^2)` with :math:`\sigma^2` the
        posterior mean noise variance. The result is the posterior mean,
        :math:`(V^\top V/\sigma^2 + \mathrm{diag}(s^{-2}))^{-1}(V^\top (t - \mu)/\sigma^2 + \bar x / s^2)`;
        with no ratings it is :math:`\bar x`, what an unknown id is predicted with.
        """
        users = self.user_embedding.weight[self.user_known].double()
        mean = users.mean(0) if len(users) else torch.zeros(self.stored_width, dtype=torch.float64)
        spread = users.var(0, correction=0).clamp_min(1e-8) if len(users) > 1 else torch.ones_like(mean)
        v = self.item_factors()[items].detach().double()
        noise = float(self.noise_variance)
        gram = v.T @ v / noise + torch.diag(1.0 / spread)
        return RidgeSolve(gram, v, (targets.double() - self.global_mean.double()) / noise, mean / spread)
