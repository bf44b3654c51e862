"""The epoch loop: device-resident tensors, a permutation per epoch, slicing.

One host sync per epoch (the epoch's summed loss and the validation RMSE);
none per batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from mfrec.config import TrainConfig
from mfrec.errors import ConfigError, DivergenceError
from mfrec.models.base import RatingModel

SPARSE_OPTIMIZERS = ("sgd", "sparse_adam", "adagrad")


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of history. RMSEs are in stars; ``val_rmse`` is clipped to the rating scale.

    ``train_rmse`` is the root of the mean squared error of the predictions made
    during the epoch (before each batch's update), unregularized and unclipped.
    """

    epoch: int
    train_rmse: float
    val_rmse: float | None
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def make_optimizer(config: TrainConfig, module: torch.nn.Module) -> torch.optim.Optimizer:
    params = list(module.parameters())
    lr = config.learning_rate
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if config.optimizer == "sparse_adam":
        return torch.optim.SparseAdam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _rmse_stars(
    module: RatingModel,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    divisor: float,
    scale: tuple[float, float],
    chunk: int = 1 << 20,
) -> torch.Tensor:
    """RMSE in stars of clipped predictions, as a 0-d tensor (no host sync)."""
    users, items, targets = data
    total = torch.zeros((), dtype=torch.float64, device=targets.device)
    with torch.no_grad():
        for start in range(0, len(targets), chunk):
            stop = start + chunk
            pred = (module(users[start:stop], items[start:stop]) * divisor).clamp(*scale)
            total += (pred - targets[start:stop] * divisor).double().pow(2).sum()
    return (total / max(len(targets), 1)).sqrt()


def fit_module(
    module: RatingModel,
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    config: TrainConfig,
    *,
    scale: tuple[float, float],
    generator: torch.Generator,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[list[EpochRecord], int]:
    """Train ``module`` in place on (users, items, targets) tensors already on its device.

    Targets are ratings divided by ``config.rating_divisor``. Each epoch draws a
    permutation from ``generator`` and walks it in slices of ``batch_size``.
    With validation data and ``patience > 0``, training stops after
    ``patience`` epochs without a lower validation RMSE and the best epoch's
    parameters are restored.

    Returns the per-epoch history and the best epoch (1-based; the last epoch
    without validation). Raises :class:`DivergenceError` on a non-finite loss.
    """
    users, items, targets = train
    n = len(targets)
    device = targets.device
    optimizer = make_optimizer(config, module)
    reg = config.regularization
    bias_reg = config.bias_regularization
    divisor = config.rating_divisor
    history: list[EpochRecord] = []
    best_rmse, best_epoch, best_state = math.inf, 0, None
    stale = 0

    from tqdm.auto import tqdm

    bar = tqdm(range(1, config.epochs + 1), desc="training", unit="epoch", disable=not progress, leave=False)
    module.train()
    for epoch in bar:
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator).to(device)
        squared = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            u, i, r = users[batch], items[batch], targets[batch]
            error = module(u, i) - r
            sse = error.pow(2).sum()
            loss = sse
            if reg:
                loss = loss + reg * module.penalty(u, i).sum()
            if bias_reg:
                bias_penalty = module.bias_penalty(u, i)
                if bias_penalty is not None:
                    loss = loss + bias_reg * bias_penalty.sum()
            optimizer.zero_grad(set_to_none=True)
            (loss / len(batch)).backward()
            optimizer.step()
            squared += sse.detach()
        train_mse = squared.item() / n
        if not math.isfinite(train_mse):
            raise DivergenceError(
                f"training diverged at epoch {epoch} (loss is {train_mse}); "
                f"try a smaller learning rate than {config.learning_rate:g}"
            )
        module.eval()
        val_rmse = _rmse_stars(module, val, divisor, scale).item() if val is not None and len(val[2]) else None
        module.train()
        record = EpochRecord(epoch, math.sqrt(train_mse) * divisor, val_rmse, time.perf_counter() - started)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        bar.set_postfix(train_rmse=f"{record.train_rmse:.4f}", val_rmse=f"{val_rmse:.4f}" if val_rmse else "-")
        if val_rmse is None:
            best_epoch = epoch
            continue
        if val_rmse < best_rmse:
            best_rmse, best_epoch, stale = val_rmse, epoch, 0
            if config.patience:
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            stale += 1
            if config.patience and stale >= config.patience:
                break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    elif not config.patience:
        best_epoch = len(history)  # no restore: the model is the last epoch's
    module.eval()
    _check_finite(module)
    return history, best_epoch


def _check_finite(module: torch.nn.Module) -> None:
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DivergenceError(f"parameter {name} holds NaN or inf after training; nothing was saved")
