"""Hyperparameter search with Optuna, and k-fold cross-validation.

:func:`tune` searches one model's hyperparameters (its registry entry's
``search`` space) on a validation metric: RMSE or MAE in stars (lower is
better) for rating models, or a ranking metric at a cut-off (``ndcg@10``,
``recall@20``; higher is better) for any model. The starting configuration (the
model's preset, with any options given) is trial 0, so the search never returns
something worse than it without saying so. Trials are drawn by a TPE sampler
seeded from ``seed``; where the metric is one the trainer reports per epoch
(validation RMSE, or NDCG@10 of ranking models), a median pruner stops hopeless
trials early. The best configuration is a plain :class:`~mfrec.config.TrainConfig`
JSON that ``mfrec train --config`` reads. Needs optuna (``pip install "mfrec[tune]"``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mfrec._io import MANIFEST, as_path, atomic_write, atomic_write_text, check_replaceable, write_manifest
from mfrec.config import TrainConfig
from mfrec.data.ratings import Ratings, require_ratings
from mfrec.data.split import Split
from mfrec.errors import ConfigError, DivergenceError, MfrecError, OutputError
from mfrec.evaluation.ranking import METRICS as RANKING_METRICS
from mfrec.models import registry

#: What ``save_tuning`` writes (and lists in its SHA256SUMS).
TUNING_FILES = ("best.json", "trials.csv", "search.png")
#: Rating metrics (stars, lower is better); every other metric is a ranking metric (higher is better).
RATING_METRICS = ("rmse", "mae")


@dataclass(frozen=True)
class Metric:
    """A validation metric: ``name`` (``rmse``, ``ndcg``, ...) and, for ranking metrics, its cut-off ``k``."""

    name: str
    k: int | None = None

    @classmethod
    def parse(cls, text: str, k: int | None = None) -> Metric:
        """``rmse``, ``mae``, ``ndcg@10``, or ``ndcg`` at ``k`` (10 when not given).

        A rating metric has no cut-off, so it takes no ``k``; a ranking metric that names its
        cut-off takes no other. A :class:`ConfigError` names the choices or the conflict.
        """
        name, at, cut = str(text).strip().lower().partition("@")
        choices = ", ".join([*RATING_METRICS, *(f"{m}@K" for m in RANKING_METRICS)])
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError(f"k must be a whole number of at least 1, not {k!r}")
        if name in RATING_METRICS and not at:
            if k is not None:
                raise ConfigError(f"{text!r} measures ratings and has no cut-off, so k={k} does not apply; leave k out")
            return cls(name)
        if name not in RANKING_METRICS:
            raise ConfigError(f"unknown metric {text!r}; choose from {choices}")
        if at:
            if not cut.isdigit() or int(cut) < 1:
                raise ConfigError(f"the cut-off of {text!r} must be a whole number of at least 1")
            if k is not None and k != int(cut):
                raise ConfigError(f"{text!r} has its own cut-off ({int(cut)}), and k={k} contradicts it; give one")
            k = int(cut)
        return cls(name, 10 if k is None else k)

    @property
    def label(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"

    @property
    def higher_is_better(self) -> bool:
        return self.name not in RATING_METRICS

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` found: the best config and score, trial 0's (the starting config), and every trial."""

    best: TrainConfig
    best_score: float
    base_score: float
    metric: Metric
    table: pd.DataFrame

    @property
    def improved(self) -> bool:
        """Whether a searched configuration beat the starting one (otherwise ``best`` is the starting one)."""
        return self.metric.better(self.best_score, self.base_score)


def _space(base: TrainConfig) -> dict[str, Any]:
    """The model's search space as Optuna distributions, widened so the starting value is inside it."""
    import optuna.distributions as d

    space = {}
    for name, where in registry.get(base.model).search.items():
        value = getattr(base, name)
        if isinstance(where, registry.Range):
            low, high = min(where.low, value), max(where.high, value)
            if isinstance(where.low, int) and isinstance(where.high, int):
                space[name] = d.IntDistribution(int(low), int(high), log=where.log)
            else:
                if where.log and low <= 0:  # a zero start cannot sit on a log scale
                    low = where.low
                space[name] = d.FloatDistribution(float(low), float(high), log=where.log)
        else:
            choices = tuple(where) if value in where else (*where, value)
            space[name] = d.CategoricalDistribution(choices)
    return space


def _start_params(base: TrainConfig, space: dict[str, Any]) -> dict[str, Any]:
    """Trial 0: the starting config's value of every searched name (those a log scale cannot hold left out)."""
    params = {}
    for name, dist in space.items():
        value = getattr(base, name)
        if hasattr(dist, "choices") or dist.low <= value <= dist.high:
            params[name] = value
    return params


def _suggest(trial, name: str, dist) -> Any:
    import optuna.distributions as d

    if isinstance(dist, d.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, d.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)


def validation_score(model, split: Split, metric: Metric) -> float:
    """``metric`` of a fitted model on ``split.val`` (ranking candidates exclude each user's training items)."""
    if metric.k is None:
        return float(model.evaluate(split.val)[metric.name])
    return float(model.evaluate_ranking(split.val, train=split.train, k=metric.k)[metric.name])


def tune(
    split: Split,
    *,
    base: TrainConfig | None = None,
    metric: str | Metric = "rmse",
    k: int | None = None,
    trials: int = 30,
    seed: int = 42,
    timeout: float | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search ``base``'s model on ``split.train`` / ``split.val`` for the best validation ``metric``.

    ``base`` (default: the biased model's preset on the CPU) is trial 0 and fixes every
    option that is not searched. ``k`` is the cut-off of a ranking ``metric`` that names none
    (10 when not given; see :meth:`Metric.parse`). ``trials`` counts trial 0. ``timeout`` (seconds) stops starting
    trials once passed; trial 0 always runs. ``log`` receives one line
    per finished trial (for output that is not a terminal); ``progress`` shows Optuna's bar.
    """
    if not isinstance(split, Split):
        raise ConfigError(f"split must be a Split (from mfrec.split_ratings or load_split), not {type(split).__name__}")
    try:
        import optuna
    except ImportError:
        raise ConfigError('tuning needs optuna: pip install "mfrec[tune]"') from None
    from mfrec.estimator import MatrixFactorization

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a whole number of at least 1, not {trials!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not 0 < timeout < float("inf")):  # fmt: skip
        raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
    metric = Metric.parse(metric.label if isinstance(metric, Metric) else metric, k)
    base = base or TrainConfig(device="cpu")
    spec = registry.get(base.model)
    if metric.k is None and not spec.predicts_ratings:
        raise ConfigError(f"{metric.name} measures predicted ratings, and {base.model!r} only ranks; "
                          f"use a ranking metric such as ndcg@{k or 10}")  # fmt: skip
    if len(split.val) == 0:
        raise ConfigError("tuning needs validation ratings, and the split has none")
    if metric.k is not None and not split.val.has_relevant:
        raise ConfigError(
            f"the validation part has no rating of at least {split.val.relevance_threshold:g}, "
            f"so {metric.label} has nothing to measure: tune on rmse or mae, or on more data"
        )
    base = base.replace(seed=seed)
    space = _space(base)
    # a trial's error is ours to report: Optuna's own warning for it carries the traceback
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    per_epoch = {"rmse": "val_rmse", "ndcg@10": "val_ndcg"}.get(metric.label)

    def objective(trial) -> float:
        config = base.replace(**{name: _suggest(trial, name, dist) for name, dist in space.items()})

        def report(record) -> None:
            value = getattr(record, per_epoch)
            if value is not None:
                trial.report(value, record.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        model = MatrixFactorization(config).fit(split.train, split.val, on_epoch=report if per_epoch else None,
                                                interactions=split.test)  # fmt: skip
        return validation_score(model, split, metric)

    study = optuna.create_study(
        direction="maximize" if metric.higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    )
    study.enqueue_trial(_start_params(base, space))  # trial 0: the starting config
    started = time.perf_counter()

    def tell(study, trial) -> None:
        if log is None:
            return
        failed = trial.state == optuna.trial.TrialState.FAIL
        shown = "diverged" if failed else "pruned" if trial.value is None else f"{metric.label} {trial.value:.4f}"
        if trial.number == 0:
            shown += f" ({base.model}'s starting config)"
        best = study.best_trial
        log(f"trial {trial.number}/{trials - 1}: {shown}; best {best.value:.4f} (trial {best.number}); "
            f"{time.perf_counter() - started:.0f} s")  # fmt: skip

    study.optimize(objective, n_trials=1, callbacks=[tell])  # trial 0 runs whatever the timeout; its error stops
    left = None if timeout is None else timeout - (time.perf_counter() - started)
    if trials > 1 and (left is None or left > 0):  # a later trial that diverges is a failed trial, not the end
        study.optimize(objective, n_trials=trials - 1, timeout=left, show_progress_bar=progress, callbacks=[tell],
                       catch=(DivergenceError,))  # fmt: skip
    table = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params"))
    table["duration"] = table["duration"].dt.total_seconds()
    table = table.rename(columns={"value": f"val_{metric.label}", "duration": "seconds"})
    table.columns = [c.removeprefix("params_") for c in table.columns]
    first = study.trials[0]
    if first.value is None:
        raise ConfigError(f"trial 0 (the starting config) did not finish ({first.state.name.lower()})")
    best_trial = study.best_trial
    best = base.replace(**{name: best_trial.params[name] for name in space if name in best_trial.params})
    return TuneResult(best, float(best_trial.value), float(first.value), metric, table)


def plot_search(table: pd.DataFrame, path: str | Path) -> Path:
    """The validation metric of every finished trial and the best so far, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    column = next(c for c in table.columns if c.startswith("val_"))
    label = column.removeprefix("val_")
    lower = label in RATING_METRICS
    done = table[table["state"] == "COMPLETE"]
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(done["number"], done[column], s=18, label=f"trial (validation {label})", color="#1f77b4")
    pruned = table[table["state"] == "PRUNED"]
    if len(pruned):
        worst = (done[column].max() if lower else done[column].min()) if len(done) else 0.0
        ax.scatter(pruned["number"], np.full(len(pruned), worst), marker="x", color="grey", label="pruned")
    if len(done):
        ordered = done.sort_values("number")
        best = ordered[column].cummin() if lower else ordered[column].cummax()
        ax.step(ordered["number"], best, where="post", color="#d62728", label="best so far")
        ax.scatter(ordered["number"].iloc[:1], ordered[column].iloc[:1], s=60, facecolors="none",
                   edgecolors="black", label="trial 0 (the starting config)")  # fmt: skip
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {label}" + (" (stars)" if lower else ""))
    ax.set_title("Hyperparameter search")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")  # by name, not suffix: the path may be a temporary file
    return Path(path)


def check_tuning_output(out: str | Path) -> Path:
    """``out`` as a Path, when :func:`save_tuning` may write there: a new folder, or one whose
    tuning files (if any) are an earlier result mfrec wrote, unchanged; else an ``OutputError``."""
    out = as_path(out, "out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; give --out a folder for the tuning result")
    if out.is_dir():
        check_replaceable(out, TUNING_FILES, MANIFEST, "a tuning result")
    return out


def save_tuning(best: TrainConfig, table: pd.DataFrame, out: str | Path) -> Path:
    """Write ``best.json`` (for ``mfrec train --config``), ``trials.csv`` and ``search.png`` into ``out``."""
    out = check_tuning_output(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "best.json", json.dumps(best.to_dict(), indent=2) + "\n")
        atomic_write(out / "trials.csv", lambda tmp: table.to_csv(tmp, index=False))
        atomic_write(out / "search.png", lambda tmp: plot_search(table, tmp))
        write_manifest(out, TUNING_FILES)
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def cross_validate(
    data: Ratings,
    config: TrainConfig,
    *,
    folds: int = 5,
    seed: int = 42,
    k: int = 10,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """K-fold cross-validation of RMSE/MAE (stars) and NDCG@``k``; ``log`` gets a line per fold.

    Ratings are shuffled with ``seed`` and cut into ``folds`` parts; each part is
    the test set once, and the others are split 75/25 (random, same seed) into
    train and validation for early stopping. Returns one row per fold plus
    ``mean`` and ``std`` rows.
    """
    from mfrec.estimator import MatrixFactorization

    require_ratings(data, "data")
    if not 2 <= folds <= 50:
        raise ConfigError(f"folds must be from 2 to 50, not {folds}")
    if len(data) < folds * 3:
        raise ConfigError(f"{len(data)} ratings are too few for {folds} folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    parts = np.array_split(order, folds)
    rows = []
    for fold, test_rows in enumerate(parts):
        rest = rng.permutation(np.concatenate([p for j, p in enumerate(parts) if j != fold]))
        cut = len(rest) * 3 // 4
        train, val, test = data.subset(rest[:cut]), data.subset(rest[cut:]), data.subset(test_rows)
        try:
            model = MatrixFactorization(config).fit(train, val, interactions=test)
        except MfrecError as exc:  # too little data in this fold's train part, say: name the fold
            raise type(exc)(f"fold {fold + 1} of {folds}: {exc}") from None
        metrics = model.evaluate(test) if model.predicts_ratings else {}
        ranking = model.evaluate_ranking(test, train=train, k=k)
        rows.append({"fold": fold + 1, **{m: metrics[m] for m in ("rmse", "mae") if m in metrics},
                     f"ndcg@{k}": ranking["ndcg"], "epochs": len(model.history_)})  # fmt: skip
        if log is not None:
            shown = ", ".join(f"{name} {value:.4f}" for name, value in rows[-1].items() if isinstance(value, float))
            log(f"fold {fold + 1}/{folds}: {shown}")
    table = pd.DataFrame(rows)
    summary = table.drop(columns=["fold"]).agg(["mean", "std"])
    summary.insert(0, "fold", summary.index)
    # object columns: a fold's epochs stay whole numbers beside the float mean and std
    return pd.concat([table.astype({"fold": object, "epochs": object}), summary], ignore_index=True)
