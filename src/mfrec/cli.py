"""The ``mfrec`` command line: thin commands over the library.

Every user error prints one line, ``error: ...``, on stderr and exits non-zero
(1 for errors in data, models and files, 2 for command-line usage); no traceback.
Set ``MFREC_DEBUG=1`` to see tracebacks of unexpected failures.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from mfrec.errors import MfrecError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

TRAIN_OPTIONS = (
    ("--model", "model", click.Choice(["dot", "biased", "als", "bayesian", "implicit_als", "bpr"]), "model kind"),
    ("--embedding-dim", "embedding_dim", int, "factors per user and item"),
    ("--optimizer", "optimizer", click.Choice(["sgd", "adam", "sparse_adam", "adagrad"]), "optimizer"),
    ("--learning-rate", "learning_rate", float, "step size"),
    ("--batch-size", "batch_size", int, "ratings per step"),
    ("--epochs", "epochs", int, "maximum epochs"),
    ("--regularization", "regularization", float, "L2 weight on factors"),
    ("--bias-regularization", "bias_regularization", float, "L2 weight on biases"),
    ("--init-std", "init_std", float, "std of the initial factors"),
    ("--rating-divisor", "rating_divisor", float, "train on rating / this (the notebook uses 5)"),
    ("--patience", "patience", int, "early-stopping patience in epochs (0 = off)"),
    ("--device", "device", click.Choice(["auto", "cpu", "cuda"]), "where to train"),
    ("--seed", "seed", int, "seed of init and shuffling"),
    ("--threads", "threads", int, "CPU threads (0 = torch default)"),
    ("--alpha", "alpha", float, "implicit confidence 1 + alpha * w (implicit_als)"),
    ("--confidence", "confidence", click.Choice(["rating", "binary"]), "w = the rating/count or 1 (implicit_als)"),
    ("--unobserved-weight", "unobserved_weight", float, "weight of unobserved pairs (implicit_als)"),
    ("--reg-exponent", "reg_exponent", float, "lambda scaled by (n_u + a0 n)^this (implicit_als)"),
    ("--cg-steps", "cg_steps", int, "conjugate-gradient steps per half-iteration (implicit_als)"),
    ("--engine", "engine", click.Choice(["torch", "compiled"]), "torch, or compiled per-rating SGD (biased/dot, CPU)"),
    ("--target-rmse", "target_rmse", float, "stop once validation RMSE reaches this (0 = off)"),
    ("--burn-in", "burn_in", int, "Gibbs sweeps discarded (bayesian)"),
    ("--samples", "samples", int, "Gibbs sweeps kept and averaged (bayesian)"),
    ("--noise-precision", "noise_precision", float, "inverse rating variance (bayesian)"),
    ("--posterior-rank", "posterior_rank", int, "store the sample average at this rank; 0 = all samples (bayesian)"),
)


def _train_options(func):
    for flag, name, kind, text in reversed(TRAIN_OPTIONS):
        func = click.option(flag, name, type=kind, default=None, help=f"{text} [preset value]")(func)
    return func


def _ratings_file_options(func):
    options = [
        click.option("--user-col", default="user", show_default=True, help="user id column of --ratings"),
        click.option("--item-col", default="item", show_default=True, help="item id column of --ratings"),
        click.option(
            "--rating-col",
            default="rating",
            show_default=True,
            help="rating column of --ratings ('none': interactions only)",
        ),
        click.option("--implicit", is_flag=True, help="the rating column holds counts/weights (views, plays)"),
        click.option("--timestamp-col", default=None, help="timestamp column of --ratings (optional)"),
        click.option("--sep", default=None, help="field separator of --ratings (default by suffix)"),
        click.option(
            "--scale",
            nargs=2,
            type=float,
            default=(0.5, 5.0),
            show_default=True,
            help="lowest and highest allowed rating",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _echo_table(frame, fmt: str) -> None:
    if fmt == "json":
        click.echo(frame.to_json(orient="records", force_ascii=False))
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="output format",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="mfrec")
def cli() -> None:
    """mfrec: matrix-factorization recommenders on PyTorch."""


# ---------------------------------------------------------------- train
def _data_options(func):
    func = click.option("--duplicates", type=click.Choice(["keep-latest", "error"]), default="keep-latest",
                        show_default=True, help="what to do with repeated (user, item) pairs")(func)  # fmt: skip
    func = click.option("--data-path", type=click.Path(path_type=Path), default=None,
                        help="local copy of --dataset: its folder or official zip")(func)  # fmt: skip
    func = _ratings_file_options(func)
    func = click.option("--ratings", "ratings_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="a CSV/TSV/Parquet ratings file instead of --dataset")(func)  # fmt: skip
    return click.option("--dataset", default=None, help="registered dataset name (see `mfrec datasets list`)")(func)


def _load_data(kw: dict[str, Any]):
    from mfrec.config import RunConfig
    from mfrec.run import load_data

    if bool(kw["dataset"]) == bool(kw["ratings_file"]):
        raise click.UsageError("give exactly one of --dataset NAME or --ratings FILE")
    config = RunConfig(dataset=kw["dataset"], ratings_file=str(kw["ratings_file"]) if kw["ratings_file"] else None,
                       columns=_columns(kw))  # fmt: skip
    return load_data(config, kw["data_path"], kw["duplicates"])


def _columns(kw: dict[str, Any]) -> dict[str, Any]:
    """The ratings-file options as the run config records them (empty for a registered dataset)."""
    if not kw["ratings_file"]:
        return {}
    return {
        "user": kw["user_col"],
        "item": kw["item_col"],
        "rating": None if kw["rating_col"].lower() == "none" else kw["rating_col"],
        "implicit": kw["implicit"],
        "timestamp": kw["timestamp_col"],
        "sep": kw["sep"],
        "scale": list(kw["scale"]),
    }


@cli.command()
@_data_options
@click.option(
    "--preset",
    default=None,
    help="default, notebook, fast, als, bayesian, implicit or bpr [the --model's preset: default for dot/biased]",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON file of training options (applied after the preset)",
)
@_train_options
@click.option(
    "--notebook-einsum", is_flag=True, default=None, help="reproduce the notebook's einsum bug (dot model only)"
)
@click.option(
    "--split",
    "split_method",
    default="stratified",
    show_default=True,
    type=click.Choice(["stratified", "random", "user", "temporal", "temporal-user"]),
)
@click.option("--split-fractions", nargs=3, type=float, default=(0.6, 0.2, 0.2), show_default=True)
@click.option("--split-seed", type=int, default=42, show_default=True)
@click.option("--holdout", type=int, default=1, show_default=True, help="k for --split temporal-user")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="run folder [runs/<dataset>-<preset>]")
@click.option("--overwrite", is_flag=True, help="replace an existing run folder (only once the new one is complete)")
@click.option(
    "--resume",
    "resume",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="continue the interrupted run that was writing this run folder (its own config is used)",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="data-parallel processes on this machine (torch.distributed; dot/biased, torch engine)",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress bar or log lines")
@click.option("--json", "as_json", is_flag=True, help="print metrics as JSON")
def train(**kw: Any) -> None:
    """Train a model and write a run folder (config, split, history, metrics, plot, model)."""
    from mfrec.config import MODEL_PRESETS, RunConfig, SplitConfig, load_config_file, preset

    if kw["resume"] is not None:
        from mfrec.run import resume_config

        config = resume_config(kw["resume"])
        return _train(config, kw["resume"], kw, resume=True)
    if bool(kw["dataset"]) == bool(kw["ratings_file"]):
        raise click.UsageError("give exactly one of --dataset NAME or --ratings FILE")
    overrides = load_config_file(kw["config_file"]) if kw["config_file"] else {}
    overrides.update({name: kw[name] for _, name, _, _ in TRAIN_OPTIONS if kw[name] is not None})
    if kw["notebook_einsum"]:
        overrides["notebook_einsum"] = True
    preset_name = kw["preset"] or MODEL_PRESETS[overrides.get("model") or "biased"]
    kw["preset"] = preset_name
    train_config = preset(preset_name).replace(**overrides)
    columns = _columns(kw)
    config = RunConfig(
        preset=kw["preset"],
        dataset=kw["dataset"],
        ratings_file=str(kw["ratings_file"]) if kw["ratings_file"] else None,
        columns=columns,
        split=SplitConfig(kw["split_method"], tuple(kw["split_fractions"]), kw["split_seed"], kw["holdout"]),
        train=train_config,
    )
    name = kw["dataset"] or Path(kw["ratings_file"]).stem
    out = kw["out"] or Path("runs") / f"{name}-{kw['preset']}"
    _train(config, out, kw, resume=False)


def _train(config, out: Path, kw: dict[str, Any], *, resume: bool) -> None:
    from mfrec.training import distributed

    if kw.get("nproc", 1) > 1:
        if distributed.launched_by_torchrun():
            raise click.UsageError("--nproc starts its own processes; under torchrun, leave it out")
        if resume:
            raise click.UsageError("--resume continues a run in one process; leave out --nproc")
        from mfrec.run import prepare_output

        distributed.check_supported(config.train)
        prepare_output(out, kw["overwrite"])  # fail here, before any process starts
        nproc = kw["nproc"]
        kw = {**kw, "nproc": 1}
        distributed.launch(
            _train_rank, (config, out, kw), nproc, backend=distributed.backend_for(config.train.device)
        )
        return
    if distributed.launched_by_torchrun():
        distributed.check_supported(config.train)
        group = distributed.init_from_env(config.train.device)
        try:
            _train_one(config, out, kw, resume=resume)
        except MfrecError as exc:  # torchrun prints every rank's output: say which rank this is
            # no teardown: waiting for peers that may be stuck would hide this failure from torchrun
            raise type(exc)(f"rank {group.rank} of {group.world_size}: {exc}") from None
        distributed.shutdown()
        return
    _train_one(config, out, kw, resume=resume)


def _train_rank(config, out: Path, kw: dict[str, Any]) -> None:
    """One rank of ``mfrec train --nproc N`` (run in a spawned process that already joined the group)."""
    _train_one(config, out, kw, resume=False)


def _train_one(config, out: Path, kw: dict[str, Any], *, resume: bool) -> None:
    from mfrec.run import train_run
    from mfrec.training.distributed import is_main_process

    train_config = config.train
    quiet = kw["quiet"]
    log = (lambda _: None) if quiet else (lambda line: click.echo(line, err=True))
    interactive = sys.stderr.isatty()
    every = max(1, train_config.epochs // 20)

    def epoch_line(record) -> None:  # a log line per epoch where no progress bar can be drawn
        if record.epoch == 1 or record.epoch % every == 0:
            parts = [
                f"{label} {value:.4f}"
                for label, value in (
                    ("train RMSE", record.train_rmse),
                    ("train loss", record.train_loss),
                    ("val RMSE", record.val_rmse),
                    ("val NDCG@10", record.val_ndcg),
                )
                if value is not None
            ]
            log(f"epoch {record.epoch:>4}: {', '.join(parts)} ({record.seconds:.2f} s)")

    result = train_run(
        config,
        out,
        data_path=kw["data_path"],
        overwrite=kw["overwrite"],
        progress=not quiet and interactive,
        on_duplicates=kw["duplicates"],
        log=log,
        on_epoch=None if quiet or interactive else epoch_line,
        resume=resume,
    )
    if not is_main_process():
        return
    if kw["as_json"]:
        click.echo(json.dumps(result.metrics, indent=2))
        return
    click.echo(_metrics_table(result.metrics))
    m = result.metrics
    click.echo(
        f"\n{m['epochs_run']} epochs (kept epoch {m['best_epoch']}), fit {m['fit_seconds']:.1f} s, "
        f"total {m['total_seconds']:.1f} s on {m['device']}"
    )
    click.echo(
        f"run folder: {result.path}  (config.json split.parquet history.csv metrics.json loss.png model.safetensors)"
    )


RANKING_NAMES = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
RANKING_COLUMNS = ("ndcg@10", "recall@10", "precision@10", "map@10", "hit_rate@10", "mrr@10", "coverage")


def _metrics_table(metrics: dict) -> str:
    rows = [("model", metrics["model"]), *metrics["baselines"].items()]
    lines = []
    rating_rows = [(name, parts) for name, parts in rows if "rmse" in parts["test"]]
    if rating_rows:
        lines.append(f"{'':14}{'val RMSE':>10}{'val MAE':>9}{'test RMSE':>11}{'test MAE':>10}{'notebook loss':>15}")
        for name, parts in rating_rows:
            v, t = parts["val"], parts["test"]
            lines.append(
                f"{name:14}{v['rmse']:>10.4f}{v['mae']:>9.4f}{t['rmse']:>11.4f}{t['mae']:>10.4f}"
                f"{t['notebook_loss']:>15.4f}"
            )
        lines.append("(RMSE/MAE in stars, predictions clipped to the rating scale; notebook loss = test MSE / 5)\n")
    lines.append(f"{'test top-10':14}" + "".join(f"{c.split('@')[0]:>10}" for c in RANKING_COLUMNS))
    for name, parts in rows:
        t = parts["test"]
        if "ndcg@10" in t:
            lines.append(f"{name:14}" + "".join(f"{t[c]:>10.4f}" for c in RANKING_COLUMNS))
    users = metrics["model"]["test"].get("users")
    lines.append(
        f"(relevant = test ratings >= the threshold; candidates = train items the user did not rate; {users} users)"
    )
    return "\n".join(lines)


# ------------------------------------------------------------- evaluate
@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path), help="model file or run folder")
@click.option(
    "--split",
    "split_file",
    type=click.Path(path_type=Path),
    default=None,
    help="split.parquet of a run [the run folder's]",
)
@click.option("--part", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option(
    "--ratings",
    "ratings_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="evaluate on this ratings file instead of a split",
)
@_ratings_file_options
@click.option("--json", "as_json", is_flag=True, help="print metrics as JSON")
def evaluate(
    model_path: Path, split_file: Path | None, part: str, ratings_file: Path | None, as_json: bool, **cols: Any
) -> None:
    """RMSE and MAE (stars) and top-10 ranking metrics of a saved model on a split part or a ratings file."""
    from mfrec.data import Columns, load_split, read_ratings
    from mfrec.estimator import MatrixFactorization

    model = MatrixFactorization.load(model_path)
    train = None
    if ratings_file is not None:
        rating_col = None if cols["rating_col"].lower() == "none" else cols["rating_col"]
        ratings = read_ratings(
            ratings_file,
            columns=Columns(cols["user_col"], cols["item_col"], rating_col, cols["timestamp_col"]),
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
    metrics = model.evaluate(ratings) if model.predicts_ratings else {"n": len(ratings)}
    ranking = model.evaluate_ranking(ratings, train=train, k=10)
    metrics.update({f"{k}@10" if k in RANKING_NAMES else k: v for k, v in ranking.items() if k != "k"})
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    click.echo(f"{where}: {metrics['n']:,} ratings")
    if model.predicts_ratings:
        click.echo(
            f"RMSE {metrics['rmse']:.4f}  MAE {metrics['mae']:.4f} (stars)  notebook loss "
            f"{metrics['notebook_loss']:.4f}  unseen users {metrics['unseen_user']:,}, "
            f"unseen items {metrics['unseen_item']:,}"
        )
    click.echo(
        "top-10: "
        + "  ".join(f"{c.split('@')[0]} {metrics[c]:.4f}" for c in RANKING_COLUMNS)
        + f"  ({metrics['users']} users)"
    )


# ------------------------------------------------- recommend / similar / predict
@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path))
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
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="a file of user ids, one per line (needs --out)",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write user, rank, item, score, title to this .parquet or .csv",
)
@click.option("-n", "n", type=int, default=10, show_default=True)
@click.option("--include-seen", is_flag=True, help="do not exclude the items the user rated")
@click.option("--exclude", default=None, metavar="ITEM,...", help="item ids never to recommend")
@FORMAT
def recommend(model_path: Path, user: str | None, new_ratings: str | None, all_users: bool,
              users_file: Path | None, out: Path | None, n: int, include_seen: bool, exclude: str | None,
              fmt: str) -> None:  # fmt: skip
    """Top-N items with titles for a user, a new user's ratings, or every user (to a file)."""
    from mfrec.estimator import MatrixFactorization

    chosen = [user is not None, new_ratings is not None, all_users, users_file is not None]
    if sum(chosen) != 1:
        raise click.UsageError("give exactly one of --user ID, --ratings ITEM=RATING,..., --all-users, --users-file")
    if (all_users or users_file) and out is None:
        raise click.UsageError("--all-users and --users-file write to a file: add --out recs.parquet (or .csv)")
    model = MatrixFactorization.load(model_path)
    if new_ratings is not None:
        _echo_table(model.recommend_for_ratings(_parse_pairs(new_ratings), n).to_frame().drop(columns=["user"]), fmt)
        return
    if user is not None and out is None:
        excluded = [model.item_map_.coerce(x.strip()) for x in exclude.split(",") if x.strip()] if exclude else None
        recs = model.recommend(model.user_map_.coerce(user), n, exclude_seen=not include_seen, exclude=excluded)
        _echo_table(recs.to_frame().drop(columns=["user"]), fmt)
        return
    from mfrec.recommend import write_recommendations

    users = None
    if user is not None:
        users = [model.user_map_.coerce(user)]
    elif users_file is not None:
        try:
            lines = users_file.read_text().split()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"{users_file}: cannot be read ({exc})", param_hint="--users-file") from None
        users = [model.user_map_.coerce(x) for x in lines]
    rows = write_recommendations(model, out, users=users, n=n, exclude_seen=not include_seen,
                                 progress=sys.stderr.isatty())  # fmt: skip
    click.echo(f"{rows:,} recommendations written to {out}")


def _parse_pairs(text: str) -> dict[str, float]:
    pairs: dict[str, float] = {}
    for chunk in filter(None, (c.strip() for c in text.split(","))):
        item, sep, value = chunk.rpartition("=")
        try:
            if not sep or not item.strip():
                raise ValueError
            pairs[item.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{chunk!r} is not ITEM=RATING", param_hint="--ratings") from None
    if not pairs:
        raise click.BadParameter("no ITEM=RATING pairs given", param_hint="--ratings")
    return pairs


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path))
@click.option("--item", required=True, help="raw item id")
@click.option("-n", "n", type=int, default=10, show_default=True)
@click.option(
    "--shrinkage",
    type=float,
    default=20.0,
    show_default=True,
    help="weight cosine by n/(n+this), n = the item's ratings; 0 = plain cosine",
)
@FORMAT
def similar(model_path: Path, item: str, n: int, shrinkage: float, fmt: str) -> None:
    """Nearest items by (support-weighted) cosine similarity of item factors, with titles."""
    from mfrec.estimator import MatrixFactorization

    model = MatrixFactorization.load(model_path)
    item = model.item_map_.coerce(item)
    frame = model.similar_items(item, n, shrinkage=shrinkage).to_frame(query="query", score="similarity")
    frame = frame.drop(columns=["query"])
    if fmt == "table":
        title = model.title(item)
        click.echo(f"items like {item}" + (f" ({title})" if title else "") + ":")
    _echo_table(frame, fmt)


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path))
@click.option("--user", required=True, help="raw user id")
@click.option("--item", required=True, help="raw item id")
@click.option("--fallback", is_flag=True, help="predict unknown ids from biases and the global mean")
def predict(model_path: Path, user: str, item: str, fallback: bool) -> None:
    """Predicted rating (stars) of one user for one item."""
    import numpy as np

    from mfrec.estimator import MatrixFactorization

    model = MatrixFactorization.load(model_path)
    u = model.user_map_.coerce(user)
    i = model.item_map_.coerce(item)
    value = model.predict(np.array([u]), np.array([i]), unknown="fallback" if fallback else "error")[0]
    title = model.title(i)
    click.echo(f"{value:.3f}" + (f"  (user {user}, {title})" if title else ""))


# ------------------------------------------------------------ tune / cv
@cli.command()
@_data_options
@click.option("--trials", type=int, default=30, show_default=True)
@click.option("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
@click.option("--seed", type=int, default=42, show_default=True, help="seeds the split, the sampler and the models")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/tune"), show_default=True)
def tune(trials: int, timeout: float | None, seed: int, out: Path, **kw: Any) -> None:
    """Search hyperparameters on validation RMSE (Optuna); writes best.json for `mfrec train --config`."""
    from mfrec.data import split_ratings
    from mfrec.tune import save_tuning
    from mfrec.tune import tune as search

    data = _load_data(kw)
    split = split_ratings(data, "stratified", seed=seed)
    best, table = search(split, trials=trials, seed=seed, timeout=timeout, progress=sys.stderr.isatty())
    save_tuning(best, table, out)
    shown = table.sort_values("val_rmse").head(10)
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"\nbest validation RMSE {table['val_rmse'].min():.4f}; wrote {out}/best.json, trials.csv, search.png")
    click.echo(f"train it: mfrec train --config {out}/best.json ...")


@cli.command()
@_data_options
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--preset", default=None, help="default, notebook, fast, implicit or bpr")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
@_train_options
@FORMAT
def cv(folds: int, preset: str | None, config_file: Path | None, fmt: str, **kw: Any) -> None:
    """K-fold cross-validation: RMSE, MAE (stars) and NDCG@10 per fold, with mean and standard deviation."""
    from mfrec.config import MODEL_PRESETS, load_config_file
    from mfrec.config import preset as get_preset
    from mfrec.tune import cross_validate

    overrides = load_config_file(config_file) if config_file else {}
    overrides.update({name: kw[name] for _, name, _, _ in TRAIN_OPTIONS if kw[name] is not None})
    config = get_preset(preset or MODEL_PRESETS[overrides.get("model") or "biased"]).replace(**overrides)
    table = cross_validate(_load_data(kw), config, folds=folds, seed=config.seed)
    _echo_table(table, fmt)


# ---------------------------------------------------------------- serve
@cli.command()
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (loopback unless told)")
@click.option("--port", default=8000, type=int, show_default=True)
@click.option("--threads", default=1, type=int, show_default=True, help="torch threads per request")
def serve(model_path: Path, host: str, port: int, threads: int) -> None:
    """Serve MODEL over HTTP: the API under /v1 (OpenAPI at /docs) and a web page at /."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise click.ClickException("serving needs the serve extra: pip install 'mfrec[serve]'") from None
    import torch

    from mfrec.serve import create_app
    from mfrec.store import load_model

    torch.set_num_threads(max(1, threads))
    app = create_app(load_model(model_path))
    click.echo(f"serving {model_path} on http://{host}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


# ------------------------------------------------------------- datasets
@cli.group()
def datasets() -> None:
    """List, fetch and describe the registered datasets."""


@datasets.command("list")
def datasets_list() -> None:
    """Registered datasets and whether a local copy exists."""
    from mfrec.data.fetch import candidates
    from mfrec.data.movielens import REGISTRY

    for spec in REGISTRY.values():
        local = any(p.exists() for p in candidates(spec))
        click.echo(
            f"{spec.name:16} {spec.n_ratings:>12,} ratings  {spec.size_mb:>6.0f} MB  "
            f"{'local ' if local else 'remote'}  {spec.description}"
        )


@datasets.command("fetch")
@click.argument("name")
@click.option("--data-path", type=click.Path(path_type=Path), default=None)
def datasets_fetch(name: str, data_path: Path | None) -> None:
    """Make sure NAME is on this machine (downloading it if needed) and say where."""
    from mfrec.data.fetch import locate

    source = locate(name, data_path)
    click.echo(f"{name}: {source.path}")


@datasets.command("synth")
@click.option("--like", "like", default="ml-25m", show_default=True, help="the release whose shape and layout to copy")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="folder to write <name>/ratings.csv and movies.csv into")  # fmt: skip
@click.option("--fraction", type=float, default=1.0, show_default=True, help="scale users, items and ratings")
@click.option("--seed", type=int, default=0, show_default=True)
def datasets_synth(like: str, out: Path, fraction: float, seed: int) -> None:
    """Write a synthetic data set shaped like a MovieLens release, in its file layout."""
    from mfrec.data.synthetic import write_like

    folder = write_like(like, out, fraction=fraction, seed=seed)
    click.echo(f"wrote {folder}; train on it with: mfrec train --dataset {like} --data-path {folder}")


@datasets.command("info")
@click.argument("name")
@click.option("--data-path", type=click.Path(path_type=Path), default=None)
@click.option("--no-download", is_flag=True, help="fail instead of downloading")
def datasets_info(name: str, data_path: Path | None, no_download: bool) -> None:
    """Counts, scale and density of NAME."""
    from mfrec.data import load_dataset
    from mfrec.data.fetch import spec_for

    spec = spec_for(name)
    data = load_dataset(name, data_path, download=not no_download)
    density = len(data) / (data.n_users * data.n_items)
    click.echo(
        f"{spec.name}: {spec.description}\nurl: {spec.url}\n"
        f"ratings {len(data):,}, users {data.n_users:,}, items {data.n_items:,}, density {density:.4%}, "
        f"scale {data.scale[0]:g}-{data.scale[1]:g}, mean {data.ratings.mean():.3f}"
    )


# ----------------------------------------------------------------- main
def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"note: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
    debug = bool(os.environ.get("MFREC_DEBUG"))
    warnings.showwarning = _warning_line
    try:
        result = cli.main(args=argv, prog_name="mfrec", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        hint = (
            f" (see: mfrec {exc.ctx.command_path.split(' ', 1)[1]} --help)"
            if exc.ctx and " " in exc.ctx.command_path
            else ""
        )
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("error: interrupted", err=True)
        return 130
    except MfrecError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return EXIT_ERROR
    except Exception as exc:  # a bug, not a user error: still one line unless debugging
        if debug:
            raise
        click.echo(
            f"error: internal error ({type(exc).__name__}: {exc}); rerun with MFREC_DEBUG=1 and report it", err=True
        )
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
