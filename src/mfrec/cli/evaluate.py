"""``mfrec evaluate``: a saved model's metrics on a split part or a ratings file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from mfrec._io import json_text
from mfrec.cli.options import (
    FILE_OPTIONS,
    LocalPath,
    StrictCommand,
    flag_of,
    model_input,
    option_given,
    optional_column,
    ratings_file_options,
)
from mfrec.cli.render import K_OPTION, nothing_to_rank, ranking_columns


@click.command(cls=StrictCommand)
@model_input
@click.option(
    "--split",
    "split_file",
    type=LocalPath(),
    default=None,
    help="split.parquet of a run [the run folder's]",
)
@click.option("--part", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option(
    "--ratings",
    "ratings_file",
    type=LocalPath(dir_okay=False),
    default=None,
    help="evaluate on this ratings file instead of a split",
)
@ratings_file_options
@K_OPTION
@click.option("--json", "as_json", is_flag=True, help="print metrics as JSON")
def evaluate(
    model_path: Path, split_file: Path | None, part: str, ratings_file: Path | None, k: int, as_json: bool,
    **cols: Any,
) -> None:
    """RMSE and MAE (stars) and top-10 ranking metrics of a saved model on a split part or a ratings file."""
    from mfrec.data import Columns, load_split, read_ratings
    from mfrec.estimator import MatrixFactorization
    from mfrec.evaluation.ranking import named_metrics

    if ratings_file is not None and (split_file is not None or option_given("part")):
        raise click.UsageError("--split and --part choose a split's part; --ratings evaluates on that file instead")
    if ratings_file is None and (given := [name for name in FILE_OPTIONS if option_given(name)]):
        raise click.UsageError(f"{flag_of(given[0])} describes a --ratings file; without one it has nothing to read")
    model = MatrixFactorization.load(model_path)
    train = None
    if ratings_file is not None:
        ratings = read_ratings(
            ratings_file,
            columns=Columns(cols["user_col"], cols["item_col"], optional_column(cols["rating_col"]),
                            optional_column(cols["timestamp_col"])),
            sep=cols["sep"],
            scale=tuple(cols["scale"]),
            implicit=cols["implicit"],
        )
        where = str(ratings_file)
    else:
        if split_file is None:
            split_file = (model_path if model_path.is_dir() else model_path.parent) / "split.parquet"
        split = load_split(split_file)
        ratings, train = split.part(part), (split.train if part != "train" else None)
        where = f"{split_file} [{part}]"
        if len(ratings) == 0:
            from mfrec.errors import ConfigError

            how = "trained on every rating (--split none)" if split.method == "none" else "has no ratings there"
            raise ConfigError(f"{split_file}: the {part} part is empty (the run {how}); "
                              "evaluate on held-out ratings with --ratings FILE")  # fmt: skip
    rated = model.predicts_ratings and ratings.kind == "explicit"
    if model.predicts_ratings and not rated:
        click.echo("note: these are interactions without ratings: RMSE and MAE are not measured", err=True)
    metrics = model.evaluate(ratings) if rated else {"n": len(ratings)}
    on_train = ratings_file is None and part == "train"
    own = (model_path if model_path.is_dir() else model_path.parent) / "split.parquet"
    if not on_train and not (split_file is not None and own.exists() and own.resolve() == split_file.resolve()):
        trained_on = _trained_on(own, ratings)  # another split or a file: did the model train on these ratings?
        if trained_on is not None:
            metrics["trained_on"] = trained_on
        if trained_on:
            click.echo(f"note: {model_path} trained on {trained_on:,} of these {len(ratings):,} ratings (its run's "
                       "train part): the numbers measure fit, not prediction", err=True)  # fmt: skip
    if on_train:  # every training item is one the user has seen, and a top-k list leaves those out
        metrics.update({column: math.nan for column in ranking_columns(k)} | {"users": 0})
    else:
        metrics.update(named_metrics(model.evaluate_ranking(ratings, train=train, k=k)))
    if as_json:
        click.echo(json_text(metrics, indent=2), nl=False)
        return
    click.echo(f"{where}: {metrics['n']:,} {'ratings' if ratings.kind == 'explicit' else 'interactions'}")
    if rated:
        click.echo(
            f"RMSE {metrics['rmse']:.4f}  MAE {metrics['mae']:.4f} (stars)  notebook loss "
            f"{metrics['notebook_loss']:.4f}  unseen users {metrics['unseen_user']:,}, "
            f"unseen items {metrics['unseen_item']:,}"
        )
    if on_train:
        click.echo(f"top-{k}: not measured on the training part: its items are what each user has seen, which "
                   "recommendations leave out (use --part val or test)")  # fmt: skip
        return
    if not metrics["users"]:
        liked = "" if ratings.kind == "implicit" else f" with a rating of at least {ratings.relevance_threshold:g}"
        click.echo(nothing_to_rank(k, f"user the model knows has an item here{liked} that it did not train on"))
        return
    click.echo(
        f"top-{k}: "
        + "  ".join(f"{c.split('@')[0]} {metrics[c]:.4f}" for c in ranking_columns(k))
        + f"  ({metrics['users']} users)"
    )


def _trained_on(split_file: Path, ratings) -> int | None:
    """How many (user, item) pairs of ``ratings`` are in the train part of the run whose split is ``split_file``
    (None without one: a model file alone does not record what it trained on)."""
    from mfrec.data import load_split
    from mfrec.errors import MfrecError

    if not split_file.is_file():
        return None
    try:
        train = load_split(split_file).train
    except MfrecError:
        return None
    keys = [frame[["user", "item"]].astype(str) for frame in (train.to_frame(), ratings.to_frame())]
    return len(keys[1].merge(keys[0].drop_duplicates(), on=["user", "item"]))
