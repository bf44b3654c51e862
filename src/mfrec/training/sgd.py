"""Mini-batch gradient training of the rating models (autograd, CPU or GPU, data-parallel with DDP).

Each epoch draws a permutation from the run's generator and walks it in slices
of ``batch_size``; one host sync per epoch (the summed squared error), none per
batch. On several ranks, every global batch is split between the ranks, so the
step count and the result match one process (up to floating point).
"""

from __future__ import annotations

import math

import torch

from mfrec.models.base import RatingModel
from mfrec.training.trainer import (
    BaseTrainer,
    EpochRecord,
    TrainingData,
    generator_states,
    load_generator_states,
    load_optimizer_state,
    optimizer_state,
    rating_rmse,
)


def make_optimizer(config, module: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, over the trainable parameters, at ``config.learning_rate``."""
    params = [p for p in module.parameters() if p.requires_grad]
    kinds = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "sparse_adam": torch.optim.SparseAdam,
             "adam": torch.optim.Adam}  # fmt: skip
    return kinds[config.optimizer](params, lr=config.learning_rate)


class BatchLoss(torch.nn.Module):
    """One step's squared error and regularized loss, as a module so DDP can wrap it.

    Returns ``(sse, loss)``: the summed squared error of the batch and
    ``sse + reg * penalty + bias_reg * bias_penalty`` (summed over the batch).
    """

    def __init__(self, model: RatingModel, regularization: float, bias_regularization: float) -> None:
        super().__init__()
        self.model = model
        self.regularization = regularization
        self.bias_regularization = bias_regularization

    def forward(self, users: torch.Tensor, items: torch.Tensor, targets: torch.Tensor):
        sse = (self.model(users, items) - targets).pow(2).sum()
        loss = sse
        if self.regularization:
            loss = loss + self.regularization * self.model.penalty(users, items).sum()
        if self.bias_regularization:
            bias_penalty = self.model.bias_penalty(users, items)
            if bias_penalty is not None:
                loss = loss + self.bias_regularization * bias_penalty.sum()
        return sse, loss


class GradientTrainer(BaseTrainer):
    """Squared error by SGD, Adam or Adagrad on ``(users, items, targets)``; train RMSE is that of the
    predictions made during the epoch, before each batch's update."""

    def __init__(self, module: RatingModel, config, data: TrainingData, generator, options=None) -> None:
        from mfrec.training.distributed import current, shard

        self.module, self.config, self.data, self.generator = module, config, data, generator
        self.epochs = config.epochs
        self.hint = f"try a smaller learning rate than {config.learning_rate:g}"
        train, val = data.train, data.val
        self.steps = -(-len(train[2]) // config.batch_size)  # alone or on all ranks together: the same steps
        self.group = current()
        self.step_loss: torch.nn.Module = BatchLoss(module, config.regularization,
                                                    getattr(config, "bias_regularization", 0.0))  # fmt: skip
        if self.group is not None:
            from torch.nn.parallel import DistributedDataParallel

            train = shard(train, self.group)
            val = shard(val, self.group) if val is not None else None
            index = train[2].device.index if train[2].device.type == "cuda" else None
            self.step_loss = DistributedDataParallel(self.step_loss, device_ids=None if index is None else [index])
        self.train, self.val = train, val
        self.optimizer = make_optimizer(config, module)

    def epoch(self, epoch: int) -> EpochRecord:
        from mfrec.training.distributed import all_sum

        users, items, targets = self.train
        n, device = len(targets), targets.device
        self.module.train()
        order = torch.randperm(n, generator=self.generator).to(device)
        squared = torch.zeros((), dtype=torch.float64, device=device)
        # alone: slices of batch_size; on W ranks: each rank's near-equal share of every global batch
        batches = order.split(self.config.batch_size) if self.group is None else torch.tensor_split(order, self.steps)
        for batch in batches:
            sse, loss = self.step_loss(users[batch], items[batch], targets[batch])
            self.optimizer.zero_grad(set_to_none=True)
            (loss / max(len(batch), 1)).backward()
            self.optimizer.step()
            squared += sse.detach()
        squared, count = all_sum(squared, torch.tensor(float(n), dtype=torch.float64, device=device))
        train_mse = squared.item() / max(count.item(), 1.0)
        self.module.eval()
        divisor = self.data.divisor
        val_rmse = rating_rmse(self.module, self.val, divisor, self.data.scale) if self.data.has_val else None
        return EpochRecord(epoch, math.sqrt(train_mse) * divisor, val_rmse)

    def state(self):
        tensors, meta = optimizer_state(self.optimizer)
        return {**tensors, **generator_states({"shuffle": self.generator})}, meta

    def load_state(self, tensors, meta) -> None:
        load_optimizer_state(self.optimizer, tensors, meta, self.train[2].device)
        load_generator_states({"shuffle": self.generator}, tensors)
