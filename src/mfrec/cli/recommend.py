"""``mfrec recommend``, ``similar`` and ``predict``: a saved model's answers, with titles."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mfrec.cli.options import (
    FORMAT,
    TOP_N,
    FiniteFloat,
    LocalPath,
    StrictCommand,
    echo_table,
    filter_options,
    filters,
    model_input,
    option_given,
)
from mfrec.options import SIMILARITIES


@click.command(cls=StrictCommand)
@model_input
@click.option("--user", default=None, help="raw user id")
@click.option(
    "--ratings",
    "new_ratings",
    default=None,
    metavar="ITEM=RATING,...",
    help='a new user\'s ratings, e.g. "318=5,858=4.5" (fold-in, no retraining)',
)
@click.option("--all-users", is_flag=True, help="every user with training data (needs --out)")
@click.option(
    "--users-file",
    type=LocalPath(dir_okay=False),
    default=None,
    help="user ids, one per line, or the user column of a CSV/TSV/Parquet table (needs --out)",
)
@click.option(
    "--out",
    type=LocalPath(dir_okay=False),
    default=None,
    help="write user, rank, item, stars (rating models) or score, title to this .parquet or .csv",
)
@TOP_N
@click.option("--include-seen", is_flag=True, help="do not exclude the items the user rated")
@click.option("--exclude", default=None, metavar="ITEM,...", help="item ids never to recommend")
@filter_options
@click.option("--explain", is_flag=True, help="add the rated items that added most to each score, with their share")
@FORMAT
def recommend(model_path: Path, user: str | None, new_ratings: str | None, all_users: bool,
              users_file: Path | None, out: Path | None, n: int, include_seen: bool, exclude: str | None,
              explain: bool, fmt: str, **kw) -> None:  # fmt: skip
    """Top-N items with titles for a user, a new user's ratings, or every user (to a file).

    Filters (--genre, --years, --min-ratings) choose the candidates before the top N is taken.
    """
    from mfrec.estimator import MatrixFactorization

    chosen = [user is not None, new_ratings is not None, all_users, users_file is not None]
    if sum(chosen) != 1:
        raise click.UsageError("give exactly one of --user ID, --ratings ITEM=RATING,..., --all-users, --users-file")
    if (all_users or users_file) and out is None:
        raise click.UsageError("--all-users and --users-file write to a file: add --out recs.parquet (or .csv)")
    if new_ratings is not None and include_seen:
        raise click.UsageError("--include-seen is for known users; a new user's rated items are always left out")
    if out is not None and option_given("fmt"):
        raise click.UsageError("--format is for the screen; --out writes .parquet or .csv, by its suffix")
    chosen_filters = filters(kw)
    model = MatrixFactorization.load(model_path)
    excluded = [model.item_id(x.strip()) for x in exclude.split(",") if x.strip()] if exclude else None
    if new_ratings is not None:
        recs = model.recommend_for_ratings(_parse_pairs(new_ratings), n, exclude=excluded, explain=explain,
                                           **chosen_filters)  # fmt: skip
        echo_table(recs.to_frame(), fmt)
        return _rating_model_note(model)
    if user is not None and out is None:
        recs = model.recommend(model.user_id(user), n, exclude_seen=not include_seen, exclude=excluded,
                               explain=explain, **chosen_filters)  # fmt: skip
        echo_table(recs.to_frame().drop(columns=["user"]), fmt)
        _untrained_note(model, user, "the list is not personal: it comes from what the model learned without them")
        return _rating_model_note(model)
    from mfrec.recommend import write_recommendations

    users = None
    if user is not None:
        users = [model.user_id(user)]
    elif users_file is not None:
        from mfrec.data.readers import read_ids

        ids = read_ids(users_file, "user")
        _check_users_file(model, ids, users_file)
        users = [model.user_id(x) for x in ids]
    rows = write_recommendations(model, out, users=users, n=n, exclude_seen=not include_seen, exclude=excluded,
                                 progress=sys.stderr.isatty(), explain=explain, **chosen_filters)  # fmt: skip
    click.echo(f"{rows:,} recommendations written to {out}")
    _rating_model_note(model)


def _check_users_file(model, ids: list[str], path: Path) -> None:
    """Every id of a ``--users-file`` is a user of the model; else one line naming where the first one that is
    not sits, why, and how many others are not either, so a batch is fixed in one pass rather than one id at a time."""
    import numpy as np

    from mfrec.errors import UnknownIdError

    missing = np.flatnonzero(model.user_map_.get_indexer(np.array(ids, dtype=object)) < 0)
    if not len(missing):
        return
    first = int(missing[0])
    reason = f"unknown user {ids[first]!r}"
    try:
        model.user_indices([model.user_id(ids[first])])
    except UnknownIdError as exc:  # its own words: unknown, or not an id of this model's kind
        reason = str(exc)
    header = " (if it is a header, name the column 'user')" if first == 0 and len(ids) > 1 else ""
    more = f"; {len(missing) - 1:,} more of its ids are not users either" if len(missing) > 1 else ""
    raise UnknownIdError(f"{path}: id {first + 1:,} of {len(ids):,}: {reason}{header}{more}")


def _untrained_note(model, user: str, what: str, item: str | None = None) -> None:
    """One line on stderr when ``user`` (or ``item``) had no training ratings (say, only held-out ones): the answer
    comes from what the model learned without them, which a table alone would not show."""
    unknown = [f"user {user}"] if not model.knows_user(user) else []
    unknown += [f"item {item}"] if item is not None and not model.knows_item(item) else []
    if unknown:
        click.echo(f"note: {' and '.join(unknown)} had no training ratings: {what}", err=True)


def _rating_model_note(model) -> None:
    """One line on stderr after a rating model's top-N: a ranking model orders items better."""
    if not model.predicts_ratings:
        return
    from mfrec.models import registry

    ranking = registry.names(predicts_ratings=False)
    click.echo(f"note: {model.config.model!r} predicts ratings (stars, clipped to the scale) and ranks worse than "
               f"a top-N model; for top-N, train --model {ranking[0]} (or {', '.join(ranking[1:])})",
               err=True)  # fmt: skip


def _parse_pairs(text: str) -> list[tuple[str, float]]:
    """``ITEM=RATING,...`` as (item, rating) pairs, in order; a repeated item is refused by the fold-in."""
    pairs: list[tuple[str, float]] = []
    for chunk in filter(None, (c.strip() for c in text.split(","))):
        item, sep, value = chunk.rpartition("=")
        try:
            if not sep or not item.strip():
                raise ValueError
            pairs.append((item.strip(), float(value)))
        except ValueError:
            raise click.BadParameter(f"{chunk!r} is not ITEM=RATING", param_hint="--ratings") from None
    if not pairs:
        raise click.BadParameter("no ITEM=RATING pairs given", param_hint="--ratings")
    return pairs


@click.command(cls=StrictCommand)
@model_input
@click.option("--item", required=True, help="raw item id")
@TOP_N
@click.option(
    "--shrinkage",
    type=FiniteFloat(),
    default=20.0,
    show_default=True,
    help="weight each similarity by n/(n+this): n = the users who rated both (the item's ratings for factors)",
)
@FORMAT
@click.option("--similar", "similar_by", type=click.Choice(SIMILARITIES), default=SIMILARITIES[0], show_default=True,
              help="ratings: rated alike by the same people; factors: the model's item factors (EASE: its weights); "
                   "cooccurrence: rated by the same people; auto: ratings, or factors for data without rating values")
@filter_options
def similar(model_path: Path, item: str, n: int, shrinkage: float, similar_by: str, fmt: str, **kw) -> None:
    """Nearest items, with titles: rated alike by the same people, by the model's item factors, or by co-occurrence."""
    from mfrec.estimator import MatrixFactorization

    chosen_filters = filters(kw)
    model = MatrixFactorization.load(model_path)
    item = model.item_id(item)
    frame = model.similar_items(item, n, shrinkage=shrinkage, similar=similar_by, **chosen_filters).to_frame()
    frame = frame.drop(columns=["query_item"])
    if fmt == "table":
        title = model.title(item)
        click.echo(f"items like {item}" + (f" ({title})" if title else "") + ":")
    echo_table(frame, fmt)


@click.command(cls=StrictCommand)
@model_input
@click.option("--user", required=True, help="raw user id")
@click.option("--item", required=True, help="raw item id")
@click.option("--fallback", is_flag=True, help="predict unknown ids from biases and the global mean")
def predict(model_path: Path, user: str, item: str, fallback: bool) -> None:
    """Predicted rating (stars) of one user for one item."""
    import numpy as np

    from mfrec.estimator import MatrixFactorization

    model = MatrixFactorization.load(model_path)
    u = model.user_id(user)
    i = model.item_id(item)
    value = model.predict(np.array([u]), np.array([i]), unknown="fallback" if fallback else "error")[0]
    title = model.title(i)
    click.echo(f"{value:.3f}" + (f"  (user {user}, {title})" if title else ""))
    _untrained_note(model, user, "predicted from what the model learned without them", item=item)
