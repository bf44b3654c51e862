"""The model registry: every model kind, by name, with everything the rest of mfrec needs to know of it.

An entry (:class:`ModelSpec`) names the module (the math), its frozen Config
(its hyperparameters), its trainer per engine, whether it predicts ratings,
the devices it runs on, its presets and its small settings for tests. The
estimator, the CLI, run folders, the store, tuning, the distributed launcher
and serving all ask here; nothing outside :mod:`mfrec.models` compares model
names. Adding a model is one module and one entry below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from mfrec.errors import ConfigError
from mfrec.models.als import ALSConfig, ExplicitALS
from mfrec.models.base import Model, ModelConfig
from mfrec.models.bayesian import BayesianConfig, BayesianMF
from mfrec.models.bayesian_svdpp import BayesianSVDpp, BayesianSVDppConfig
from mfrec.models.biased import BiasedConfig, BiasedMF
from mfrec.models.bpr import BPR, BPRConfig
from mfrec.models.dot import DotConfig, DotMF
from mfrec.models.ease import EASE, EASEConfig, EASETrainer
from mfrec.models.implicit_als import ImplicitALS, ImplicitALSConfig
from mfrec.training.als import ExplicitALSTrainer
from mfrec.training.compiled import CompiledTrainer
from mfrec.training.gibbs import CompiledGibbsTrainer, GibbsTrainer, SVDppGibbsTrainer
from mfrec.training.ranking import BPRTrainer, CompiledBPRTrainer, CompiledImplicitALSTrainer, ImplicitALSTrainer
from mfrec.training.sgd import GradientTrainer


def _frozen(values: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Range:
    """A numeric interval for tuning: integers when both ends are ints, sampled on a log scale with ``log``."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """One registered model kind.

    Attributes:
        name: the name used by ``--model``, config files and model files.
        module: the ``nn.Module`` (or solver) class; built by its ``from_config``.
        config: its frozen Config dataclass (hyperparameters only).
        trainers: engine name -> Trainer class; a Config with an ``engine`` field picks one.
        predicts_ratings: RMSE applies, scores are stars; otherwise the model only ranks.
        summary: one line for logs and help.
        devices: where it trains.
        early_stopping: whether ``patience``/``target_rmse`` apply (not to a sampler or a closed form).
        distributed: whether ``--nproc``/torchrun can train it (the torch engine).
        presets: preset name -> flat overrides of the Config and :class:`TrainOptions`.
        preset: the preset ``--model NAME`` alone starts from (``None``: the Config's defaults).
        options: this model's defaults for :class:`~mfrec.training.options.TrainOptions`.
        quick: small settings that fit the tiny test data in well under a second.
        search: what ``mfrec tune`` searches: option name -> a :class:`Range` or a tuple of choices
            (the preset's own value is always part of the space; the others stay at the preset's).
    """

    name: str
    module: type[Model]
    config: type[ModelConfig]
    trainers: Mapping[str, type]
    predicts_ratings: bool
    summary: str
    devices: tuple[str, ...] = ("cpu", "cuda")
    early_stopping: bool = True
    distributed: bool = False
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=_frozen)
    preset: str | None = None
    options: Mapping[str, Any] = field(default_factory=_frozen)
    quick: Mapping[str, Any] = field(default_factory=_frozen)
    search: Mapping[str, Any] = field(default_factory=_frozen)

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(self.trainers)

    def engine_for(self, config: ModelConfig, device: torch.device | str = "cpu") -> str:
        """The engine that trains ``config`` on ``device``: ``auto`` is torch on a GPU and compiled elsewhere."""
        engine = getattr(config, "engine", next(iter(self.trainers)))
        if engine == "auto":
            return "torch" if torch.device(device).type == "cuda" else "compiled"
        return engine

    def trainer_for(self, config: ModelConfig, device: torch.device | str = "cpu") -> type:
        return self.trainers[self.engine_for(config, device)]

    def describe(self, config: ModelConfig, device: torch.device | str | None = None) -> str:
        """The model and the hyperparameters that apply to it, for a log line (with ``device``: the engine it picks)."""

        def shown(name: str) -> str:
            value = getattr(config, name)
            if name == "engine" and value == "auto" and device is not None:
                return f"engine auto ({self.engine_for(config, device)})"
            return f"{name} {value}"

        values = ", ".join(shown(name) for name in config.relevant())
        return f"{self.name} ({self.summary}): {values}"


SPECS: dict[str, ModelSpec] = {}
#: The model a config without a ``model`` trains.
DEFAULT_MODEL = "biased"


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in SPECS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    SPECS[spec.name] = spec
    return spec


def get(name: Any) -> ModelSpec:
    """The spec registered as ``name``; :class:`ConfigError` listing the names otherwise."""
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"model must be one of {', '.join(SPECS)}, not {name!r}") from None


def names(*, predicts_ratings: bool | None = None, having: str | None = None) -> list[str]:
    """Registered names, optionally only rating (or ranking) models, or those whose Config has field ``having``."""
    return [
        name for name, spec in SPECS.items()
        if (predicts_ratings is None or spec.predicts_ratings == predicts_ratings)
        and (having is None or having in spec.config.names())
    ]  # fmt: skip


def presets() -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Every preset: name -> (model name, flat overrides)."""
    return {preset: (spec.name, values) for spec in SPECS.values() for preset, values in spec.presets.items()}


# ------------------------------------------------------------------ the entries
_QUICK = {"embedding_dim": 4, "epochs": 8}
_SGD_SEARCH = {"embedding_dim": (16, 32, 64, 128), "learning_rate": Range(1e-3, 3e-2, log=True),
               "regularization": Range(1e-3, 0.5, log=True), "epochs": Range(5, 60),
               "batch_size": (256, 512, 1024, 2048, 4096)}  # fmt: skip

register(ModelSpec(
    "biased", BiasedMF, BiasedConfig, {"torch": GradientTrainer, "compiled": CompiledTrainer},
    predicts_ratings=True, summary="biased MF, mu + b_u + b_i + p.q", distributed=True,
    presets={
        "default": {},
        # compiled per-rating SGD: a little less accurate than the default, several times faster to fit
        "fast": {"engine": "compiled", "learning_rate": 0.01, "regularization": 0.1, "bias_regularization": 0.02,
                 "init_std": 0.05, "epochs": 60, "threads": 1},
    },
    preset="default", quick={"embedding_dim": 4, "epochs": 10, "batch_size": 128, "learning_rate": 0.1},
    search=_SGD_SEARCH,
))  # fmt: skip
register(ModelSpec(
    "dot", DotMF, DotConfig, {"torch": GradientTrainer, "compiled": CompiledTrainer},
    predicts_ratings=True, summary="plain MF, p.q (the notebook's model)", distributed=True,
    presets={
        # the notebook: nn.Embedding (N(0,1) init), dim 16, SGD lr 0.001, batch 256, 500 epochs, rating / 5
        "notebook": {"embedding_dim": 16, "optimizer": "sgd", "learning_rate": 0.001, "batch_size": 256,
                     "epochs": 500, "regularization": 0.0, "init_std": 1.0, "rating_divisor": 5.0, "patience": 0},
    },
    quick={"embedding_dim": 6, "epochs": 14, "batch_size": 128, "learning_rate": 0.1, "init_std": 0.3},
    search=_SGD_SEARCH,
))  # fmt: skip
register(ModelSpec(
    "als", ExplicitALS, ALSConfig, {"torch": ExplicitALSTrainer},
    predicts_ratings=True, summary="biased MF by alternating least squares",
    presets={"als": {}}, options={"patience": 2},
    preset="als", quick={**_QUICK, "regularization": 0.05, "bias_regularization": 2.0},
    search={"embedding_dim": (8, 16, 32, 64), "regularization": Range(0.02, 2.0, log=True),
            "bias_regularization": Range(0.5, 50.0, log=True), "epochs": Range(5, 50)},
))  # fmt: skip
register(ModelSpec(
    "bayesian", BayesianMF, BayesianConfig, {"compiled": CompiledGibbsTrainer, "torch": GibbsTrainer},
    predicts_ratings=True, summary="Bayesian MF by Gibbs sampling, averaged over samples", early_stopping=False,
    presets={"bayesian": {}}, options={"patience": 0},
    preset="bayesian",
    quick={"embedding_dim": 4, "epochs": 20, "burn_in": 5, "samples": 10, "posterior_rank": 0, "init_std": 0.3},
    search={"embedding_dim": (8, 16, 32, 64), "noise_precision": Range(0.5, 8.0, log=True)},
))  # fmt: skip
register(ModelSpec(
    "bayesian_svdpp", BayesianSVDpp, BayesianSVDppConfig, {"compiled": SVDppGibbsTrainer},
    predicts_ratings=True, summary="Bayesian SVD++ with implicit user and item features, by Gibbs sampling",
    devices=("cpu",), early_stopping=False, presets={"accurate": {}}, options={"patience": 0},
    preset="accurate",
    quick={"embedding_dim": 4, "epochs": 20, "burn_in": 5, "samples": 10, "posterior_rank": 0, "init_std": 0.3},
    search={"embedding_dim": (8, 16, 32), "init_std": Range(0.03, 0.3, log=True)},
))  # fmt: skip
register(ModelSpec(
    "implicit_als", ImplicitALS, ImplicitALSConfig,
    {"compiled": CompiledImplicitALSTrainer, "torch": ImplicitALSTrainer},
    predicts_ratings=False, summary="implicit-feedback ALS, confidence-weighted",
    presets={"implicit": {}}, options={"patience": 0},
    preset="implicit", quick={**_QUICK, "regularization": 1.0},
    search={"embedding_dim": (32, 64, 128, 256), "regularization": Range(1.0, 300.0, log=True),
            "alpha": Range(0.1, 20.0, log=True), "confidence_offset": (0.0, 1.0),
            "unobserved_weight": Range(0.05, 2.0, log=True),
            "reg_exponent": Range(0.0, 1.0), "epochs": Range(5, 30)},
))  # fmt: skip
register(ModelSpec(
    "bpr", BPR, BPRConfig, {"compiled": CompiledBPRTrainer, "torch": BPRTrainer},
    predicts_ratings=False, summary="Bayesian personalized ranking, p.q + b_i",
    presets={"bpr": {}}, options={"patience": 0},  # the step decays to 0 over the epochs: run them all
    preset="bpr", quick={"embedding_dim": 8, "epochs": 40, "batch_size": 128, "learning_rate": 0.1,
                         "regularization": 0.001, "init_std": 0.1, "hard_negatives": 4},
    search={"embedding_dim": (64, 128, 256), "learning_rate": Range(0.005, 0.2, log=True),
            "regularization": Range(1e-3, 0.2, log=True), "epochs": Range(20, 200), "hard_negatives": Range(1, 20)},
))  # fmt: skip
register(ModelSpec(
    "ease", EASE, EASEConfig, {"torch": EASETrainer},
    predicts_ratings=False, summary="item-item ridge regression in closed form", early_stopping=False,
    presets={"ease": {}}, options={"patience": 0},
    preset="ease", quick={"regularization": 5.0},
    search={"regularization": Range(10.0, 3000.0, log=True)},
))  # fmt: skip
