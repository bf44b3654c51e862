"""Configuration: a model kind with its own Config plus the shared TrainOptions, the split, the run.

Names are the same in the config file, the CLI (``--embedding-dim``) and the
Python API (``embedding_dim=``). The presets are registered with their models
(:mod:`mfrec.models.registry`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mfrec.errors import ConfigError
from mfrec.training.options import TrainOptions

#: The fields and defaults of the single flat TrainConfig of mfrec 0.1 model files and run folders.
#: A config file may still carry them all: a field that does not apply to its model is dropped
#: when it holds this default (it never meant anything), and is an error otherwise.
LEGACY_DEFAULTS: dict[str, Any] = {
    "embedding_dim": 64, "optimizer": "adam", "learning_rate": 0.005, "batch_size": 1024, "epochs": 40,
    "regularization": 0.15, "bias_regularization": 0.0, "init_std": 0.01, "rating_divisor": 1.0,
    "notebook_einsum": False, "patience": 3, "device": "auto", "seed": 42, "threads": 0, "alpha": 1.0,
    "confidence": "rating", "unobserved_weight": 1.0, "reg_exponent": 0.0, "cg_steps": 3, "engine": "torch",
    "target_rmse": 0.0, "burn_in": 20, "samples": 32, "noise_precision": 2.0, "posterior_rank": 0,
}  # fmt: skip


def _registry():
    from mfrec.models import registry

    return registry


def _every_field() -> list[dataclasses.Field]:
    """The fields of every registered model's Config, then those of :class:`TrainOptions`."""
    return [f for spec in _registry().SPECS.values() for f in fields(spec.config)] + list(fields(TrainOptions))


def option_fields() -> dict[str, dataclasses.Field]:
    """Every option name of every model's Config and of :class:`TrainOptions`, with its field (first wins)."""
    found: dict[str, dataclasses.Field] = {}
    for f in _every_field():
        found.setdefault(f.name, f)
    return found


def option_choices() -> dict[str, list[str]]:
    """The allowed values of each option with choices, over every model (each model checks its own)."""
    found: dict[str, list[str]] = {}
    for f in _every_field():
        for value in f.metadata.get("choices") or ():
            if value not in found.setdefault(f.name, []):
                found[f.name].append(value)
    return found


class TrainConfig:
    """A model kind, its own Config and the shared :class:`TrainOptions`: everything one fit needs.

    Built from flat names, the same as in the config file and on the command line::

        TrainConfig("implicit_als", embedding_dim=64, regularization=10.0, seed=1)

    Unnamed values take the model's defaults (its main preset). A name that is not
    an option of the model is a :class:`ConfigError` naming the model. Attributes
    read through to the Config and then the options (``config.embedding_dim``,
    ``config.seed``); ``params`` and ``options`` are the two parts.
    """

    __slots__ = ("model", "options", "params")

    def __init__(self, model: str | None = None, params: Any = None, options: TrainOptions | None = None,
                 **values: Any) -> None:  # fmt: skip
        spec = _registry().get(_registry().DEFAULT_MODEL if model is None else model)
        params = spec.config() if params is None else params
        options = TrainOptions(**spec.options) if options is None else options
        object.__setattr__(self, "model", spec.name)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "options", options)
        if values:
            params, options = self._split(values)
            object.__setattr__(self, "params", params)
            object.__setattr__(self, "options", options)
        self._validate()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a TrainConfig is frozen; use replace()")

    def _split(self, values: dict[str, Any]) -> tuple[Any, TrainOptions]:
        own, shared = set(self.params.names()), set(TrainOptions.names())
        unknown = sorted(set(values) - own - shared)
        if unknown:
            everywhere = set(option_fields())
            foreign = [name for name in unknown if name in everywhere]
            if foreign:
                raise ConfigError(
                    f"{', '.join(foreign)}: not an option of the {self.model!r} model "
                    f"(its options: {', '.join(sorted(own))})"
                )
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
        try:
            params = self.params.replace(**{k: v for k, v in values.items() if k in own})
        except ConfigError as exc:  # a model's own option: say whose, as allowed values differ by model
            if getattr(exc, "option", None) not in own:
                raise
            raise ConfigError(f"the {self.model!r} model's {exc}") from None
        options = self.options.replace(**{k: v for k, v in values.items() if k in shared})
        return params, options

    def _validate(self) -> None:
        spec, options = self.spec, self.options
        if not spec.early_stopping and (options.patience or options.target_rmse):
            raise ConfigError(f"the {self.model!r} model does not stop early: set patience and target_rmse to 0")
        if not spec.predicts_ratings and options.target_rmse:
            raise ConfigError(f"target_rmse needs a rating model; {self.model!r} only ranks items")
        if getattr(self.params, "engine", None) == "compiled" and options.device == "cuda":
            raise ConfigError(f"the compiled engine of the {self.model!r} model runs on the CPU; "
                              "for cuda use --engine torch")  # fmt: skip
        if options.device != "auto" and options.device not in spec.devices:
            raise ConfigError(f"the {self.model!r} model trains on {', '.join(spec.devices)}, not {options.device}")

    @property
    def spec(self):
        """This model's :class:`~mfrec.models.registry.ModelSpec`."""
        return _registry().get(self.model)

    @property
    def predicts_ratings(self) -> bool:
        return self.spec.predicts_ratings

    @property
    def training_device(self) -> str:
        """The device to train on: ``auto`` is CPU for an engine that runs only there (compiled), else as given."""
        cpu_only = getattr(self.params, "engine", "torch") == "compiled" or "cuda" not in self.spec.devices
        return "cpu" if self.options.device == "auto" and cpu_only else self.options.device

    @property
    def rating_divisor(self) -> float:
        """Rating models learn rating / this; 1 for ranking models."""
        return float(getattr(self.params, "rating_divisor", 1.0))

    def __getattr__(self, name: str) -> Any:
        for part in ("params", "options"):
            value = object.__getattribute__(self, part)
            if name in value.names():
                return getattr(value, name)
        raise AttributeError(f"{name!r} is not an option of the {object.__getattribute__(self, 'model')!r} model")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``; another ``model`` starts from that model's defaults, keeping device, seed and
        threads."""
        model = changes.pop("model", self.model)
        if model == self.model:
            return TrainConfig(model, self.params, self.options, **changes)
        spec = _registry().get(model)
        options = TrainOptions(**{**spec.options, "device": self.device, "seed": self.seed, "threads": self.threads})
        return TrainConfig(model, None, options, **changes)

    def check_distributed(self) -> None:
        """Data-parallel training covers the torch engine of the models registered for it; say so for the rest."""
        engine = getattr(self.params, "engine", "torch")
        if not self.spec.distributed or engine != "torch":
            able = [s.name for s in _registry().SPECS.values() if s.distributed]
            raise ConfigError(
                f"--nproc/torchrun trains the {' and '.join(able)} models with the torch engine; "
                f"not {self.model!r} with the {engine} engine"
            )
        if getattr(self.params, "optimizer", None) == "sparse_adam":
            raise ConfigError(
                "sparse_adam cannot train on several ranks (bias tables are dense there); use adam, adagrad or sgd"
            )

    def to_dict(self) -> dict[str, Any]:
        """Flat: ``model``, then the model's options, then the training options."""
        return {"model": self.model, **self.params.to_dict(), **self.options.to_dict()}

    @classmethod
    def from_dict(cls, values: Any, *, saved: bool = False, where: str = "config") -> TrainConfig:
        """Build from flat names, as written by :meth:`to_dict` or by hand.

        Names that do not apply to the model are an error, except the 0.1 format's
        defaults (:data:`LEGACY_DEFAULTS`); ``saved=True`` (files mfrec wrote itself)
        drops every name that does not apply.
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: the training options must be a JSON object, not {type(values).__name__}")
        values = dict(values)
        model = values.pop("model", _registry().DEFAULT_MODEL)
        return cls(model, **applicable(values, model, saved=saved))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        return f"TrainConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def __reduce__(self):  # spawned ranks receive their config by pickling within one run
        return (TrainConfig.from_dict, (self.to_dict(),))


@dataclass(frozen=True)
class SplitConfig:
    """How ratings are divided; see :func:`mfrec.data.split_ratings`.

    ``method="none"`` trains on every rating (a deployment fit, nothing evaluated);
    ``method="files"`` reads a split made elsewhere from ``files`` (train, val, test).
    """

    method: str = "stratified"
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 42
    holdout: int = 1
    files: tuple[str, str, str] | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SplitConfig:
        files = values.get("files")
        return cls(str(values["method"]), tuple(values["fractions"]), values["seed"], values["holdout"],
                   tuple(str(f) for f in files) if files else None)  # fmt: skip


@dataclass(frozen=True)
class RunConfig:
    """Everything a ``mfrec train`` run needs, written to ``config.json`` in full."""

    preset: str = "default"
    dataset: str | None = "ml-latest-small"
    ratings_file: str | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    split: SplitConfig = field(default_factory=SplitConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig())
    #: the cut-off of the run's ranking metrics (NDCG@k, recall@k, ...)
    k: int = 10
    #: a profile database whose ratings join the data (``--feedback``)
    feedback: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"k (the ranking cut-off) must be a whole number of at least 1, not {self.k!r}")

    def located(self) -> RunConfig:
        """This config with its local files (ratings, split files, items file, a SQLite database) as absolute paths.

        ``config.json`` records them so, so that ``--refit`` and ``--resume`` read the same files
        from any working folder. Other database URLs stay as given.
        """
        from mfrec.data.profiles import is_database_url

        def absolute(path: str | None) -> str | None:
            if path is None:
                return None
            if not is_database_url(path):
                return str(Path(path).absolute())
            if path.startswith("sqlite:///") and not path.startswith("sqlite:////"):  # a relative database file
                name, sep, query = path[len("sqlite:///") :].partition("?")
                return path if name in ("", ":memory:") else f"sqlite:///{Path(name).absolute()}{sep}{query}"
            return path

        files = tuple(absolute(f) for f in self.split.files) if self.split.files else self.split.files
        columns = {**self.columns, "items": absolute(self.columns["items"])} if self.columns.get("items") else \
            self.columns  # fmt: skip
        return replace(self, ratings_file=absolute(self.ratings_file), columns=columns,
                       split=replace(self.split, files=files), feedback=absolute(self.feedback))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        split = asdict(self.split)
        if split["files"] is None:
            del split["files"]  # configs of other splits read as before
        values = {"preset": self.preset, "dataset": self.dataset, "ratings_file": self.ratings_file,
                  "columns": self.columns, "split": split, "train": self.train.to_dict(), "k": self.k}  # fmt: skip
        if self.feedback is not None:
            values["feedback"] = self.feedback  # configs without feedback read as before
        return values


def applicable(values: dict[str, Any], model: str, *, saved: bool = False) -> dict[str, Any]:
    """``values`` without the names that do not apply to ``model`` but say nothing: the 0.1 format's
    defaults (:data:`LEGACY_DEFAULTS`), or every such name when ``saved`` (files mfrec wrote itself).
    Other names that do not apply are kept, so that building the config reports them."""
    spec = _registry().get(model)
    applies = set(spec.config.names()) | set(TrainOptions.names()) | {"model"}
    return {
        name: value
        for name, value in values.items()
        if name in applies or not (saved or (name in LEGACY_DEFAULTS and value == LEGACY_DEFAULTS[name]))
    }


def assemble(preset_name: str | None = None, file_values: dict[str, Any] | None = None,
             values: dict[str, Any] | None = None, *,
             source: str | None = None) -> tuple[str, TrainConfig]:  # fmt: skip
    """The config of ``mfrec train``/``cv``: a preset, then a config file's values, then explicit ones.

    The model is the explicit one, else the file's, else the preset's. A preset of
    another model is an error; without a preset, the model's own first preset (or its
    defaults) is the start. An error in the file's values names ``source`` (the file).
    Returns ``(preset name, config)``.
    """
    file_values, values = dict(file_values or {}), dict(values or {})
    model = values.pop("model", None)
    if model is None and "model" in file_values:
        model = file_values.pop("model")
        with _naming(source):
            _registry().get(model)
    if preset_name is None:
        model = model or _registry().DEFAULT_MODEL
        preset_name = default_preset(model)
        base = starting_config(model)
    else:
        base = preset(preset_name)
        if model is not None and _registry().get(model).name != base.model:
            raise ConfigError(f"the {preset_name!r} preset trains the {base.model!r} model, not {model!r}; "
                              f"drop --preset or --model")  # fmt: skip
    file_values.pop("model", None)
    with _naming(source):
        config = base.replace(**applicable(file_values, base.model))
    return preset_name, config.replace(**values)


@contextlib.contextmanager
def _naming(source: str | None):
    """Prefix a :class:`ConfigError` raised inside with ``source`` (a config file), when given."""
    try:
        yield
    except ConfigError as exc:
        if source is None:
            raise
        raise ConfigError(f"{source}: {exc}") from None


def preset_names() -> list[str]:
    return list(_registry().presets())


def preset(name: str) -> TrainConfig:
    """The named preset's :class:`TrainConfig`."""
    try:
        model, values = _registry().presets()[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(preset_names())}") from None
    return TrainConfig(model, **values)


def default_preset(model: str) -> str:
    """The preset a model starts from when only ``--model`` is given; else the model's name (its defaults)."""
    spec = _registry().get(model)
    return spec.preset or spec.name


def starting_config(model: str) -> TrainConfig:
    """What ``--model NAME`` alone trains: its preset (see :func:`default_preset`), or its defaults."""
    name = default_preset(model)
    return preset(name) if name in preset_names() else TrainConfig(model)


def __getattr__(name: str) -> Any:
    if name == "PRESETS":  # every preset, built on first use (it imports the models)
        return {p: preset(p) for p in preset_names()}
    raise AttributeError(f"module 'mfrec.config' has no attribute {name!r}")


def read_json(path: str | Path, *, missing: str, hint: str = "") -> Any:
    """The JSON value in ``path``; :class:`ConfigError` with ``missing`` when there is no file, and with the
    reason (plus ``hint``) when it cannot be read or parsed."""
    from mfrec._io import parse_json

    path = Path(path)
    try:
        return parse_json(path.read_text(encoding="utf-8-sig"))  # a BOM, as some editors write, is not JSON
    except FileNotFoundError:
        raise ConfigError(missing) from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(f"{path}: not readable JSON ({' '.join(str(exc).split())}){hint}") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON config: either a TrainConfig's fields or a run config with a ``train`` key."""
    from mfrec._io import as_path

    path = as_path(path, "the config file")
    values = read_json(path, missing=f"{path}: no such config file")
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    values = values.get("train", values)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'train' must be a JSON object of training options, not {json.dumps(values)}")
    return values
