"""Hyperparameter search with Optuna, and k-fold cross-validation.

:func:`tune` searches model kind, embedding dim, learning rate, regularization,
epochs and batch size on validation RMSE (TPE sampler seeded from ``seed``);
each trial reports its validation RMSE per epoch so the median pruner can stop
hopeless trials early. The best configuration is a plain
:class:`~mfrec.config.TrainConfig` JSON that ``mfrec train --config`` reads.
Needs optuna (``pip install "mfrec[tune]"``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mfrec._io import atomic_write, atomic_write_text, write_manifest
from mfrec.config import TrainConfig
from mfrec.data.ratings import Ratings
from mfrec.data.split import Split
from mfrec.errors import ConfigError, OutputError
from mfrec.models import registry

#: What ``save_tuning`` writes (and lists in its SHA256SUMS).
TUNING_FILES = ("best.json", "trials.csv", "search.png")


def _suggest(trial, base: TrainConfig) -> TrainConfig:
    model = trial.suggest_categorical("model", registry.names(predicts_ratings=True, having="learning_rate"))
    return base.replace(
        model=model,
        embedding_dim=trial.suggest_categorical("embedding_dim", [16, 32, 64, 128]),
        learning_rate=trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
        regularization=trial.suggest_float("regularization", 1e-3, 0.5, log=True),
        epochs=trial.suggest_int("epochs", 5, 60),
        batch_size=trial.suggest_categorical("batch_size", [256, 512, 1024, 2048, 4096]),
        optimizer="adam",
    )


def tune(
    split: Split,
    *,
    trials: int = 30,
    seed: int = 42,
    base: TrainConfig | None = None,
    timeout: float | None = None,
    progress: bool = False,
) -> tuple[TrainConfig, pd.DataFrame]:
    """Search on ``split.train`` / ``split.val``; returns the best config and one row per trial."""
    try:
        import optuna
    except ImportError:
        raise ConfigError('tuning needs optuna: pip install "mfrec[tune]"') from None
    from mfrec.estimator import MatrixFactorization

    if trials < 1:
        raise ConfigError(f"trials must be at least 1, not {trials}")
    base = (base or TrainConfig(device="cpu")).replace(patience=3)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial) -> float:
        config = _suggest(trial, base).replace(seed=seed)

        def report(record) -> None:
            trial.report(record.val_rmse, record.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        model = MatrixFactorization(config).fit(split.train, split.val, on_epoch=report, interactions=split.test)
        return min(r.val_rmse for r in model.history_)

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    )
    study.optimize(objective, n_trials=trials, timeout=timeout, show_progress_bar=progress)
    table = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params"))
    table["duration"] = table["duration"].dt.total_seconds()
    table = table.rename(columns={"value": "val_rmse", "duration": "seconds"})
    table.columns = [c.removeprefix("params_") for c in table.columns]
    best = _suggest(optuna.trial.FixedTrial(study.best_params), base).replace(seed=seed)
    return best, table


def plot_search(table: pd.DataFrame, path: str | Path) -> Path:
    """Validation RMSE of every finished trial and the best so far, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = table[table["state"] == "COMPLETE"]
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(done["number"], done["val_rmse"], s=18, label="trial (best validation RMSE)", color="#1f77b4")
    pruned = table[table["state"] == "PRUNED"]
    if len(pruned):
        ax.scatter(pruned["number"], np.full(len(pruned), done["val_rmse"].max() if len(done) else 1.0),
                   marker="x", color="grey", label="pruned")  # fmt: skip
    if len(done):
        best = done.sort_values("number")["val_rmse"].cummin()
        ax.step(done.sort_values("number")["number"], best, where="post", color="#d62728", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation RMSE (stars)")
    ax.set_title("Hyperparameter search")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")  # by name, not suffix: the path may be a temporary file
    return Path(path)


def save_tuning(best: TrainConfig, table: pd.DataFrame, out: str | Path) -> Path:
    """Write ``best.json`` (for ``mfrec train --config``), ``trials.csv`` and ``search.png`` into ``out``."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "best.json", json.dumps(best.to_dict(), indent=2) + "\n")
        atomic_write(out / "trials.csv", lambda tmp: table.to_csv(tmp, index=False))
        atomic_write(out / "search.png", lambda tmp: plot_search(table, tmp))
        write_manifest(out, TUNING_FILES)
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def cross_validate(data: Ratings, config: TrainConfig, *, folds: int = 5, seed: int = 42) -> pd.DataFrame:
    """K-fold cross-validation of RMSE/MAE (stars).

    Ratings are shuffled with ``seed`` and cut into ``folds`` parts; each part is
    the test set once, and the others are split 75/25 (random, same seed) into
    train and validation for early stopping. Returns one row per fold plus
    ``mean`` and ``std`` rows.
    """
    from mfrec.estimator import MatrixFactorization

    if not 2 <= folds <= 50:
        raise ConfigError(f"folds must be from 2 to 50, not {folds}")
    if len(data) < folds * 3:
        raise ConfigError(f"{len(data)} ratings are too few for {folds} folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    parts = np.array_split(order, folds)
    rows = []
    for k, test_rows in enumerate(parts):
        rest = rng.permutation(np.concatenate([p for j, p in enumerate(parts) if j != k]))
        cut = len(rest) * 3 // 4
        train, val, test = data.subset(rest[:cut]), data.subset(rest[cut:]), data.subset(test_rows)
        model = MatrixFactorization(config).fit(train, val, interactions=test)
        metrics = model.evaluate(test) if model.predicts_ratings else {}
        ranking = model.evaluate_ranking(test, train=train)
        rows.append({"fold": k + 1, **{m: metrics[m] for m in ("rmse", "mae") if m in metrics},
                     "ndcg@10": ranking["ndcg"], "epochs": len(model.history_)})  # fmt: skip
    table = pd.DataFrame(rows)
    summary = table.drop(columns=["fold"]).agg(["mean", "std"])
    summary.insert(0, "fold", summary.index)
    return pd.concat([table.astype({"fold": object}), summary], ignore_index=True)
