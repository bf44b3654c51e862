"""Trainers of the ranking models: BPR by sampled triples, implicit ALS by alternating CG solves (torch, or
compiled per-row solves on the CPU).

Both report the validation NDCG@10 (``TrainingData.validate``) for early stopping.
"""

from __future__ import annotations

import numpy as np
import torch

from mfrec.data.csr import csr_arrays
from mfrec.training.compiled import compiled_module
from mfrec.training.sgd import make_optimizer
from mfrec.training.trainer import (
    BaseTrainer,
    EpochRecord,
    TrainingData,
    generator_states,
    load_generator_states,
    load_optimizer_state,
    optimizer_state,
)


class BPRTrainer(BaseTrainer):
    """Each epoch, every observed pair once, with one uniformly drawn known item as its negative.

    Negatives are drawn on the device from a device generator seeded by the run's generator.
    """

    def __init__(self, module, config, data: TrainingData, generator: torch.Generator, options=None) -> None:
        self.module, self.config, self.data, self.generator = module, config, data, generator
        self.epochs = config.epochs
        self.hint = f"try a smaller learning rate than {config.learning_rate:g}"
        device = data.train[0].device
        self.known_items = torch.nonzero(module.item_known).squeeze(1)
        seed = int(torch.randint(2**62, (1,), generator=generator))
        self.negatives = torch.Generator(device=device).manual_seed(seed)
        self.optimizer = make_optimizer(config, module)

    def epoch(self, epoch: int) -> EpochRecord:
        users, items, _ = self.data.train
        n, device, size = len(users), users.device, self.config.batch_size
        self.module.train()
        order = torch.randperm(n, generator=self.generator).to(device)
        draws = torch.randint(len(self.known_items), (n,), generator=self.negatives, device=device)
        negatives = self.known_items[draws]
        total = torch.zeros((), dtype=torch.float64, device=device)
        for first in range(0, n, size):
            batch = order[first : first + size]
            ranking, penalty = self.module.loss(users[batch], items[batch], negatives[first : first + len(batch)],
                                                self.config.regularization)  # fmt: skip
            self.optimizer.zero_grad(set_to_none=True)
            ((ranking + penalty) / len(batch)).backward()
            self.optimizer.step()
            total += ranking.detach()
        self.module.eval()
        return EpochRecord(epoch, train_loss=total.item() / n,
                           val_ndcg=self.data.validate() if self.data.validate else None)  # fmt: skip

    def state(self):
        tensors, meta = optimizer_state(self.optimizer)
        return {**tensors, **generator_states({"shuffle": self.generator, "negatives": self.negatives})}, meta

    def load_state(self, tensors, meta) -> None:
        load_optimizer_state(self.optimizer, tensors, meta, self.data.train[0].device)
        load_generator_states({"shuffle": self.generator, "negatives": self.negatives}, tensors)


class ImplicitALSTrainer(BaseTrainer):
    """One alternating pass per epoch; the weights are the ratings/counts, or 1 (``confidence='binary'``)."""

    def __init__(self, module, config, data: TrainingData, generator=None, options=None) -> None:
        self.module, self.config, self.data = module, config, data
        self.epochs = config.epochs
        values = data.train[2]
        self.weights = (values if config.confidence == "rating" else torch.ones_like(values)).to(torch.float32)

    def epoch(self, epoch: int) -> EpochRecord:
        users, items, _ = self.data.train
        self.module.als_iteration(users, items, self.weights, self.config)
        return EpochRecord(epoch, val_ndcg=self.data.validate() if self.data.validate else None)


class CompiledImplicitALSTrainer(ImplicitALSTrainer):
    """Implicit ALS on the CPU: each half-iteration solves every row by warm-started conjugate gradient in one
    parallel numba loop (:func:`mfrec.training.als_kernels.cg_half_iteration`), with the shared Gram matrix
    formed once per half-iteration by BLAS. The objective, the CG steps and the warm start are those of the torch
    engine; the factors are updated in place in the module's own tensors."""

    def __init__(self, module, config, data: TrainingData, generator=None, options=None) -> None:
        super().__init__(module, config, data, generator, options)
        self.kernel = compiled_module("als_kernels").cg_half_iteration
        users, items = (t.cpu().numpy() for t in data.train[:2])
        confidence = (1.0 + config.alpha * self.weights.cpu().numpy()).astype(np.float32)
        n_users, n_items, a0 = module.n_users, module.n_items, config.unobserved_weight
        self.by_user = csr_arrays(users, items, n_users, confidence, np.float32)
        self.by_item = csr_arrays(items, users, n_items, confidence, np.float32)

        def penalty(counts: np.ndarray, others: int) -> np.ndarray:
            return (config.regularization * (counts + a0 * others) ** config.reg_exponent).astype(np.float32)

        self.user_penalty = penalty(np.diff(self.by_user[0]), n_items)
        self.item_penalty = penalty(np.diff(self.by_item[0]), n_users)

    def epoch(self, epoch: int) -> EpochRecord:
        config, module = self.config, self.module
        x, y = module.user_embedding.weight.detach().numpy(), module.item_embedding.weight.detach().numpy()
        a0 = np.float32(config.unobserved_weight)
        for rows, solve, fixed, penalty in ((self.by_user, x, y, self.user_penalty),
                                            (self.by_item, y, x, self.item_penalty)):  # fmt: skip
            gram = (a0 * (fixed.T @ fixed)).astype(np.float32)
            self.kernel(*rows, solve, fixed, gram, penalty, a0, config.cg_steps)
        return EpochRecord(epoch, val_ndcg=self.data.validate() if self.data.validate else None)
