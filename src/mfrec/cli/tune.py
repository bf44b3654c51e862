"""``mfrec tune`` (Optuna search on validation) and ``mfrec cv`` (k-fold cross-validation)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mfrec.cli.options import (
    FORMAT,
    FiniteFloat,
    LocalPath,
    StrictCommand,
    assemble_train_config,
    data_options,
    echo_table,
    load_data,
    option_given,
    train_options,
)
from mfrec.cli.render import K_OPTION, nothing_to_rank


@click.command(cls=StrictCommand)
@data_options
@click.option("--preset", default=None, help="start from this preset (trial 0) [the --model's own]")
@click.option("--config", "config_file", type=LocalPath(), default=None,
              help="start from this JSON file of training options (trial 0)")  # fmt: skip
@train_options
@click.option("--metric", default=None,
              help="validation metric: rmse, mae, or a ranking metric such as ndcg@10 or recall@20 "
                   "[rmse for rating models, ndcg@K for ranking models]")  # fmt: skip
@K_OPTION
@click.option("--trials", type=click.IntRange(min=1), default=30, show_default=True,
              help="trials in all, trial 0 (the starting config) included")  # fmt: skip
@click.option("--timeout", type=FiniteFloat(min=0, min_open=True, max=1e9), default=None,
              help="stop starting trials after this many seconds (trial 0 always runs)")
@click.option("--out", type=LocalPath(file_okay=False), default=Path("runs/tune"), show_default=True)
def tune(preset: str | None, config_file: Path | None, metric: str | None, k: int, trials: int,
         timeout: float | None, out: Path, **kw: Any) -> None:  # fmt: skip
    """Search one model's hyperparameters on a validation metric (Optuna), starting from its preset as trial 0;
    writes best.json for `mfrec train --config`."""
    from mfrec.data import split_ratings
    from mfrec.models import registry
    from mfrec.tune import Metric, check_tuning_output, save_tuning
    from mfrec.tune import tune as search

    check_tuning_output(out)  # before any trial: a folder holding someone else's best.json is refused now
    _, base = assemble_train_config(kw, preset, config_file)
    seed = base.seed  # --seed seeds the split, the sampler and the models
    text = metric or ("rmse" if registry.get(base.model).predicts_ratings else "ndcg")
    chosen = Metric.parse(text)
    if option_given("k"):  # a --k the metric does not use would be ignored without a word
        if chosen.k is None:
            default = "" if metric else f" (the default for {base.model!r})"
            raise click.UsageError(f"--k does not apply to --metric {text}{default}: a rating metric has no cut-off; "
                                   "leave it out")  # fmt: skip
        if "@" in text and chosen.k != k:
            raise click.UsageError(f"--metric {text} has its own cut-off; leave out --k {k}")
        chosen = Metric.parse(text, k)
    data = load_data(kw)
    split = split_ratings(data, "stratified", seed=seed)
    interactive = sys.stderr.isatty()
    log = None if interactive else (lambda line: click.echo(line, err=True))
    result = search(split, base=base, metric=chosen, trials=trials, seed=seed, timeout=timeout,
                    progress=interactive, log=log)  # fmt: skip
    save_tuning(result.best, result.table, out)
    column = f"val_{chosen.label}"
    shown = result.table.sort_values(column, ascending=not chosen.higher_is_better).head(10)
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if result.improved:
        click.echo(f"\nbest validation {chosen.label} {result.best_score:.4f}, against {result.base_score:.4f} for "
                   "the starting config (trial 0)")  # fmt: skip
    else:
        click.echo(f"\nno trial beat the starting config (trial 0, validation {chosen.label} "
                   f"{result.base_score:.4f}); best.json is the starting config")  # fmt: skip
    click.echo(f"wrote {out}/best.json, trials.csv, search.png; train it: mfrec train --config {out}/best.json ...")


@click.command(cls=StrictCommand)
@data_options
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--preset", default=None, help="a named preset (see `mfrec presets`)")
@click.option("--config", "config_file", type=LocalPath(), default=None)
@train_options
@K_OPTION
@FORMAT
def cv(folds: int, preset: str | None, config_file: Path | None, k: int, fmt: str, **kw: Any) -> None:
    """K-fold cross-validation: RMSE, MAE (stars) and NDCG@k per fold, with mean and standard deviation."""
    from mfrec.tune import cross_validate

    _, config = assemble_train_config(kw, preset, config_file)
    log = None if sys.stderr.isatty() else (lambda line: click.echo(line, err=True))
    table = cross_validate(load_data(kw), config, folds=folds, seed=config.seed, k=k, log=log)
    echo_table(table, fmt)
    per_fold = table.iloc[:folds]
    undefined = per_fold["fold"][per_fold[f"ndcg@{k}"].isna()].tolist()
    if undefined:  # NaN, not 0: the fold had no test user with a liked rating
        which = f"fold {undefined[0]}" if len(undefined) == 1 else f"folds {', '.join(map(str, undefined))}"
        mean = " (the mean is over the other folds)" if len(undefined) < folds else ""
        click.echo(f"{which}: " + nothing_to_rank(k, "test user has a relevant rating (at or above the threshold)")
                   + mean, err=fmt != "table")  # fmt: skip
