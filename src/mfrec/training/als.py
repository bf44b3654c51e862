"""The explicit-ALS trainer: one closed-form alternating pass per epoch (:class:`~mfrec.models.ExplicitALS`)."""

from __future__ import annotations

import math

from mfrec.models.normal_equations import RowIndex
from mfrec.training.trainer import BaseTrainer, EpochRecord, TrainingData, rating_rmse


class ExplicitALSTrainer(BaseTrainer):
    """Train RMSE is measured after each pass; early stopping on validation RMSE as for every rating model."""

    hint = "try a larger --regularization"

    def __init__(self, module, config, data: TrainingData, generator=None, options=None) -> None:
        self.module, self.config, self.data = module, config, data
        self.epochs = config.epochs
        users, items, targets = data.train
        self.by_user = RowIndex(users, items, targets, module.n_users)
        self.by_item = RowIndex(items, users, targets, module.n_items)

    def epoch(self, epoch: int) -> EpochRecord:
        config, data = self.config, self.data
        self.module.als_iteration(self.by_user, self.by_item, config.regularization, config.bias_regularization)
        train_rmse = rating_rmse(self.module, data.train, data.divisor, (-math.inf, math.inf))
        val_rmse = rating_rmse(self.module, data.val, data.divisor, data.scale) if data.has_val else None
        return EpochRecord(epoch, train_rmse, val_rmse)
