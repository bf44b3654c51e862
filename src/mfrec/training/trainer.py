"""The one training loop, and the small protocol every engine implements to plug into it.

An engine (autograd SGD, compiled SGD, explicit ALS, implicit ALS, BPR, Gibbs
sampling, a closed-form solve) is a :class:`Trainer`: it runs one epoch and
reports it, and it can hand over and take back the state that is not in its
module's parameters (optimizer moments, generator states, a sampler's running
sums). :func:`fit` owns everything around the epochs: resuming from a
checkpoint, progress, callbacks, divergence checks, early stopping on the
validation score or a target RMSE, restoring the best epoch, and the final check
that no parameter is NaN.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import torch

from mfrec.errors import ConfigError, DivergenceError

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
#: a checkpoint is written once this many times its own last cost has passed since the previous one
CHECKPOINT_RATIO = 10.0


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of history.

    ``train_rmse`` (stars; rating models) is the root mean squared error on the
    training ratings during or after the epoch (engines say which). ``val_rmse``
    is in stars with predictions clipped to the rating scale. ``train_loss`` is
    the mean BPR loss; ``val_ndcg`` the validation NDCG@10 (ranking models).
    Fields that do not apply are ``None``. ``seconds`` is set by :func:`fit`.
    """

    epoch: int
    train_rmse: float | None = None
    val_rmse: float | None = None
    seconds: float = 0.0
    train_loss: float | None = None
    val_ndcg: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def val_score(self) -> float | None:
        """The early-stopping score: lower is better (RMSE, or minus NDCG)."""
        if self.val_rmse is not None:
            return self.val_rmse
        return None if self.val_ndcg is None else -self.val_ndcg


@dataclass
class TrainingData:
    """What a trainer trains on, already on the training device.

    ``train`` and ``val`` are ``(users, items, targets)`` index tensors; targets
    are ratings divided by ``divisor`` for rating models and raw values (ratings
    or counts) for ranking models. ``pairs()`` returns ``(users, items)`` (numpy int64)
    of every pair known to exist (train, val and any further pairs the fit was
    given, without their ratings), for models with implicit features. ``validate`` returns the validation NDCG@10 of
    the module as it is now (ranking models with validation data), else ``None``.
    """

    train: Tensors
    val: Tensors | None
    scale: tuple[float, float]
    divisor: float = 1.0
    validate: Callable[[], float] | None = None
    pairs: Callable[[], tuple[Any, Any]] | None = None

    @property
    def has_val(self) -> bool:
        return self.val is not None and len(self.val[2]) > 0


class Trainer(Protocol):
    """One engine. ``module`` is the model being trained (its state is checkpointed by :func:`fit`)."""

    module: torch.nn.Module
    #: the number of epochs to run (sweeps, iterations; 1 for a closed form)
    epochs: int
    #: advice appended to a divergence error ("try a smaller learning rate than 0.01")
    hint: str

    def epoch(self, epoch: int) -> EpochRecord:
        """Run epoch ``epoch`` (1-based) and report it."""

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON values beyond the module's state that a resumed run needs."""

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Take back what :meth:`state` returned."""

    def finish(self) -> None:
        """Called once after the last epoch (e.g. to store a sampler's averaged result)."""


class BaseTrainer:
    """Defaults for the optional parts of the protocol: no extra state, nothing to finish."""

    hint = ""

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        return None

    def finish(self) -> None:
        return None


class EarlyStopping:
    """Keeps the best epoch's parameters; says when ``patience`` epochs brought nothing better."""

    def __init__(self, module: torch.nn.Module, patience: int, target_rmse: float = 0.0) -> None:
        self.module = module
        self.patience = patience
        self.target_rmse = target_rmse
        self.best_score = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stale = 0

    def update(self, record: EpochRecord) -> bool:
        """Record an epoch; True when training should stop."""
        score = record.val_score
        if score is None:
            self.best_epoch = record.epoch
            return False
        if score < self.best_score:
            self.best_score, self.best_epoch, self.stale = score, record.epoch, 0
            if self.patience:
                self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            reached = self.target_rmse and record.val_rmse is not None and record.val_rmse <= self.target_rmse
            return bool(reached)
        self.stale += 1
        return bool(self.patience) and self.stale >= self.patience

    def finish(self, epochs_run: int) -> int:
        """Restore the best parameters (with patience) and return the epoch the model now holds."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)
            return self.best_epoch
        return epochs_run


def fit(
    trainer: Trainer,
    *,
    patience: int = 0,
    target_rmse: float = 0.0,
    checkpoint=None,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[list[EpochRecord], int]:
    """Run ``trainer`` for its epochs; returns the history and the epoch whose parameters the module holds.

    With ``checkpoint`` (a :class:`~mfrec.training.checkpoint.Checkpoint`), the whole
    state is written after an epoch (every epoch unless writing it costs more than a
    tenth of the time; always after the last) and an existing checkpoint is resumed,
    so the result is the same as that of an uninterrupted run. Raises
    :class:`~mfrec.errors.DivergenceError` when a training score is NaN or infinite.
    """
    from tqdm.auto import tqdm

    module = trainer.module
    stopper = EarlyStopping(module, patience, target_rmse)
    start, history = 1, []
    if checkpoint is not None and checkpoint.exists():
        last, history, finished = checkpoint.restore(trainer, stopper)
        start = trainer.epochs + 1 if finished else last + 1
    saved_at, save_cost = time.perf_counter(), 0.0
    bar = tqdm(range(start, trainer.epochs + 1), desc="training", unit="epoch", disable=not progress,
               leave=False, initial=start - 1, total=trainer.epochs)  # fmt: skip
    for epoch in bar:
        started = time.perf_counter()
        record = trainer.epoch(epoch)
        record = replace(record, epoch=epoch, seconds=time.perf_counter() - started)
        for name in ("train_rmse", "train_loss"):
            value = getattr(record, name)
            if value is not None and not math.isfinite(value):
                hint = f"; {trainer.hint}" if trainer.hint else ""
                raise DivergenceError(f"training diverged at epoch {epoch} ({name} is {value}){hint}")
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.to_dict().items() if k not in ("epoch", "seconds") and v})
        stop = stopper.update(record)
        finished = stop or epoch >= trainer.epochs
        # a checkpoint costs at most about a tenth of the time: every epoch when it is cheap, less often when
        # the state is large (Gibbs samples); the result is the same whichever epoch a run resumes from
        if checkpoint is not None and (finished or time.perf_counter() - saved_at >= CHECKPOINT_RATIO * save_cost):
            save_started = time.perf_counter()
            checkpoint.save(epoch, trainer, stopper, history, finished=finished)
            saved_at = time.perf_counter()
            save_cost = saved_at - save_started
        if stop:
            break
    bar.close()
    kept = stopper.finish(len(history))
    trainer.finish()
    module.eval()
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DivergenceError(f"parameter {name} holds NaN or inf after training; nothing was saved")
    return history, kept


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def rating_rmse(module: torch.nn.Module, data: Tensors, divisor: float, scale: tuple[float, float]) -> float:
    """RMSE in stars of ``module``'s predictions for ``data``, clipped to ``scale`` (summed over ranks)."""
    from mfrec.training.distributed import all_sum

    users, items, targets = data
    total = torch.zeros((), dtype=torch.float64, device=targets.device)
    chunk = 1 << 20
    with torch.no_grad():
        for first in range(0, len(targets), chunk):
            last = first + chunk
            pred = (module(users[first:last], items[first:last]) * divisor).clamp(*scale)
            total += (pred - targets[first:last] * divisor).double().pow(2).sum()
    total, count = all_sum(total, torch.tensor(float(len(targets)), dtype=torch.float64, device=targets.device))
    return float((total / count.clamp(min=1)).sqrt())


def generator_states(generators: dict[str, torch.Generator]) -> dict[str, torch.Tensor]:
    """Generator states as CPU byte tensors, for :meth:`Trainer.state`."""
    return {f"generator.{name}": g.get_state().cpu() for name, g in generators.items()}


def load_generator_states(generators: dict[str, torch.Generator], tensors: dict[str, torch.Tensor]) -> None:
    for name, g in generators.items():
        g.set_state(tensors[f"generator.{name}"])


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's tensors and its JSON scalars and parameter groups, for :meth:`Trainer.state`."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"optimizer_groups": state["param_groups"], "optimizer_scalars": scalars}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: torch.device
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value.to(device) if name != "step" else value
    for key, value in meta["optimizer_scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer_groups"]})
