"""``mfrec train``: a run folder from a dataset, a preset and options; alone, on ``--nproc`` ranks, or under
torchrun."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from mfrec._io import json_text
from mfrec.cli.options import (
    FILE_OPTIONS,
    FiniteFloat,
    LocalPath,
    StrictCommand,
    assemble_train_config,
    data_options,
    flag_of,
    given_train_values,
    option_given,
    run_config,
    train_options,
)
from mfrec.cli.render import K_OPTION, metrics_table
from mfrec.errors import MfrecError
from mfrec.evaluation.report import REPORT_FILE
from mfrec.options import MAX_THREADS

#: Training options that say where and how fast to train, not what: a --refit may set them.
_OPERATIONAL = ("device", "threads")
#: The split options, by parameter name, and the --split methods that use them (the rest ignore them).
_SPLIT_USES = {"split_fractions": ("stratified", "random", "user", "temporal"),
               "split_seed": ("stratified", "random", "user"), "holdout": ("temporal-user",)}  # fmt: skip
_KEYS = {"preset": "preset", "config": "config_file", "dataset": "dataset", "ratings": "ratings_file",
         "feedback": "feedback"}


@click.command(cls=StrictCommand)
@data_options
@click.option(
    "--preset",
    default=None,
    help="a named preset (see `mfrec presets`) [the --model's own: default for biased]",
)
@click.option(
    "--config",
    "config_file",
    type=LocalPath(),
    default=None,
    help="JSON file of training options (applied after the preset)",
)
@train_options
@click.option(
    "--split",
    "split_method",
    default=None,
    type=click.Choice(["stratified", "random", "user", "temporal", "temporal-user", "none"]),
    help="how to hold out val and test; none: train on every rating, evaluate nothing [stratified]",
)
@click.option(
    "--split-files",
    nargs=3,
    type=LocalPath(dir_okay=False),
    default=None,
    metavar="TRAIN VAL TEST",
    help="a split made elsewhere: three ratings files (read with the --ratings column options)",
)
@click.option("--split-fractions", nargs=3, type=FiniteFloat(), default=(0.6, 0.2, 0.2), show_default=True)
@click.option("--split-seed", type=int, default=42, show_default=True)
@click.option("--holdout", type=int, default=1, show_default=True, help="k for --split temporal-user")
@K_OPTION
@click.option(
    "--refit",
    type=LocalPath(file_okay=False),
    default=None,
    help="retrain this finished run's configuration on every rating, for the epochs it kept [out: RUN-refit]",
)
@click.option("--feedback", default=None, metavar="DB_URL",
              help="also train on the ratings profiles gave through `mfrec serve` (its --db URL)")  # fmt: skip
@click.option("--out", type=LocalPath(), default=None, help="run folder [runs/<dataset>-<preset>]")
@click.option("--overwrite", is_flag=True, help="replace an existing run folder (only once the new one is complete)")
@click.option(
    "--resume",
    "resume",
    type=LocalPath(file_okay=False),
    default=None,
    help="continue the interrupted run that was writing this run folder (its own config is used)",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1, max=MAX_THREADS),  # 2^63 processes was an OverflowError in the launcher (exit 3)
    default=1,
    show_default=True,
    help="data-parallel processes on this machine (torch.distributed; dot/biased, torch engine)",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress bar or log lines")
@click.option("--json", "as_json", is_flag=True, help="print metrics as JSON")
def train(**kw: Any) -> None:
    """Train a model and write a run folder (config, split, history, metrics, plot, model)."""
    from mfrec.config import SplitConfig

    split_given = [f"--{name}" for name, key in (("split", "split_method"), ("split-files", "split_files"))
                   if kw[key] is not None]  # fmt: skip
    if kw["resume"] is not None or kw["refit"] is not None:
        flag = "--resume" if kw["resume"] is not None else "--refit"
        if kw["resume"] is not None and kw["refit"] is not None:
            raise click.UsageError("give one of --resume and --refit")
        values = given_train_values(kw)
        # a refit may run where the validated run did not: the device and thread count are its own
        operational = {name: values.pop(name) for name in _OPERATIONAL if name in values and kw["refit"]}
        given = [f"--{name.replace('_', '-')}" for name in values]
        given += [f"--{name}" for name in _KEYS if kw.get(_KEYS[name])]
        given += split_given + [flag_of(name) for name in (*_SPLIT_USES, *FILE_OPTIONS, "duplicates", "k")
                                if option_given(name)]  # fmt: skip
        if given:
            verb = "continues the run" if kw["resume"] is not None else "retrains the run"
            raise click.UsageError(f"{flag} {verb} with its own saved config; leave out {', '.join(given)}")
        if kw["resume"] is not None:
            from mfrec.run import resume_config

            config = resume_config(kw["resume"])
            _check_data_path(config, flag)
            return _train(config, kw["resume"], kw, resume=True)
        from mfrec.run import refit_config

        config, kept = refit_config(kw["refit"])
        _check_data_path(config, flag)
        config = replace(config, k=kw["k"], train=config.train.replace(**operational))
        if not kw["quiet"]:
            click.echo(f"refit of {kw['refit']}: {config.train.model}, {kept} epoch(s), on every rating", err=True)
        run = kw["refit"]
        return _train(config, kw["out"] or run.with_name(f"{run.name}-refit"), kw, resume=False)
    method = kw["split_method"] or "stratified"
    if kw["split_files"] is not None:
        if kw["split_method"] is not None:
            raise click.UsageError("--split-files is the split; leave out --split")
        if kw["dataset"] or kw["ratings_file"]:
            raise click.UsageError("--split-files holds the data; leave out --dataset and --ratings")
        method = "files"
    else:
        run_config(kw)  # exactly one data source, before anything else is checked
    for name, methods in _SPLIT_USES.items():
        if option_given(name) and method not in methods:
            split = "--split-files" if method == "files" else f"--split {method}"
            raise click.UsageError(f"{flag_of(name)} does not apply to {split}; leave it out")
    if method == "none":  # nothing is held out: nothing to stop on, nothing to measure
        for name in ("patience", "target_rmse"):
            if option_given(name) and kw[name]:  # 0 (train every epoch) is what --split none does anyway
                raise click.UsageError(f"{flag_of(name)} needs validation ratings to stop on, and --split none "
                                       "holds none out; leave it out")  # fmt: skip
        if option_given("k"):
            raise click.UsageError("--k does not apply to --split none: nothing is evaluated; leave it out")
    preset_name, train_config = assemble_train_config(kw, kw["preset"], kw["config_file"])
    files = tuple(str(f) for f in kw["split_files"]) if kw["split_files"] is not None else None
    split = SplitConfig(method, tuple(kw["split_fractions"]), kw["split_seed"], kw["holdout"], files)
    if kw["feedback"] is not None:
        from mfrec.data.profiles import is_database_url

        if not is_database_url(kw["feedback"]):
            raise click.UsageError(f"--feedback takes a database URL (sqlite:///PATH, postgresql+psycopg://...), "
                                   f"not {kw['feedback']!r}")  # fmt: skip
        if files or is_database_url(str(kw["ratings_file"] or "")):
            raise click.UsageError("--feedback joins a --dataset or a --ratings file; leave it out here")
    config = run_config(kw, preset=preset_name, split=split, train=train_config, k=kw["k"], need_source=not files,
                        feedback=kw["feedback"])  # fmt: skip
    name = kw["dataset"] or Path(kw["ratings_file"] or kw["split_files"][0]).stem
    out = kw["out"] or Path("runs") / f"{name}-{preset_name}"
    _train(config, out, kw, resume=False)


def _check_data_path(config, flag: str) -> None:
    """--data-path locates a registered dataset's copy: for a run that read a file or database it would be
    ignored, so it is a usage error."""
    if config.dataset is None and option_given("data_path"):
        source = config.ratings_file or "its split files"
        raise click.UsageError(f"{flag}: this run read {source}, not a --dataset; leave out --data-path")


def _train(config, out: Path, kw: dict[str, Any], *, resume: bool) -> None:
    from mfrec.training import distributed

    if kw.get("nproc", 1) > 1:
        if distributed.launched_by_torchrun():
            raise click.UsageError("--nproc starts its own processes; under torchrun, leave it out")
        if resume:
            raise click.UsageError("--resume continues a run in one process; leave out --nproc")
        from mfrec.run import prepare_output

        config.train.check_distributed()
        prepare_output(out, kw["overwrite"])  # fail here, before any process starts
        nproc = kw["nproc"]
        kw = {**kw, "nproc": 1}
        distributed.launch(
            _train_rank, (config, out, kw), nproc, backend=distributed.backend_for(config.train.device)
        )
        return
    if distributed.launched_by_torchrun():
        config.train.check_distributed()
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
    every = max(1, getattr(train_config, "epochs", 1) // 20)  # a closed-form model (EASE) has no epochs

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
        click.echo(json_text(result.metrics, indent=2), nl=False)
        return
    click.echo(metrics_table(result.metrics))
    m = result.metrics
    click.echo(
        f"\n{m['epochs_run']} epoch{'' if m['epochs_run'] == 1 else 's'} (kept epoch {m['best_epoch']}), "
        f"fit {m['fit_seconds']:.1f} s, "
        f"total {m['total_seconds']:.1f} s on {m['device']}"
    )
    click.echo(
        f"run folder: {result.path}  ({' '.join(sorted(p.name for p in Path(result.path).iterdir()))})"
    )
    click.echo(f"report: {(Path(result.path) / REPORT_FILE).resolve().as_uri()}")
