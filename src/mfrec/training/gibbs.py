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

import numpy as np
import torch

from mfrec.models.bayesian import BayesianMF, sample_hyperparameters, sample_side
from mfrec.models.normal_equations import RowIndex
from mfrec.training.trainer import BaseTrainer, EpochRecord, TrainingData, generator_states, load_generator_states


class GibbsTrainer(BaseTrainer):
    """One sweep per epoch; the state (current sample, kept tables, running sums, both generators) checkpoints
    exactly, so a resumed chain continues as if it had never stopped."""

    def __init__(self, module: BayesianMF, config, data: TrainingData, generator: torch.Generator,
                 options=None) -> None:  # fmt: skip
        self.module, self.config, self.data, self.generator = module, config, data, generator
        self.epochs = config.epochs
        users, items, targets = data.train
        device = targets.device
        self.mu = float(module.global_mean)
        self.residuals = targets.double() - self.mu
        self.by_user = RowIndex(users, items, self.residuals, module.n_users)
        self.by_item = RowIndex(items, users, self.residuals, module.n_items)
        k = config.embedding_dim
        self.rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        self.x = (torch.randn(module.n_users, k, generator=generator, dtype=torch.float64) * config.init_std).to(device)
        self.y = (torch.randn(module.n_items, k, generator=generator, dtype=torch.float64) * config.init_std).to(device)
        self.keep = set(np.linspace(config.burn_in + 1, config.epochs, config.samples).round().astype(int).tolist())
        self.weight = 1.0 / math.sqrt(config.samples)
        self.val_sum = torch.zeros(len(data.val[2]), dtype=torch.float64, device=device) if data.has_val else None
        self.averaged = 0  # sweeps in val_sum
        self.kept_x, self.kept_y = module.sample_tables(k)
        self.free = 0  # the first free column of the sample tables
        self.slot = 0  # samples kept so far

    def epoch(self, epoch: int) -> EpochRecord:
        config, data, module = self.config, self.data, self.module
        mean_x, precision = sample_hyperparameters(self.rng, self.x.cpu().numpy())
        self.x = sample_side(self.generator, self.by_user, self.y, mean_x, precision, config.noise_precision)
        mean_y, precision = sample_hyperparameters(self.rng, self.y.cpu().numpy())
        self.y = sample_side(self.generator, self.by_item, self.x, mean_y, precision, config.noise_precision)
        users, items, _ = data.train
        train_rmse = math.sqrt(_mse(self.x, self.y, users, items, self.residuals)) * data.divisor
        val_rmse = None
        if data.has_val:
            current = self.mu + _dots(self.x, self.y, data.val[0], data.val[1])
            if epoch > config.burn_in:  # the running posterior-mean prediction
                self.averaged += 1
                self.val_sum += current
                current = self.val_sum / self.averaged
            truth = data.val[2].double() * data.divisor
            val_rmse = float(torch.sqrt(((current * data.divisor).clamp(*data.scale) - truth).pow(2).mean()))
        if epoch in self.keep and self.slot < config.samples:
            # a user or item without ratings keeps its prior mean, E[x] = mu_X, not a random draw
            device = self.x.device
            x_kept, y_kept = self.x.clone(), self.y.clone()
            x_kept[~module.user_known] = torch.as_tensor(mean_x, device=device)
            y_kept[~module.item_known] = torch.as_tensor(mean_y, device=device)
            k = config.embedding_dim
            if self.free + k > self.kept_x.shape[1]:  # full: fold what is there into posterior_rank columns
                self.free = module.fold_samples(self.kept_x, self.kept_y)
            self.kept_x[:, self.free : self.free + k] = (x_kept * self.weight).float()
            self.kept_y[:, self.free : self.free + k] = (y_kept * self.weight).float()
            self.free += k
            self.slot += 1
        return EpochRecord(epoch, train_rmse, val_rmse)

    def state(self):
        tensors = {"x": self.x, "y": self.y, "kept_x": self.kept_x, "kept_y": self.kept_y,
                   **generator_states({"sampler": self.generator})}  # fmt: skip
        if self.val_sum is not None:
            tensors["val_sum"] = self.val_sum
        counters = {"averaged": self.averaged, "free": self.free, "slot": self.slot,
                    "rng": self.rng.bit_generator.state}  # fmt: skip
        return tensors, counters

    def load_state(self, tensors, meta) -> None:
        device = self.x.device
        self.x, self.y = tensors["x"].to(device), tensors["y"].to(device)
        self.kept_x, self.kept_y = tensors["kept_x"].to(device), tensors["kept_y"].to(device)
        if self.val_sum is not None:
            self.val_sum = tensors["val_sum"].to(device)
        load_generator_states({"sampler": self.generator}, tensors)
        self.averaged, self.free, self.slot = int(meta["averaged"]), int(meta["free"]), int(meta["slot"])
        self.rng.bit_generator.state = meta["rng"]

    def finish(self) -> None:
        self.module.compress(self.kept_x, self.kept_y)


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
