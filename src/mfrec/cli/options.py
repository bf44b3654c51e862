"""Options shared by several commands, and the small helpers they use.

The training options are built from the fields of every registered model's
Config and of :class:`~mfrec.training.options.TrainOptions`: a new model's
hyperparameters appear on the command line without touching the CLI.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import click


def train_option_specs() -> list[tuple[str, str, Any, str, bool]]:
    """``(flag, name, click type, help, is_flag)`` for every training option, ``--model`` first."""
    from mfrec.config import option_choices, option_fields
    from mfrec.models import registry

    specs = [("--model", "model", click.Choice(list(registry.SPECS)), "model kind", False)]
    from mfrec.options import CHECKS

    choices = option_choices()
    for name, f in option_fields().items():
        meta = f.metadata
        is_flag = meta.get("check") == "flag"
        if name in choices:
            kind = click.Choice(choices[name])
        else:
            kind = CHECKS[meta["check"]][2] if meta.get("check") else str
        specs.append((f"--{name.replace('_', '-')}", name, None if is_flag else kind, meta["help"], is_flag))
    return specs


def train_options(func):
    """Decorate a command with every training option (each defaults to the preset's value)."""
    for flag, name, kind, text, is_flag in reversed(train_option_specs()):
        if is_flag:
            func = click.option(flag, name, is_flag=True, default=None, help=f"{text} [preset value]")(func)
        else:
            func = click.option(flag, name, type=kind, default=None, help=f"{text} [preset value]")(func)
    return func


def given_train_values(kw: dict[str, Any]) -> dict[str, Any]:
    """The training options the user gave on the command line."""
    return {name: kw[name] for _, name, _, _, _ in train_option_specs() if kw.get(name) is not None}


def ratings_file_options(func):
    options = [
        click.option("--user-col", default="user", show_default=True, help="user id column of --ratings"),
        click.option("--item-col", default="item", show_default=True, help="item id column of --ratings"),
        click.option("--rating-col", default="rating", show_default=True,
                     help="rating column of --ratings ('none': interactions only)"),
        click.option("--implicit", is_flag=True, help="the rating column holds counts/weights (views, plays)"),
        click.option("--timestamp-col", default=None,
                     help="timestamp column of --ratings: Unix seconds or ISO 8601 dates (optional; 'none': none)"),
        click.option("--sep", default=None, help="field separator of --ratings (default by suffix)"),
        click.option("--scale", nargs=2, type=FiniteFloat(), default=(0.5, 5.0), show_default=True,
                     help="lowest and highest allowed rating"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class StrictCommand(click.Command):
    """A command whose value-taking options are given once: a second ``--epochs`` would replace the first
    without a word. A list option (``multiple``) repeats, and a flag given twice says the same thing twice."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(arg in ctx.help_option_names for arg in args):  # --help answers whatever else is there
            return super().parse_args(ctx, args)
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        counts: dict[click.Parameter, int] = {}
        for param in order:
            counts[param] = counts.get(param, 0) + 1
        for param, count in counts.items():
            single = isinstance(param, click.Option) and not (param.multiple or param.is_flag or param.count)
            if count > 1 and single:
                raise click.UsageError(f"{param.opts[0]} given {count} times; give it once", ctx=ctx)
        return super().parse_args(ctx, args)


class StrictGroup(click.Group):
    """A group whose commands are :class:`StrictCommand` s."""

    command_class = StrictCommand


class FiniteFloat(click.FloatRange):
    """A finite number, within optional bounds as click's ``FloatRange``: NaN passes every comparison, so
    ``FloatRange`` alone took ``--watch nan`` (and watched nothing). Every float option of the CLI has this type,
    except the training options, whose configs refuse non-finite values naming the model."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):  # before the bounds, which say nothing of NaN
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


class LocalPath(click.Path):
    """A path on this machine; a URL (``https://...``), which a path would fold to ``https:/...``, is a usage
    error that says so."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(path_type=Path, **kw)

    def convert(self, value, param, ctx):
        from mfrec._io import DASH_PROBLEM, url_problem

        if isinstance(value, str) and not value.strip():  # pathlib reads "" as "." (an unset variable, say)
            self.fail(f"an empty path ({value!r}); give a file or folder name", param, ctx)
        if value == "-":
            self.fail(DASH_PROBLEM, param, ctx)
        problem = url_problem(value) if isinstance(value, str) else None
        if problem:
            self.fail(problem, param, ctx)
        return super().convert(value, param, ctx)


class RatingsSource(LocalPath):
    """A ratings file (a path), or a profile database URL kept as written (a path would fold its slashes)."""

    name = "file or database URL"

    def __init__(self) -> None:
        super().__init__(dir_okay=False)

    def convert(self, value, param, ctx):
        from mfrec._io import url_problem
        from mfrec.data.profiles import DATABASES, POSTGRES_HINT, is_database_url

        if is_database_url(value):
            return value
        if isinstance(value, str) and url_problem(value):
            hint = POSTGRES_HINT if value.lower().startswith("postgres") else ""
            self.fail(f"{value!r} is neither a file on this machine nor a profile database ({DATABASES}){hint}",
                      param, ctx)  # fmt: skip
        return super().convert(value, param, ctx)


def data_options(func):
    func = click.option("--duplicates", type=click.Choice(["keep-latest", "error"]), default="keep-latest",
                        show_default=True, help="what to do with repeated (user, item) pairs")(func)  # fmt: skip
    func = click.option("--data-path", type=LocalPath(), default=None,
                        help="local copy of --dataset: its folder, official zip or ratings file")(func)  # fmt: skip
    func = ratings_file_options(func)
    func = click.option("--items", "items_file", type=LocalPath(dir_okay=False), default=None,
                        help="item metadata (CSV/Parquet: item id, title, genres joined by |, year) to show "
                             "with recommendations and filter by")(func)  # fmt: skip
    func = click.option("--ratings", "ratings_file", type=RatingsSource(), default=None,
                        help="a CSV/TSV/Parquet ratings file, or a profile database URL "
                             "(sqlite:///PATH, postgresql+psycopg://...), instead of --dataset")(func)  # fmt: skip
    return click.option("--dataset", default=None, help="registered dataset name (see `mfrec datasets list`)")(func)


def optional_column(name: str | None) -> str | None:
    """A column option that may be absent: ``none`` (any case) says there is no such column, for
    ``--rating-col`` and ``--timestamp-col`` alike."""
    return None if name is None or name.lower() == "none" else name


def columns(kw: dict[str, Any]) -> dict[str, Any]:
    """The ratings-file options as the run config records them (empty for a registered dataset)."""
    items = {"items": str(kw["items_file"])} if kw.get("items_file") else {}
    if not kw["ratings_file"] and not kw.get("split_files"):
        return items
    return {
        **items,
        "user": kw["user_col"],
        "item": kw["item_col"],
        "rating": optional_column(kw["rating_col"]),
        "implicit": kw["implicit"],
        "timestamp": optional_column(kw["timestamp_col"]),
        "sep": kw["sep"],
        "scale": list(kw["scale"]),
    }


#: The options that describe a ratings file (its columns, separator and scale); a registered dataset has its own.
FILE_OPTIONS = ("user_col", "item_col", "rating_col", "implicit", "timestamp_col", "sep", "scale")


def flag_of(name: str) -> str:
    """The command-line flag of the parameter ``name`` (``user_col`` -> ``--user-col``)."""
    return f"--{name.replace('_', '-')}"


def check_data_options(kw: dict[str, Any]) -> None:
    """A data option that the chosen source does not read is a usage error, never ignored: the columns of a
    file with --dataset (it has its own), --data-path without --dataset, a file's columns for a database."""
    from mfrec.data.profiles import is_database_url

    given = [name for name in FILE_OPTIONS if option_given(name)]
    if kw.get("dataset") and given:
        raise click.UsageError(f"{flag_of(given[0])} describes a --ratings file; --dataset {kw['dataset']} has its "
                               "own columns and scale")  # fmt: skip
    if not kw.get("dataset") and option_given("data_path"):
        raise click.UsageError("--data-path is a local copy of a --dataset; leave it out with a ratings file")
    columns_given = [name for name in given if name != "scale"]
    if is_database_url(str(kw.get("ratings_file") or "")) and columns_given:
        raise click.UsageError(f"{flag_of(columns_given[0])} describes a ratings file; a profile database has "
                               "its own columns")  # fmt: skip


def run_config(kw: dict[str, Any], need_source: bool = True, **fields: Any):
    """A :class:`~mfrec.config.RunConfig` of the data options in ``kw`` (exactly one source, if ``need_source``)."""
    from mfrec.config import RunConfig

    if need_source and bool(kw["dataset"]) == bool(kw["ratings_file"]):
        raise click.UsageError("give exactly one of --dataset NAME or --ratings FILE")
    check_data_options(kw)
    return RunConfig(dataset=kw["dataset"], ratings_file=str(kw["ratings_file"]) if kw["ratings_file"] else None,
                     columns=columns(kw), **fields)  # fmt: skip


def load_data(kw: dict[str, Any]):
    from mfrec.run import load_data as load

    return load(run_config(kw), kw["data_path"], kw["duplicates"])


def assemble_train_config(kw: dict[str, Any], preset_name: str | None, config_file: Path | None):
    """``(preset name, TrainConfig)`` from ``--preset``, ``--config`` and the training options given."""
    from mfrec.config import assemble, load_config_file

    file_values = load_config_file(config_file) if config_file else {}
    return assemble(preset_name, file_values, given_train_values(kw),
                    source=str(config_file) if config_file else None)


def echo_table(frame, fmt: str) -> None:
    """Print ``frame`` as JSON records, CSV or an aligned table. The table leaves out a ``title``
    column that has no title at all (data without item metadata) and shows a missing title as
    blank, where JSON and CSV keep every column and write null/empty."""
    if fmt == "json":
        click.echo(frame.to_json(orient="records", force_ascii=False))
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif frame.empty:
        click.echo("no items: nothing passes the filters (or every candidate was excluded)", err=True)
    else:
        if "title" in frame:
            titles = frame["title"]
            frame = frame.drop(columns="title") if titles.isna().all() else frame.assign(title=titles.fillna(""))
        click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


TOP_N = click.option("-n", "n", type=int, default=10, show_default=True, help="how many items to list")


def option_given(name: str) -> bool:
    """Whether the current command's option ``name`` was given (command line or environment), not defaulted."""
    from click.core import ParameterSource

    context = click.get_current_context(silent=True)
    return context is not None and context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                      show_default=True, help="output format")  # fmt: skip


def filter_options(func):
    """``--genre`` (repeatable), ``--years`` and ``--min-ratings``: the candidate filters of recommend and similar."""
    options = [
        click.option("--genre", "genres", multiple=True, metavar="NAME",
                     help="only items of this genre (repeat for any of several; an unknown one lists the known)"),
        click.option("--years", default=None, metavar="FIRST-LAST",
                     help="only items released in these years, e.g. 1990-1999, 2000- or -1980"),
        click.option("--min-ratings", type=click.IntRange(min=0), default=None,
                     help="only items with at least this many ratings in the model's data"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def filters(kw: dict[str, Any]) -> dict[str, Any]:
    """The filter keywords of :meth:`~mfrec.MatrixFactorization.recommend` from :func:`filter_options`' values."""
    from mfrec.data.items import parse_year_range

    return {"genres": list(kw["genres"]) or None, "years": parse_year_range(kw["years"]) if kw["years"] else None,
            "min_ratings": kw["min_ratings"]}  # fmt: skip


def model_input(func):
    """The model a command reads, as the first argument or as ``--model`` (a model file or run folder).

    Both spellings name one thing, so ``mfrec recommend RUN --user 1`` works as ``mfrec serve RUN`` does;
    the command receives it as ``model_path``.
    """

    @functools.wraps(func)
    def command(*args: Any, model_arg: Path | None, model_option: Path | None, **kw: Any):
        if model_arg is not None and model_option is not None and model_arg != model_option:
            raise click.UsageError(f"two models given ({model_arg} and --model {model_option}); give one")
        path = model_arg if model_arg is not None else model_option
        if path is None:
            raise click.UsageError("which model? give a model file or run folder: MODEL or --model PATH")
        return func(*args, model_path=path, **kw)

    command = click.option("--model", "model_option", type=LocalPath(), default=None,
                           metavar="PATH", help="model file or run folder (or give it as MODEL)")(command)  # fmt: skip
    return click.argument("model_arg", metavar="[MODEL]", required=False, type=LocalPath())(command)
