"""Training loops: device-resident tensors, a permutation per epoch, slicing.

One host sync per epoch (the epoch's summed loss and the validation score);
none per batch. Three procedures share the early-stopping rule:

* :func:`fit_module`: rating models (squared error, SGD/Adam/Adagrad);
* :func:`fit_bpr`: BPR on sampled (user, positive, negative) triples;
* :func:`fit_als`: implicit ALS, one closed-form alternating pass per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from mfrec.config import TrainConfig
from mfrec.errors import ConfigError, DivergenceError
from mfrec.models.base import FactorModel, RatingModel

SPARSE_OPTIMIZERS = ("sgd", "sparse_adam", "adagrad")
Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of history.

    ``train_rmse`` (stars; rating models) is the root of the mean squared error
    of the predictions made during the epoch, before each batch's update.
    ``val_rmse`` is in stars with predictions clipped to the rating scale.
    ``train_loss`` is the mean BPR loss; ``val_ndcg`` the validation NDCG@10
    (ranking models). Fields that do not apply are ``None``.
    """

    epoch: int
    train_rmse: float | None
    val_rmse: float | None
    seconds: float
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


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def make_optimizer(config: TrainConfig, module: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    lr = config.learning_rate
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if config.optimizer == "sparse_adam":
        return torch.optim.SparseAdam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


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


def _rmse_stars(module: RatingModel, data: Tensors, divisor: float, scale: tuple[float, float]) -> torch.Tensor:
    """RMSE in stars of clipped predictions, as a 0-d tensor (no host sync)."""
    users, items, targets = data
    total = torch.zeros((), dtype=torch.float64, device=targets.device)
    chunk = 1 << 20
    with torch.no_grad():
        for start in range(0, len(targets), chunk):
            stop = start + chunk
            pred = (module(users[start:stop], items[start:stop]) * divisor).clamp(*scale)
            total += (pred - targets[start:stop] * divisor).double().pow(2).sum()
    from mfrec.training.distributed import all_sum

    total, count = all_sum(total, torch.tensor(float(len(targets)), dtype=torch.float64, device=targets.device))
    return (total / count.clamp(min=1)).sqrt()


def _bar(config: TrainConfig, progress: bool, start: int = 1):
    from tqdm.auto import tqdm

    return tqdm(
        range(start, config.epochs + 1),
        desc="training",
        unit="epoch",
        disable=not progress,
        leave=False,
        initial=start - 1,
        total=config.epochs,
    )


def _resume(checkpoint, module, optimizer, generators, stopper, config) -> tuple[int, list[EpochRecord]]:
    """Restore a checkpoint when there is one: returns ``(first epoch to run, history so far)``."""
    if checkpoint is None or not checkpoint.exists():
        return 1, []
    last, history, finished = checkpoint.restore(
        module=module, optimizer=optimizer, generators=generators, stopper=stopper
    )
    return (config.epochs + 1 if finished else last + 1), history


def _end_epoch(checkpoint, record, history, stopper, config, module, optimizer, generators, bar, on_epoch) -> bool:
    """Record the epoch just run (history, callback, progress bar), decide early stopping, then
    write a checkpoint; True to stop."""
    history.append(record)
    _finish(record, bar, on_epoch)
    stop = stopper.update(record)
    if checkpoint is not None:
        checkpoint.save(
            epoch=record.epoch, module=module, optimizer=optimizer, generators=generators, stopper=stopper,
            history=history, finished=stop or record.epoch >= config.epochs,
        )  # fmt: skip
    return stop


def _finish(record: EpochRecord, bar, on_epoch) -> None:
    if on_epoch is not None:
        on_epoch(record)
    shown = {}
    for name in ("train_rmse", "train_loss", "val_rmse", "val_ndcg"):
        value = getattr(record, name)
        if value is not None:
            shown[name] = f"{value:.4f}"
    bar.set_postfix(shown)


def _diverged(epoch: int, value: float, config: TrainConfig) -> DivergenceError:
    return DivergenceError(
        f"training diverged at epoch {epoch} (loss is {value}); "
        f"try a smaller learning rate than {config.learning_rate:g}"
    )


def fit_module(
    module: RatingModel,
    train: Tensors,
    val: Tensors | None,
    config: TrainConfig,
    *,
    scale: tuple[float, float],
    generator: torch.Generator,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    checkpoint=None,
) -> tuple[list[EpochRecord], int]:
    """Train a rating model in place on (users, items, targets) tensors already on its device.

    Targets are ratings divided by ``config.rating_divisor``. Each epoch draws a
    permutation from ``generator`` and walks it in slices of ``batch_size``.
    With validation data and ``patience > 0``, training stops after
    ``patience`` epochs without a lower validation RMSE and the best epoch's
    parameters are restored.

    Returns the per-epoch history and the epoch whose parameters the model
    holds. Raises :class:`DivergenceError` on a non-finite loss.
    """
    from mfrec.training.distributed import all_sum, current, shard

    steps = -(-len(train[2]) // config.batch_size)  # a process alone or all ranks together: the same step count
    group = current()
    step_loss: torch.nn.Module = BatchLoss(module, config.regularization, config.bias_regularization)
    if group is not None:
        from torch.nn.parallel import DistributedDataParallel

        train = shard(train, group)
        val = shard(val, group) if val is not None else None
        index = train[2].device.index if train[2].device.type == "cuda" else None
        step_loss = DistributedDataParallel(step_loss, device_ids=None if index is None else [index])
    users, items, targets = train
    n = len(targets)
    device = targets.device
    optimizer = make_optimizer(config, module)
    divisor = config.rating_divisor
    stopper = EarlyStopping(module, config.patience, config.target_rmse)
    generators = {"shuffle": generator}
    start, history = _resume(checkpoint, module, optimizer, generators, stopper, config)
    bar = _bar(config, progress, start)
    module.train()
    for epoch in bar:
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator).to(device)
        squared = torch.zeros((), dtype=torch.float64, device=device)
        # alone: slices of batch_size; on W ranks: each rank's near-equal share of every global batch
        batches = order.split(config.batch_size) if group is None else torch.tensor_split(order, steps)
        for batch in batches:
            sse, loss = step_loss(users[batch], items[batch], targets[batch])
            optimizer.zero_grad(set_to_none=True)
            (loss / max(len(batch), 1)).backward()
            optimizer.step()
            squared += sse.detach()
        squared, count = all_sum(squared, torch.tensor(float(n), dtype=torch.float64, device=device))
        train_mse = squared.item() / max(count.item(), 1.0)
        if not math.isfinite(train_mse):
            raise _diverged(epoch, train_mse, config)
        module.eval()
        val_rmse = _rmse_stars(module, val, divisor, scale).item() if val is not None and len(val[2]) else None
        module.train()
        record = EpochRecord(epoch, math.sqrt(train_mse) * divisor, val_rmse, time.perf_counter() - started)
        if _end_epoch(checkpoint, record, history, stopper, config, module, optimizer, generators, bar, on_epoch):
            break
    bar.close()
    return _done(module, history, stopper)


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


def _done(module: FactorModel, history: list[EpochRecord], stopper: EarlyStopping) -> tuple[list[EpochRecord], int]:
    kept = stopper.finish(len(history))
    module.eval()
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DivergenceError(f"parameter {name} holds NaN or inf after training; nothing was saved")
    return history, kept


def fit_bpr(
    module: FactorModel,
    train: Tensors,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    validate: Callable[[], float] | None = None,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    checkpoint=None,
) -> tuple[list[EpochRecord], int]:
    """Train BPR in place: each epoch, every observed pair once with one uniformly drawn known item as negative.

    ``validate()`` returns the validation NDCG@10 (higher is better) for early stopping.
    """
    users, items, _ = train
    n = len(users)
    device = users.device
    known_items = torch.nonzero(module.item_known).squeeze(1)  # on the module's device
    # negatives are drawn on the device, from a device generator seeded by the run's generator
    device_generator = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    optimizer = make_optimizer(config, module)
    stopper = EarlyStopping(module, config.patience)
    generators = {"shuffle": generator, "negatives": device_generator}
    start, history = _resume(checkpoint, module, optimizer, generators, stopper, config)
    bar = _bar(config, progress, start)
    module.train()
    for epoch in bar:
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator).to(device)
        negatives_all = known_items[torch.randint(len(known_items), (n,), generator=device_generator, device=device)]
        total = torch.zeros((), dtype=torch.float64, device=device)
        for first in range(0, n, config.batch_size):
            batch = order[first : first + config.batch_size]
            ranking, penalty = module.loss(
                users[batch], items[batch], negatives_all[first : first + len(batch)], config.regularization
            )
            optimizer.zero_grad(set_to_none=True)
            ((ranking + penalty) / len(batch)).backward()
            optimizer.step()
            total += ranking.detach()
        train_loss = total.item() / n
        if not math.isfinite(train_loss):
            raise _diverged(epoch, train_loss, config)
        module.eval()
        val_ndcg = validate() if validate is not None else None
        module.train()
        record = EpochRecord(epoch, None, None, time.perf_counter() - started, train_loss, val_ndcg)
        if _end_epoch(checkpoint, record, history, stopper, config, module, optimizer, generators, bar, on_epoch):
            break
    bar.close()
    return _done(module, history, stopper)


def fit_als(
    module: FactorModel,
    train: Tensors,
    config: TrainConfig,
    *,
    validate: Callable[[], float] | None = None,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    checkpoint=None,
) -> tuple[list[EpochRecord], int]:
    """Run ``config.epochs`` implicit-ALS iterations in place; weights are ratings/counts or 1 (``confidence``)."""
    users, items, values = train
    weights = values if config.confidence == "rating" else torch.ones_like(values)
    stopper = EarlyStopping(module, config.patience)
    start, history = _resume(checkpoint, module, None, {}, stopper, config)
    bar = _bar(config, progress, start)
    for epoch in bar:
        started = time.perf_counter()
        module.als_iteration(users, items, weights.to(torch.float32), config)
        val_ndcg = validate() if validate is not None else None
        record = EpochRecord(epoch, None, None, time.perf_counter() - started, None, val_ndcg)
        if _end_epoch(checkpoint, record, history, stopper, config, module, None, {}, bar, on_epoch):
            break
    bar.close()
    return _done(module, history, stopper)


def fit_explicit_als(
    module,
    train: Tensors,
    val: Tensors | None,
    config: TrainConfig,
    *,
    scale: tuple[float, float],
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    checkpoint=None,
) -> tuple[list[EpochRecord], int]:
    """Run up to ``config.epochs`` explicit-ALS iterations in place (:class:`~mfrec.models.als.ExplicitALS`).

    Early stopping on validation RMSE works as for the other rating models.
    """
    from mfrec.models.normal_equations import RowIndex

    users, items, targets = train
    by_user = RowIndex(users, items, targets, module.n_users)
    by_item = RowIndex(items, users, targets, module.n_items)
    stopper = EarlyStopping(module, config.patience, config.target_rmse)
    start, history = _resume(checkpoint, module, None, {}, stopper, config)
    bar = _bar(config, progress, start)
    divisor = config.rating_divisor
    for epoch in bar:
        started = time.perf_counter()
        module.als_iteration(by_user, by_item, config.regularization, config.bias_regularization)
        train_rmse = _rmse_stars(module, train, divisor, (-math.inf, math.inf)).item()
        if not math.isfinite(train_rmse):
            raise _diverged(epoch, train_rmse, config)
        val_rmse = _rmse_stars(module, val, divisor, scale).item() if val is not None and len(val[2]) else None
        record = EpochRecord(epoch, train_rmse, val_rmse, time.perf_counter() - started)
        if _end_epoch(checkpoint, record, history, stopper, config, module, None, {}, bar, on_epoch):
            break
    bar.close()
    return _done(module, history, stopper)
