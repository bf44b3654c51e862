"""mfrec: matrix-factorization recommenders on PyTorch.

Importing ``mfrec`` is cheap and has no side effects: the public names below
are loaded on first use.

Typical use::

    import mfrec
    data = mfrec.load_dataset("ml-latest-small")
    split = mfrec.split_ratings(data, "stratified", seed=42)
    model = mfrec.MatrixFactorization.from_preset("default").fit(split.train, val=split.val)
    model.evaluate(split.test)
    model.recommend(1, n=10)
    model.save("model.safetensors")
    model = mfrec.load_model("model.safetensors")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from mfrec._version import __version__
from mfrec.errors import (
    ConfigError,
    DataError,
    DatasetNotFoundError,
    DistributedError,
    DivergenceError,
    DownloadError,
    MfrecError,
    ModelFileError,
    OutputError,
    UnknownIdError,
)

_LAZY = {
    "Ratings": "mfrec.data",
    "IdMap": "mfrec.data",
    "Columns": "mfrec.data",
    "Split": "mfrec.data",
    "load_dataset": "mfrec.data",
    "read_ratings": "mfrec.data",
    "read_items": "mfrec.data",
    "split_ratings": "mfrec.data",
    "load_split": "mfrec.data",
    "REGISTRY": "mfrec.data",
    "TrainConfig": "mfrec.config",
    "RunConfig": "mfrec.config",
    "SplitConfig": "mfrec.config",
    "PRESETS": "mfrec.config",
    "preset": "mfrec.config",
    "MatrixFactorization": "mfrec.estimator",
    "load_model": "mfrec.estimator",
    "train_run": "mfrec.run",
    "rmse": "mfrec.evaluation",
    "mae": "mfrec.evaluation",
}

if TYPE_CHECKING:
    from mfrec.config import PRESETS, RunConfig, SplitConfig, TrainConfig, preset
    from mfrec.data import (
        REGISTRY,
        Columns,
        IdMap,
        Ratings,
        Split,
        load_dataset,
        load_split,
        read_items,
        read_ratings,
        split_ratings,
    )
    from mfrec.estimator import MatrixFactorization, load_model
    from mfrec.evaluation import mae, rmse
    from mfrec.run import train_run


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mfrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "PRESETS",
    "REGISTRY",
    "Columns",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "DistributedError",
    "DivergenceError",
    "DownloadError",
    "IdMap",
    "MatrixFactorization",
    "MfrecError",
    "ModelFileError",
    "OutputError",
    "Ratings",
    "RunConfig",
    "Split",
    "SplitConfig",
    "TrainConfig",
    "UnknownIdError",
    "__version__",
    "load_dataset",
    "load_model",
    "load_split",
    "mae",
    "preset",
    "read_items",
    "read_ratings",
    "rmse",
    "split_ratings",
    "train_run",
]
