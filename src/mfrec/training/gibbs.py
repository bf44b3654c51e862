"""Gibbs sampling for :class:`~mfrec.models.bayesian.BayesianMF`.

One epoch is one sweep: user hyperparameters, every user vector, item
hyperparameters, every item vector. After ``burn_in`` sweeps, ``samples`` sweeps
spread evenly over the rest are kept in the module (see its docstring); the
history's validation RMSE is that of the running posterior-mean prediction.
All randomness comes from the run's generator (torch for the vectors, a numpy
generator seeded from it for the small hyperparameter draws).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from mfrec.config import TrainConfig
from mfrec.models.bayesian import BayesianMF, sample_hyperparameters, sample_side
from mfrec.models.normal_equations import RowIndex
from mfrec.training.loop import EarlyStopping, EpochRecord, _bar, _done, _finish


def fit_gibbs(
    module: BayesianMF,
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    config: TrainConfig,
    *,
    scale: tuple[float, float],
    generator: torch.Generator,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[list[EpochRecord], int]:
    """Sample ``config.epochs`` sweeps and keep ``config.samples`` of them in ``module`` (on the data's device)."""
    users, items, targets = train
    device = targets.device
    mu = float(module.global_mean)
    residuals = targets.double() - mu
    by_user = RowIndex(users, items, residuals, module.n_users)
    by_item = RowIndex(items, users, residuals, module.n_items)
    k, kept_total = config.embedding_dim, config.samples
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    x = (torch.randn(module.n_users, k, generator=generator, dtype=torch.float64) * config.init_std).to(device)
    y = (torch.randn(module.n_items, k, generator=generator, dtype=torch.float64) * config.init_std).to(device)
    keep = set(np.linspace(config.burn_in + 1, config.epochs, kept_total).round().astype(int).tolist())
    weight = 1.0 / math.sqrt(kept_total)
    val_sum = None if val is None else torch.zeros(len(val[2]), dtype=torch.float64, device=device)
    truth = None if val is None else val[2].double() * config.rating_divisor
    averaged = 0
    kept_x, kept_y = module.sample_tables(k)
    free = 0  # the first free column of the sample tables
    history: list[EpochRecord] = []
    stopper = EarlyStopping(module, 0)
    slot = 0
    bar = _bar(config, progress)
    for epoch in bar:
        started = time.perf_counter()
        mean_x, precision = sample_hyperparameters(rng, x.cpu().numpy())
        x = sample_side(generator, by_user, y, mean_x, precision, config.noise_precision)
        mean_y, precision = sample_hyperparameters(rng, y.cpu().numpy())
        y = sample_side(generator, by_item, x, mean_y, precision, config.noise_precision)
        train_rmse = math.sqrt(_mse(x, y, users, items, residuals)) * config.rating_divisor
        val_rmse = None
        if val is not None:
            current = mu + _dots(x, y, val[0], val[1])
            if epoch > config.burn_in:
                averaged += 1
                val_sum += current
                current = val_sum / averaged
            val_rmse = float(torch.sqrt(((current * config.rating_divisor).clamp(*scale) - truth).pow(2).mean()))
        if epoch in keep and slot < kept_total:
            # a user or item without ratings keeps its prior mean, E[x] = mu_X, not a random draw
            x_kept, y_kept = x.clone(), y.clone()
            x_kept[~module.user_known] = torch.as_tensor(mean_x, device=device)
            y_kept[~module.item_known] = torch.as_tensor(mean_y, device=device)
            if free + k > kept_x.shape[1]:  # full: fold what is there into posterior_rank columns
                free = module.fold_samples(kept_x, kept_y)
            kept_x[:, free : free + k] = (x_kept * weight).float()
            kept_y[:, free : free + k] = (y_kept * weight).float()
            free += k
            slot += 1
        record = EpochRecord(epoch, train_rmse, val_rmse, time.perf_counter() - started)
        history.append(record)
        _finish(record, bar, on_epoch)
        stopper.update(record)
    bar.close()
    module.compress(kept_x, kept_y)
    return _done(module, history, stopper)


def _dots(x: torch.Tensor, y: torch.Tensor, users: torch.Tensor, items: torch.Tensor, chunk: int = 1 << 18):
    """``(x[users] * y[items]).sum(1)`` in float32 slices (returned as float64): no (n, k) product is ever whole."""
    x, y = x.float(), y.float()
    out = torch.empty(len(users), dtype=torch.float64, device=x.device)
    for first in range(0, len(users), chunk):
        last = first + chunk
        out[first:last] = (x[users[first:last]] * y[items[first:last]]).sum(1)
    return out


def _mse(x: torch.Tensor, y: torch.Tensor, users: torch.Tensor, items: torch.Tensor, residuals: torch.Tensor) -> float:
    """Mean squared error of the current sample on the training residuals."""
    return float((_dots(x, y, users, items) - residuals).pow(2).mean())
