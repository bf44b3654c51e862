"""The state of a fitted model, as the estimator holds it and the store writes and reads it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfrec.data.checks import is_missing
from mfrec.data.idmap import IdMap
from mfrec.models.base import Model
from mfrec.training.trainer import EpochRecord


@dataclass(frozen=True)
class FittedState:
    """What a fitted or loaded model holds besides its config: the parts :meth:`~mfrec.MatrixFactorization.restore`
    takes (the store builds one from a file)."""

    module: Model
    user_map: IdMap
    item_map: IdMap
    scale: tuple[float, float]
    titles: np.ndarray | None
    seen: tuple[np.ndarray, np.ndarray, np.ndarray]
    dataset: str = ""
    data_kind: str = "explicit"
    history: tuple[EpochRecord, ...] = ()
    best_epoch: int = 0
    metrics: dict | None = None
    genres: np.ndarray | None = None
    years: np.ndarray | None = None
    sha256: str = ""  # the verified content digest of the file it was read from ("" when fitted here)

    def __post_init__(self) -> None:
        check_state(self)


DATA_KINDS = ("explicit", "implicit")


def check_state(state: FittedState) -> None:
    """Every invariant the scoring path relies on, or a ``ValueError`` naming the first that fails.

    A model file's digest proves it is the file that was written, not that its writer was mfrec:
    a file made by other code, with its digest recomputed, is checked here before anything reads
    it. Sizes agree (id maps, module rows, seen items, item metadata), the seen items are a CSR
    matrix (``indptr`` of ``n_users + 1`` non-decreasing offsets from 0 to ``nnz``, item indices in
    ``0..n_items-1``, finite ratings), the scale is finite and increasing, and every parameter is
    finite. O(parameters + seen ratings), vectorised.
    """
    n_users, n_items = len(state.user_map), len(state.item_map)
    for side, idmap in (("user", state.user_map), ("item", state.item_map)):
        ids = idmap.ids
        if not idmap.is_integer and not (ids.dtype == object and all(isinstance(x, str) for x in ids)):
            raise ValueError(f"{side} ids must be integers or strings, not {_kind(ids)}")
    if (state.module.n_users, state.module.n_items) != (n_users, n_items):
        raise ValueError(
            f"the model has {state.module.n_users} user and {state.module.n_items} item rows, "
            f"but {n_users} user and {n_items} item ids"
        )
    for name, tensor in state.module.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"parameter {name} holds NaN or inf")
    _check_seen(state.seen, n_users, n_items)
    low, high = state.scale
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"the rating scale must be two finite numbers, low < high, not {low!r} to {high!r}")
    for name, values in (("titles", state.titles), ("genres", state.genres)):
        if values is None:
            continue
        if len(values) != n_items:
            raise ValueError(f"{name} has {len(values)} entries for {n_items} items")
        if not all(isinstance(v, str) or is_missing(v) for v in values):
            raise ValueError(f"{name} must be text (or null) per item")
    if state.years is not None and (len(state.years) != n_items or state.years.dtype.kind != "f"):
        raise ValueError(f"years must be one number (or null) per item, {n_items} in all")
    if state.data_kind not in DATA_KINDS:
        raise ValueError(f"data_kind must be one of {', '.join(DATA_KINDS)}, not {state.data_kind!r}")
    if not isinstance(state.dataset, str):
        raise ValueError(f"the dataset name must be text, not {state.dataset!r}")
    if not (state.metrics is None or isinstance(state.metrics, dict)):
        raise ValueError(f"the metrics must be an object, not {type(state.metrics).__name__}")
    if isinstance(state.best_epoch, bool) or not isinstance(state.best_epoch, int) or state.best_epoch < 0:
        raise ValueError(f"best_epoch must be a whole number of at least 0, not {state.best_epoch!r}")


def _check_seen(seen: tuple[np.ndarray, np.ndarray, np.ndarray], n_users: int, n_items: int) -> None:
    indptr, items, ratings = seen
    if indptr.dtype.kind not in "iu" or items.dtype.kind not in "iu" or ratings.dtype.kind != "f":
        raise ValueError(
            f"seen items must be integer offsets and indices with float ratings, not {_kind(indptr)}, "
            f"{_kind(items)} and {_kind(ratings)}"
        )
    if indptr.shape != (n_users + 1,):
        raise ValueError(f"seen items: {indptr.shape} offsets for {n_users} users, not ({n_users + 1},)")
    if items.ndim != 1 or ratings.shape != items.shape:
        raise ValueError(f"seen items: {items.shape} items and {ratings.shape} ratings, not two equal vectors")
    if indptr[0] != 0 or indptr[-1] != len(items) or (np.diff(indptr) < 0).any():
        raise ValueError(f"seen items: the offsets must rise from 0 to {len(items)}")
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"seen items: an item index outside 0..{n_items - 1} ({int(items.min())}..{int(items.max())})")
    if not np.isfinite(ratings).all():
        raise ValueError("seen items: a rating is NaN or inf")


def _kind(values: np.ndarray) -> str:
    return str(values.dtype) if values.dtype != object else "mixed values"
