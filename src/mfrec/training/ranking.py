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
    """Each epoch, every observed pair once in mini-batches, with one negative item drawn for it.

    Negatives are items the user has not interacted with, drawn uniformly or in proportion
    to their interaction counts (``negatives``), on the device from a device generator
    seeded by the run's generator; a draw the user has interacted with is drawn again (a
    few rounds, batched over every pair of the epoch).
    """

    #: rounds of redrawing the negatives that the user has interacted with
    TRIES = 8

    def __init__(self, module, config, data: TrainingData, generator: torch.Generator, options=None) -> None:
        self.module, self.config, self.data, self.generator = module, config, data, generator
        self.epochs = config.epochs
        self.hint = f"try a smaller learning rate than {config.learning_rate:g}"
        device = data.train[0].device
        users, items, _ = data.train
        known = torch.nonzero(module.item_known).squeeze(1)
        self.pool = items.clone() if config.negatives == "popularity" else known
        self.keys = torch.sort(users.long() * module.n_items + items.long()).values  # (user, item) pairs, sorted
        seed = int(torch.randint(2**62, (1,), generator=generator))
        self.negatives = torch.Generator(device=device).manual_seed(seed)
        self.optimizer = make_optimizer(config, module)

    def hardest(self, users: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Of each row of ``candidates`` ``(B, h)``, the item the model now scores highest for its user."""
        if candidates.shape[1] == 1:
            return candidates[:, 0]
        with torch.no_grad():
            scores = self.module(users.unsqueeze(1).expand_as(candidates), candidates)
        return candidates.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)

    def draw_negatives(self, users: torch.Tensor) -> torch.Tensor:
        """One negative per user in ``users``, redrawn while the user has interacted with it (``TRIES`` rounds)."""
        n_items = self.module.n_items
        negatives = self.pool[torch.randint(len(self.pool), (len(users),), generator=self.negatives,
                                            device=users.device)]  # fmt: skip
        todo = torch.arange(len(users), device=users.device)
        for _ in range(self.TRIES):
            query = users[todo].long() * n_items + negatives[todo].long()
            found = self.keys[torch.searchsorted(self.keys, query).clamp(max=len(self.keys) - 1)] == query
            todo = todo[found]
            if len(todo) == 0:
                break
            negatives[todo] = self.pool[torch.randint(len(self.pool), (len(todo),), generator=self.negatives,
                                                      device=users.device)]  # fmt: skip
        return negatives

    def epoch(self, epoch: int) -> EpochRecord:
        users, items, _ = self.data.train
        n, device, size = len(users), users.device, self.config.batch_size
        self.module.train()
        order = torch.randperm(n, generator=self.generator).to(device)
        hard = self.config.hard_negatives
        negatives = self.draw_negatives(users[order].repeat_interleave(hard)).view(n, hard)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for first in range(0, n, size):
            batch = order[first : first + size]
            negative = self.hardest(users[batch], negatives[first : first + len(batch)])
            ranking, penalty = self.module.loss(users[batch], items[batch], negative, self.config.regularization)
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


class CompiledBPRTrainer(BaseTrainer):
    """BPR on the CPU by per-triple SGD in one parallel numba loop (:func:`mfrec.training.bpr_kernels.bpr_epoch`).

    Each epoch visits every training pair once in a permutation and draws its negative
    from the items the user has not interacted with: uniformly (``negatives='uniform'``)
    or in proportion to the items' interaction counts (``'popularity'``); of
    ``hard_negatives`` such draws the one the model scores highest is trained on (dynamic
    negative sampling, Zhang et al. 2013). The step falls linearly from ``learning_rate``
    towards 0 over the epochs. The permutation
    and the draws come from a numpy generator seeded from the run's torch generator; with
    ``threads`` above 1 the permutation is cut into that many slices whose updates run at
    once without locks (Hogwild), as the compiled SGD engine's; by default one slice runs,
    so two runs with the same seed are identical.
    The factors are updated in place in the module's own tensors.
    """

    #: redraws of a negative that the user has interacted with, before the pair is skipped
    TRIES = 32

    def __init__(self, module, config, data: TrainingData, generator: torch.Generator, options=None) -> None:
        from mfrec.errors import ConfigError

        if module.user_embedding.weight.device.type != "cpu":
            raise ConfigError("the compiled BPR engine runs on the CPU; use --device cpu or --engine torch")
        self.module, self.config, self.data, self.generator = module, config, data, generator
        self.epochs = config.epochs
        self.hint = f"try a smaller learning rate than {config.learning_rate:g}"
        self.kernel = compiled_module("bpr_kernels").bpr_epoch
        users, items = (t.cpu().numpy().astype(np.int32) for t in data.train[:2])
        self.users, self.items = users, items
        order = np.lexsort((items, users))  # each user's items sorted, for the membership test
        self.indptr = np.zeros(module.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=module.n_users), out=self.indptr[1:])
        self.cols = items[order]
        known = np.flatnonzero(module.item_known.numpy()).astype(np.int32)
        self.pool = items.copy() if config.negatives == "popularity" else known
        self.slices = max(1, options.threads if options else 1)  # Hogwild slices; one (reproducible) by default
        self.p = module.user_embedding.weight.detach().numpy()
        self.q = module.item_embedding.weight.detach().numpy()
        self.b = module.item_bias.weight.detach().numpy()[:, 0]

    def step(self, epoch: int) -> float:
        """The SGD step of ``epoch``: ``learning_rate`` falling linearly towards 0 over the epochs."""
        return self.config.learning_rate * (1.0 - (epoch - 1) / self.epochs)

    def epoch(self, epoch: int) -> EpochRecord:
        n = len(self.users)
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=self.generator)))
        order = rng.permutation(n).astype(np.int32)
        draws = rng.integers(0, np.iinfo(np.int64).max, n, dtype=np.int64).astype(np.uint64)
        loss = self.kernel(self.indptr, self.cols, self.users, self.items, order, draws, self.pool, self.p, self.q,
                           self.b, self.step(epoch), self.config.regularization, self.slices, self.TRIES,
                           self.config.hard_negatives)  # fmt: skip
        return EpochRecord(epoch, train_loss=loss / max(n, 1),
                           val_ndcg=self.data.validate() if self.data.validate else None)  # fmt: skip

    def state(self):
        return generator_states({"shuffle": self.generator}), {}

    def load_state(self, tensors, meta) -> None:
        load_generator_states({"shuffle": self.generator}, tensors)


class ImplicitALSTrainer(BaseTrainer):
    """One alternating pass per epoch; the weights are the ratings/counts, or 1 (``confidence='binary'``)."""

    def __init__(self, module, config, data: TrainingData, generator=None, options=None) -> None:
        self.module, self.config, self.data = module, config, data
        self.epochs = config.epochs
        values = data.train[2]
        weights = (values if config.confidence == "rating" else torch.ones_like(values)).to(torch.float32)
        mean = float(weights.mean()) if len(weights) else 1.0
        module.weight_scale.fill_(1.0 / mean if mean > 0 else 1.0)
        module.confidence_offset.fill_(config.confidence_offset)  # what fold-in solves with
        self.weights = weights * module.weight_scale  # w / mean(w): the alpha of the config is scale-free

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
        confidence = (config.confidence_offset + config.alpha * self.weights.cpu().numpy()).astype(np.float32)
        n_users, n_items, a0 = module.n_users, module.n_items, config.unobserved_weight
        self.by_user = csr_arrays(users, items, n_users, confidence, np.float32)
        self.by_item = csr_arrays(items, users, n_items, confidence, np.float32)

        def penalty(counts: np.ndarray, others: int) -> np.ndarray:
            return (config.regularization * (counts + a0 * others) ** config.reg_exponent).astype(np.float32)

        self.user_penalty = penalty(np.diff(self.by_user[0]), n_items)
        self.item_penalty = penalty(np.diff(self.by_item[0]), n_users)

    def epoch(self, epoch: int) -> EpochRecord:
        from threadpoolctl import threadpool_limits

        config, module = self.config, self.module
        x, y = module.user_embedding.weight.detach().numpy(), module.item_embedding.weight.detach().numpy()
        a0 = np.float32(config.unobserved_weight)
        # One BLAS thread: the numba loop is the parallel part, and BLAS threads still spinning after the Gram
        # matrix's product would take the cores from it (up to 2x slower on 2 cores, measured).
        with threadpool_limits(limits=1, user_api="blas"):
            for rows, solve, fixed, penalty in ((self.by_user, x, y, self.user_penalty),
                                                (self.by_item, y, x, self.item_penalty)):  # fmt: skip
                gram = (a0 * (fixed.T @ fixed)).astype(np.float32)
                self.kernel(*rows, solve, fixed, gram, penalty, a0, config.cg_steps)
        return EpochRecord(epoch, val_ndcg=self.data.validate() if self.data.validate else None)
