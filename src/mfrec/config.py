"""Configuration: one frozen dataclass per concern, and the named presets.

Names are the same in the config file, the CLI (``--embedding-dim``) and the
Python API (``embedding_dim=``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mfrec.errors import ConfigError

MODEL_KINDS = ("dot", "biased", "als", "bayesian", "implicit_als", "bpr")
RATING_MODELS = ("dot", "biased", "als", "bayesian")
CONFIDENCES = ("rating", "binary")
ENGINES = ("torch", "compiled")
OPTIMIZERS = ("sgd", "adam", "sparse_adam", "adagrad")
DEVICES = ("auto", "cpu", "cuda")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is built and trained.

    Attributes:
        model: ``"dot"`` (the notebook's model) or ``"biased"`` predict ratings;
            ``"implicit_als"`` and ``"bpr"`` rank items from interactions.
        embedding_dim: factors per user and item.
        optimizer: ``sgd`` and ``adagrad`` use sparse embedding gradients,
            ``sparse_adam`` is Adam on sparse rows, ``adam`` is dense Adam.
        learning_rate: optimizer step size.
        batch_size: ratings per step.
        epochs: maximum passes over the training ratings (ALS iterations for ``implicit_als``).
        regularization: L2 weight λ on the factors, per rating (see the model docstrings).
        bias_regularization: L2 weight λ_b on the biases (``biased`` only).
        init_std: factors start from N(0, init_std²); the notebook's ``nn.Embedding`` default is 1.
        rating_divisor: the model learns ``rating / rating_divisor``; the notebook divides by 5.
        notebook_einsum: reproduce the notebook's ``einsum('bi,bj->b')`` bug (``dot`` only).
        patience: stop after this many epochs without a better validation score
            (RMSE for rating models, NDCG@10 for ranking models) and restore the best
            epoch; ``0`` trains all ``epochs``.
        alpha: implicit confidence :math:`c = 1 + \alpha w` (``implicit_als``).
        confidence: what :math:`w` is: the ``rating`` value (or count) or ``binary`` (1).
        unobserved_weight: weight :math:`\alpha_0` of unobserved pairs (``implicit_als``).
        reg_exponent: scales λ by :math:`(n_u + \alpha_0 n)^\nu` (``implicit_als``; 0 = plain λ).
        cg_steps: conjugate-gradient steps per ALS half-iteration.
        engine: ``torch`` (autograd, CPU or GPU) or ``compiled`` (per-rating SGD in numba,
            ``biased`` on CPU only; ``optimizer`` is ignored, ``threads`` > 1 runs Hogwild).
        target_rmse: stop as soon as the validation RMSE (stars) is at or below this; 0 = off.
        burn_in: Gibbs sweeps discarded before samples are kept (``bayesian``).
        samples: Gibbs sweeps kept and averaged, spread evenly after the burn-in (``bayesian``).
        noise_precision: :math:`\alpha`, the inverse variance of ratings around the model (``bayesian``).
        posterior_rank: the kept samples' average is stored as its best factorization of this rank
            (truncated SVD); ``0`` stores every sample's factors side by side (``bayesian``).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        seed: seeds the initialisation and the per-epoch permutations.
        threads: CPU threads for torch; ``0`` keeps torch's default.
    """

    model: str = "biased"
    embedding_dim: int = 64
    optimizer: str = "adam"
    learning_rate: float = 0.005
    batch_size: int = 1024
    epochs: int = 40
    regularization: float = 0.15
    bias_regularization: float = 0.0
    init_std: float = 0.01
    rating_divisor: float = 1.0
    notebook_einsum: bool = False
    patience: int = 3
    device: str = "auto"
    seed: int = 42
    threads: int = 0
    alpha: float = 1.0
    confidence: str = "rating"
    unobserved_weight: float = 1.0
    reg_exponent: float = 0.0
    cg_steps: int = 3
    engine: str = "torch"
    target_rmse: float = 0.0
    burn_in: int = 20
    samples: int = 32
    noise_precision: float = 2.0
    posterior_rank: int = 0

    @property
    def predicts_ratings(self) -> bool:
        return self.model in RATING_MODELS

    def __post_init__(self) -> None:
        _choice("model", self.model, MODEL_KINDS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("device", self.device, DEVICES)
        _choice("confidence", self.confidence, CONFIDENCES)
        _choice("engine", self.engine, ENGINES)
        if self.engine == "compiled" and self.model not in ("biased", "dot"):
            raise ConfigError("the compiled engine trains the 'biased' and 'dot' models only")
        if self.engine == "compiled" and self.notebook_einsum:
            raise ConfigError("the compiled engine computes a true dot product; drop --notebook-einsum")
        for name in ("embedding_dim", "batch_size", "epochs", "cg_steps", "samples"):
            _positive_int(name, getattr(self, name))
        for name in ("learning_rate", "rating_divisor"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and value < float("inf")):
                raise ConfigError(f"{name} must be a positive number, not {value!r}")
        for name in (
            "regularization",
            "bias_regularization",
            "init_std",
            "alpha",
            "unobserved_weight",
            "reg_exponent",
            "target_rmse",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < float("inf")):
                raise ConfigError(f"{name} must be a non-negative number, not {value!r}")
        if not (isinstance(self.noise_precision, int | float) and 0 < self.noise_precision < float("inf")):
            raise ConfigError(f"noise_precision must be a positive number, not {self.noise_precision!r}")
        if self.model == "bayesian" and self.epochs - self.burn_in < self.samples:
            raise ConfigError(
                f"bayesian needs epochs - burn_in >= samples ({self.epochs} - {self.burn_in} < {self.samples})"
            )
        for name in ("patience", "threads", "seed", "burn_in", "posterior_rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, not {value!r}")
        if self.notebook_einsum and self.model != "dot":
            raise ConfigError("notebook_einsum applies to the 'dot' model only")

    def replace(self, **changes: Any) -> TrainConfig:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SplitConfig:
    """How ratings are divided; see :func:`mfrec.data.split_ratings`."""

    method: str = "stratified"
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 42
    holdout: int = 1


@dataclass(frozen=True)
class RunConfig:
    """Everything a ``mfrec train`` run needs, written to ``config.json`` in full."""

    preset: str = "default"
    dataset: str | None = "ml-latest-small"
    ratings_file: str | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    split: SplitConfig = field(default_factory=SplitConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_config_from_dict(values: dict[str, Any]) -> TrainConfig:
    unknown = set(values) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    return TrainConfig(**values)


# The notebook: nn.Embedding (N(0,1) init), dim 16, SGD lr 0.001, batch 256,
# 500 epochs, MSE on rating/5, no regularization, no early stopping.
NOTEBOOK = TrainConfig(
    model="dot",
    embedding_dim=16,
    optimizer="sgd",
    learning_rate=0.001,
    batch_size=256,
    epochs=500,
    regularization=0.0,
    bias_regularization=0.0,
    init_std=1.0,
    rating_divisor=5.0,
    notebook_einsum=False,
    patience=0,
)

# Measured best on ml-latest-small (stratified 60/20/20, seed 42): see benchmarks/default_preset.py.
DEFAULT = TrainConfig()

# Top-N: implicit ALS chosen on validation NDCG@10 of ml-latest-small (benchmarks/ranking.py).
IMPLICIT = TrainConfig(
    model="implicit_als", embedding_dim=128, regularization=40.0, alpha=1.0, epochs=15, patience=0, init_std=0.01
)

# BPR with Adam on sampled (user, positive, negative) triples; see benchmarks/ranking.py.
BPR = TrainConfig(
    model="bpr",
    embedding_dim=64,
    optimizer="adam",
    learning_rate=0.001,
    batch_size=2048,
    epochs=100,
    regularization=0.0001,
    init_std=0.01,
    patience=8,
)

# Biased MF by explicit ALS with weighted-lambda regularization: no learning rate, few iterations.
ALS = TrainConfig(
    model="als", embedding_dim=32, regularization=0.2, bias_regularization=10.0, epochs=50, patience=2,
)  # fmt: skip

# Bayesian MF by Gibbs sampling: the most accurate, the slowest (benchmarks/default_preset.py).
# 400 sweeps, 180 kept samples averaged; stored as their best rank-256 factorization.
BAYESIAN = TrainConfig(
    model="bayesian", embedding_dim=32, epochs=400, burn_in=40, samples=180, posterior_rank=256,
    noise_precision=2.0, init_std=0.1, patience=0,
)  # fmt: skip

# Biased MF by the compiled per-rating SGD engine: a little less accurate than the default, several
# times faster to fit (benchmarks/time_to_accuracy.py).
FAST = TrainConfig(
    engine="compiled",
    embedding_dim=64,
    learning_rate=0.01,
    regularization=0.1,
    bias_regularization=0.02,
    init_std=0.05,
    epochs=60,
    patience=3,
    threads=1,
)

PRESETS: dict[str, TrainConfig] = {
    "default": DEFAULT,
    "notebook": NOTEBOOK,
    "fast": FAST,
    "bayesian": BAYESIAN,
    "als": ALS,
    "implicit": IMPLICIT,
    "bpr": BPR,
}
#: The preset a model kind starts from when only ``--model`` is given.
MODEL_PRESETS = {
    "dot": "default",
    "biased": "default",
    "bayesian": "bayesian",
    "als": "als",
    "implicit_als": "implicit",
    "bpr": "bpr",
}


def preset(name: str) -> TrainConfig:
    """The named preset's :class:`TrainConfig`."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON config: either a TrainConfig's fields or a run config with a ``train`` key."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a JSON config ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    return values.get("train", values)
