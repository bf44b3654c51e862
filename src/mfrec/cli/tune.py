"""``mfrec tune`` (Optuna search on validation) and ``mfrec cv`` (k-fold cross-validation)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mfrec.cli.options import FORMAT, assemble_train_config, data_options, echo_table, load_data, train_options


@click.command()
@data_options
@click.option("--trials", type=int, default=30, show_default=True)
@click.option("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
@click.option("--seed", type=int, default=42, show_default=True, help="seeds the split, the sampler and the models")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/tune"), show_default=True)
def tune(trials: int, timeout: float | None, seed: int, out: Path, **kw: Any) -> None:
    """Search hyperparameters on validation RMSE (Optuna); writes best.json for `mfrec train --config`."""
    from mfrec.data import split_ratings
    from mfrec.tune import save_tuning
    from mfrec.tune import tune as search

    data = load_data(kw)
    split = split_ratings(data, "stratified", seed=seed)
    best, table = search(split, trials=trials, seed=seed, timeout=timeout, progress=sys.stderr.isatty())
    save_tuning(best, table, out)
    shown = table.sort_values("val_rmse").head(10)
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"\nbest validation RMSE {table['val_rmse'].min():.4f}; wrote {out}/best.json, trials.csv, search.png")
    click.echo(f"train it: mfrec train --config {out}/best.json ...")


@click.command()
@data_options
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--preset", default=None, help="a named preset (see `mfrec presets`)")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
@train_options
@FORMAT
def cv(folds: int, preset: str | None, config_file: Path | None, fmt: str, **kw: Any) -> None:
    """K-fold cross-validation: RMSE, MAE (stars) and NDCG@10 per fold, with mean and standard deviation."""
    from mfrec.tune import cross_validate

    _, config = assemble_train_config(kw, preset, config_file)
    table = cross_validate(load_data(kw), config, folds=folds, seed=config.seed)
    echo_table(table, fmt)
