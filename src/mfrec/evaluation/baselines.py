"""Baselines every model must beat: the global mean and regularized biases."""

from __future__ import annotations

import numpy as np

from mfrec.data.ratings import Ratings


class GlobalMean:
    r"""Predicts :math:`\hat r_{ui} = \mu`, the mean training rating."""

    def fit(self, train: Ratings) -> GlobalMean:
        self.mean_ = float(np.mean(train.ratings, dtype=np.float64))
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.mean_)


class BiasBaseline:
    r"""Regularized biases: :math:`\hat r_{ui} = \mu + b_u + b_i`.

    Fitted by alternating least squares on
    :math:`\sum (r_{ui} - \mu - b_u - b_i)^2 + \lambda_u \sum b_u^2 + \lambda_i \sum b_i^2`:

    .. math::  b_i = \frac{\sum_{u \in R(i)} (r_{ui} - \mu - b_u)}{\lambda_i + |R(i)|}, \quad
               b_u = \frac{\sum_{i \in R(u)} (r_{ui} - \mu - b_i)}{\lambda_u + |R(u)|}

    (Surprise's BaselineOnly defaults: λ_i = 10, λ_u = 15, 10 sweeps). Users and
    items without training ratings get bias 0.
    """

    def __init__(self, user_reg: float = 15.0, item_reg: float = 10.0, sweeps: int = 10) -> None:
        self.user_reg = user_reg
        self.item_reg = item_reg
        self.sweeps = sweeps

    def fit(self, train: Ratings) -> BiasBaseline:
        r = train.ratings.astype(np.float64)
        self.mean_ = float(r.mean())
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        nu = np.bincount(train.users, minlength=train.n_users)
        ni = np.bincount(train.items, minlength=train.n_items)
        for _ in range(self.sweeps):
            resid = r - self.mean_ - bu[train.users]
            bi = np.bincount(train.items, resid, minlength=train.n_items) / (self.item_reg + ni)
            resid = r - self.mean_ - bi[train.items]
            bu = np.bincount(train.users, resid, minlength=train.n_users) / (self.user_reg + nu)
        self.user_bias_, self.item_bias_ = bu, bi
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predictions for index pairs; index ``-1`` (unknown) contributes no bias."""
        users = np.asarray(users)
        items = np.asarray(items)
        bu = np.where(users >= 0, self.user_bias_[np.maximum(users, 0)], 0.0)
        bi = np.where(items >= 0, self.item_bias_[np.maximum(items, 0)], 0.0)
        return self.mean_ + bu + bi
