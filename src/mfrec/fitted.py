"""The state of a fitted model, as the estimator holds it and the store writes and reads it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
