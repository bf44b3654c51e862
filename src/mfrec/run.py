"""A training run end to end: data -> split -> model -> evaluation -> run folder.

A run folder holds:

* ``config.json``: the fully resolved :class:`~mfrec.config.RunConfig`;
* ``split.parquet``: every rating with its part (train/val/test), so evaluation can be repeated;
* ``history.csv``: per-epoch train and validation RMSE (stars) and seconds;
* ``metrics.json``: model and baseline RMSE/MAE (stars) and notebook loss on val and test,
  cold-start counts, epochs, timing;
* ``loss.png``: train and validation RMSE per epoch;
* ``model.safetensors``: the model (see :mod:`mfrec.store`);
* ``report.html``: the run's report, one self-contained page (:mod:`mfrec.evaluation.report`);
* ``SHA256SUMS``: the digest of every other file.

The folder is written under a temporary name and renamed into place at the
end, so a killed run never leaves a folder that looks complete, and an
existing run is replaced (``overwrite=True``) only once the new one is whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mfrec._io import (
    MANIFEST,
    as_path,
    atomic_write_text,
    json_text,
    sealed_json_text,
    unseal,
    unseal_text,
    write_manifest,
)
from mfrec._repr import listed
from mfrec.config import RunConfig, SplitConfig, TrainConfig
from mfrec.data import Columns, Ratings, Split, load_dataset, read_ratings, split_ratings
from mfrec.data.readers import attach_items
from mfrec.data.split import PARTS, split_from_parts
from mfrec.errors import ConfigError, MfrecError, OutputError
from mfrec.estimator import MatrixFactorization, check_trainable
from mfrec.evaluation.baselines import BiasBaseline, GlobalMean
from mfrec.evaluation.metrics import rating_metrics
from mfrec.evaluation.plots import plot_history
from mfrec.evaluation.ranking import RANKING_USERS, evaluate_ranking, named_metrics, popularity_scores
from mfrec.evaluation.report import REPORT_FILE, build_report
from mfrec.store import MODEL_FILE
from mfrec.training.trainer import EpochRecord, resolve_device


@dataclass
class RunResult:
    """What :func:`train_run` produced."""

    path: Path
    model: MatrixFactorization
    split: Split
    metrics: dict[str, Any]


def load_data(config: RunConfig, data_path: str | Path | None = None, on_duplicates: str = "keep-latest") -> Ratings:
    """The run's ratings: a registered dataset, a ratings file, or the three files of a given split."""
    from mfrec.data.feedback import feedback_ratings
    from mfrec.data.profiles import is_database_url

    if config.split.files:
        return _split_from_files(config, on_duplicates).data
    if is_database_url(config.ratings_file):  # the ratings profiles gave through the service, alone
        scale = config.columns.get("scale")
        return _with_items(config, feedback_ratings(config.ratings_file, scale=tuple(scale) if scale else (0.5, 5.0)))
    if config.ratings_file:
        data = _read_file(config, config.ratings_file, on_duplicates)
    elif not config.dataset:
        raise ConfigError("give a dataset name (--dataset) or a ratings file (--ratings)")
    else:
        data = _with_items(config, load_dataset(config.dataset, data_path, on_duplicates=on_duplicates))
    return feedback_ratings(config.feedback, data) if config.feedback else data


def _with_items(config: RunConfig, ratings: Ratings) -> Ratings:
    """``ratings`` with the metadata of the run's items file (``--items``), when it names one."""
    items = config.columns.get("items")
    return ratings if not items else attach_items(ratings, items, config.columns.get("item") or "item")


def _read_file(config: RunConfig, path: str | Path, on_duplicates: str) -> Ratings:
    return _with_items(config, _read_ratings_file(config, path, on_duplicates))


def _read_ratings_file(config: RunConfig, path: str | Path, on_duplicates: str) -> Ratings:
    cols = Columns(**{k: v for k, v in config.columns.items() if k in ("user", "item", "rating", "timestamp")})
    scale = config.columns.get("scale")
    return read_ratings(
        path,
        columns=cols,
        sep=config.columns.get("sep"),
        scale=tuple(scale) if scale else None,
        on_duplicates=on_duplicates,
        implicit=bool(config.columns.get("implicit")),
    )


def make_split(config: RunConfig, data_path: str | Path | None = None, on_duplicates: str = "keep-latest") -> Split:
    """The run's split: the configured method over its data, or the parts read from ``split.files``."""
    s = config.split
    if s.method == "files":
        return _split_from_files(config, on_duplicates)
    data = load_data(config, data_path, on_duplicates)
    check_trainable(data)
    return split_ratings(data, s.method, fractions=s.fractions, seed=s.seed, holdout=s.holdout)


def _split_from_files(config: RunConfig, on_duplicates: str) -> Split:
    files = config.split.files
    if not files or len(files) != 3:
        raise ConfigError("a split from files needs three files: train, val and test")
    parts = {part: _read_ratings_file(config, path, on_duplicates) for part, path in zip(PARTS, files, strict=True)}
    split = split_from_parts(parts, name=" ".join(str(f) for f in files))
    return Split(_with_items(config, split.data), split.rows, split.method, split.seed)


def refit_config(run: str | Path) -> tuple[RunConfig, int]:
    """A finished run's config made into a deployment fit: every rating, no evaluation, the epochs it kept.

    Returns the config and the epoch count. Early stopping is off (nothing is held out
    to stop on), so the refit trains exactly the number of epochs the validated run kept.
    """
    from mfrec._io import verify_manifest
    from mfrec.config import read_json

    run = as_path(run, "run")
    if not run.is_dir():
        raise ConfigError(f"{run}: not a run folder (--refit takes the folder `mfrec train` wrote)")
    verify_manifest(run, ["config.json", "metrics.json"], error=ConfigError, listed_only=True)
    values = read_json(run / "config.json", missing=f"{run}: not a run folder (no config.json)")
    metrics = read_json(run / "metrics.json", missing=f"{run}: not a finished run (no metrics.json)")
    for name, value in (("config.json", values), ("metrics.json", metrics)):
        if not isinstance(value, dict):
            raise ConfigError(f"{run / name}: not what mfrec writes (a JSON object), but {type(value).__name__}")
    try:
        config = _run_config(values, str(run / "config.json"))
        kept = int(metrics["best_epoch"])
    except KeyError as exc:
        raise ConfigError(f"{run}: damaged run folder (no {exc} in config.json or metrics.json)") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{run}: damaged run folder ({type(exc).__name__}: {exc})") from None
    if config.split.method == "none":
        raise ConfigError(f"{run}: already trained on every rating (--split none); there is nothing to refit")
    if kept < 1:
        raise ConfigError(f"{run}: its metrics record no kept epoch ({kept}); train it again before refitting")
    split = SplitConfig("none", config.split.fractions, config.split.seed, config.split.holdout, config.split.files)
    changes = {"patience": 0, "target_rmse": 0.0}
    if hasattr(config.train, "epochs"):  # a closed-form model (EASE) has no epochs to keep
        changes["epochs"] = kept
    train = config.train.replace(**changes)
    return RunConfig(config.preset, config.dataset, config.ratings_file, config.columns, split, train, config.k,
                     config.feedback), kept


def baseline_metrics(split: Split) -> dict[str, dict[str, dict[str, float]]]:
    """Global-mean and bias-only baselines fitted on train, scored on val and test."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    train = split.train
    for name, baseline in (("global_mean", GlobalMean()), ("bias_only", BiasBaseline())):
        baseline.fit(train)
        out[name] = {}
        for part in ("val", "test"):
            ratings = split.part(part)
            pred = baseline.predict(ratings.users, ratings.items)
            out[name][part] = rating_metrics(pred, ratings.ratings, train.scale)
    return out


def ranking_baselines(split: Split, k: int = 10) -> dict[str, dict[str, dict[str, float]]]:
    """The popularity ranking (items by training count) on val and test (the same user sample as the model)."""
    score = popularity_scores(split.train)
    threshold = split.data.relevance_threshold
    return {
        "popularity": {
            part: evaluate_ranking(
                score, split.train, split.part(part), k=k, threshold=threshold, sample_users=RANKING_USERS
            )
            for part in ("val", "test")
        }
    }


def work_folder(out: str | Path) -> Path:
    """Where an unfinished run keeps its config and per-epoch checkpoint: ``.<name>.work`` beside ``out``."""
    out = Path(out)
    return out.parent / f".{out.name}.work"


#: What a run folder holds; ``--overwrite`` replaces a folder only when it holds nothing else.
RUN_FILES = frozenset({"config.json", "split.parquet", "history.csv", "metrics.json", "loss.png", MODEL_FILE,
                       REPORT_FILE, MANIFEST})


def is_run_folder(path: Path) -> bool:
    """True for a folder that mfrec wrote as a run folder (its config and model, and only run files)."""
    names = {p.name for p in path.iterdir()}
    return {"config.json", MODEL_FILE} <= names and names <= RUN_FILES


def _looks_like_run(path: Path) -> bool:
    """A folder holding a run's config and model, whatever else it holds."""
    return (path / "config.json").is_file() and (path / MODEL_FILE).is_file()


def prepare_output(out: str | Path, overwrite: bool, resume: bool = False) -> Path:
    """Check that ``out`` can be written before any training time is spent.

    ``overwrite`` replaces only an mfrec run folder; a folder holding anything else is
    refused, so nothing a user owns is ever deleted.
    """
    out = as_path(out, "out")
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise OutputError(f"{out}: is the current folder (or holds it); give --out a new folder for the run")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(f"{out}: a run folder already exists; pass --overwrite or choose another --out")
        if not is_run_folder(out):
            names = sorted(p.name for p in out.iterdir())
            extra = [name for name in names if name not in RUN_FILES]
            if _looks_like_run(out):  # a run with something of the user's put in it: name what would be lost
                raise OutputError(f"{out}: a run folder that also holds {listed(extra)}, which mfrec did not "
                                  "write; --overwrite deletes only what mfrec wrote, so move that out or choose "
                                  "another --out")  # fmt: skip
            raise OutputError(f"{out}: not an mfrec run folder (it holds {listed(names)}); --overwrite "
                              "replaces only run folders, so choose another --out")  # fmt: skip
    for parent in out.absolute().parents:
        if parent.is_file():
            raise OutputError(f"{out}: {parent} is a file, so it cannot hold the run folder; choose another --out")
        if _looks_like_run(parent):
            raise OutputError(f"{out}: inside the run folder {parent}, which would then hold a file it did not "
                              "write (and --overwrite of it would be refused); put the run beside it")  # fmt: skip
    if work_folder(out).exists() and not resume and not overwrite:
        raise OutputError(
            f"{out}: an interrupted run of this folder can be resumed (mfrec train --resume {out}); "
            "pass --overwrite to start over"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out.parent, prefix=".mfrec-probe-", delete=True)  # noqa: SIM115
        probe.close()
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    return out


@contextmanager
def run_lock(out: str | Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``out`` while a run writes it.

    A second run of the same folder is refused with an :class:`OutputError` instead of sharing
    its work folder, or taking it for an interrupted run that ``--overwrite`` would delete. The
    lock is the operating system's (``flock``): a killed run holds none.
    """
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    out = as_path(out, "out")
    lock = out.parent / f".{out.name}.lock"
    try:
        handle = lock.open("a")
    except OSError:  # a folder that does not exist yet or cannot be written: prepare_output names it
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise OutputError(f"{out}: another mfrec train is writing this run folder now; wait for it to finish, "
                          "or choose another --out") from None  # fmt: skip
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()


def train_run(
    config: RunConfig,
    out: str | Path,
    *,
    data_path: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    on_duplicates: str = "keep-latest",
    log: Callable[[str], None] = lambda _: None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    resume: bool = False,
) -> RunResult:
    """Run ``config`` and write the run folder at ``out`` (see the module docstring).

    While training, ``.<name>.work/`` beside ``out`` holds the config and a checkpoint
    written after every epoch; ``resume=True`` continues from it (see
    :func:`resume_config`). The work folder is removed once the run folder is complete.
    A second run of the same folder at the same time is an :class:`OutputError` (:func:`run_lock`).
    """
    from mfrec.training.distributed import current

    options = dict(data_path=data_path, overwrite=overwrite, progress=progress, on_duplicates=on_duplicates,
                   log=log, on_epoch=on_epoch, resume=resume)  # fmt: skip
    group = current()
    if group is not None and not group.is_main:  # rank 0 holds the lock for the group
        return _train_run(config, out, **options)
    with run_lock(out):
        return _train_run(config, out, **options)


def _train_run(
    config: RunConfig,
    out: str | Path,
    *,
    data_path: str | Path | None,
    overwrite: bool,
    progress: bool,
    on_duplicates: str,
    log: Callable[[str], None],
    on_epoch: Callable[[EpochRecord], None] | None,
    resume: bool,
) -> RunResult:
    from mfrec.options import check_flag
    from mfrec.training.distributed import current

    if not isinstance(config, RunConfig):
        raise ConfigError(f"config must be a RunConfig (e.g. mfrec.RunConfig(dataset='ml-latest-small')), "
                          f"not {type(config).__name__}")  # fmt: skip
    out = as_path(out, "out")
    data_path = None if data_path is None else as_path(data_path, "data_path")
    overwrite, progress, resume = (check_flag(v, n) for v, n in ((overwrite, "overwrite"), (progress, "progress"),
                                                                  (resume, "resume")))  # fmt: skip
    group = current()
    main = group is None or group.is_main
    if group is not None:
        if resume:
            raise ConfigError("--resume continues a run in one process; drop --nproc/torchrun to resume")
        if not main:
            log = lambda _: None  # noqa: E731 - rank 0 speaks for the group
    out = prepare_output(out, overwrite, resume) if main else Path(out)
    work = work_folder(out)
    started = time.perf_counter()
    split = make_split(config, data_path, on_duplicates)
    data = split.data
    dropped = data.info.get("duplicates_dropped", 0)
    log(
        f"data: {data.name}: {len(data):,} {'interactions' if data.kind == 'implicit' else 'ratings'}, "
        f"{data.n_users:,} users, {data.n_items:,} items"
        + (f" ({dropped} duplicate pairs dropped, latest kept)" if dropped else "")
    )
    if "feedback" in data.info:
        fb = data.info["feedback"]
        log(f"feedback: {fb['ratings']:,} ratings from {fb['profiles']:,} profiles, up to {fb['until']}")
    check_trainable(split.train, "training part" if config.split.method != "none" else "")
    s = config.split
    sizes = split.sizes()
    evaluated = s.method != "none"
    if evaluated and sizes["test"] == 0:
        raise ConfigError(
            f"the {s.method} split leaves no test ratings (train {sizes['train']:,}, val {sizes['val']:,}); "
            "choose other --split-fractions, a smaller --holdout or another --split"
        )
    cold = split.cold_start()
    if not evaluated:
        log(f"split: none: all {sizes['train']:,} ratings train the model; nothing is held out, nothing evaluated")
    else:
        how = "from files" if s.method == "files" else f"{s.method} seed {s.seed}"
        log(
            f"split: {how}: train {sizes['train']:,} / val {sizes['val']:,} / test {sizes['test']:,}; "
            f"unseen in train: val {cold['val']['unseen_either']:,}, test {cold['test']['unseen_either']:,}"
            + (" (predicted from what the model learned without them)" if config.train.predicts_ratings else "")
        )
    device = resolve_device(config.train.training_device)
    spec = config.train.spec
    log(f"model: {spec.describe(config.train.params, device)}; on {device}")
    if getattr(config.train.params, "implicit_pairs", None) == "all":
        log("implicit features: which items each user rated in train, val and test; never the val or test ratings")
    if group is not None:
        log(f"data-parallel: {group.world_size} ranks, every rank trains on 1/{group.world_size} of the ratings")
    fit_started = time.perf_counter()
    checkpoint = None
    if group is None:  # a checkpoint per epoch, so a killed run can be resumed (one process only)
        if not resume and work.exists():
            shutil.rmtree(work)
        try:
            work.mkdir(parents=True, exist_ok=True)
            atomic_write_text(work / "config.json", sealed_json_text(config.located().to_dict(), indent=2))
        except OSError as exc:
            raise OutputError(f"cannot write to {work}: {exc.strerror or exc}") from None
        checkpoint = work / "checkpoint.safetensors"
        if resume and checkpoint.exists():
            log(f"resuming from {checkpoint}")
    try:
        model = MatrixFactorization(config.train).fit(
            split.train, split.val, progress=progress and main, on_epoch=on_epoch if main else None,
            checkpoint=checkpoint, interactions=split.test,
        )  # fmt: skip
    except MfrecError:  # divergence or bad data would fail again on resume: keep nothing
        if group is None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    fit_seconds = time.perf_counter() - fit_started
    if not main:
        return RunResult(out, model, split, {})
    k = config.k
    if evaluated:  # top-N on every user up to RANKING_USERS; a uniform sample of them beyond (ML-25M: 162k users)
        ranked = {  # the test part's lists also feed the report: ranked once
            part: model.rank_test_users(split.part(part), train=split.train, k=k, sample_users=RANKING_USERS)
            for part in ("val", "test")
        }
        ranking = {part: lists.summary() for part, lists in ranked.items()}
        model_metrics = (
            {part: {**model.evaluate(split.part(part)), **named_metrics(ranking[part])} for part in ("val", "test")}
            if model.predicts_ratings
            else {part: named_metrics(ranking[part]) for part in ("val", "test")}
        )
        baselines = baseline_metrics(split) if model.predicts_ratings else {}
        for name, parts in ranking_baselines(split, k).items():
            baselines[name] = {part: named_metrics(values) for part, values in parts.items()}
    else:
        model_metrics, baselines, ranked = {}, {}, {}
    metrics: dict[str, Any] = {
        "dataset": data.name,
        "preset": config.preset,
        "kind": config.train.model,
        "config": config.train.to_dict(),
        "split": {"method": s.method, "seed": s.seed, "sizes": sizes, "cold_start": cold},
        "k": k,
        "model": model_metrics,
        "baselines": baselines,
        "epochs_run": len(model.history_),
        "best_epoch": model.best_epoch_,
        "fit_seconds": fit_seconds,
        "device": str(device),
        "ranks": 1 if group is None else group.world_size,
    }
    if "feedback" in data.info:  # how many profile ratings the run used, and up to when
        metrics["feedback"] = data.info["feedback"]
    model.set_seen(data)  # recommendations exclude everything a user rated, in any part
    metrics["total_seconds"] = time.perf_counter() - started
    path = _write_run(out, config, split, model, metrics, overwrite or resume, ranked=ranked.get("test"))
    shutil.rmtree(work, ignore_errors=True)
    return RunResult(path, model, split, metrics)


def resume_config(out: str | Path) -> RunConfig:
    """The config of the interrupted run that was writing ``out``."""
    from mfrec.config import read_json

    path = work_folder(out) / "config.json"
    values = read_json(path, missing=f"{out}: no interrupted run to resume (no {path})",
                       hint="; start over with --overwrite")  # fmt: skip
    try:
        unseal_text(path.read_text(encoding="utf-8"), indent=2)  # the seal, and the text exactly as written
        return _run_config(unseal(values), str(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: damaged run config ({type(exc).__name__}: {exc}); start over with --overwrite")\
            from None


def _run_config(values: dict[str, Any], where: str) -> RunConfig:
    return RunConfig(
        preset=str(values["preset"]),
        dataset=values["dataset"],
        ratings_file=values["ratings_file"],
        columns=dict(values["columns"]),
        split=SplitConfig.from_dict(values["split"]),
        train=TrainConfig.from_dict(values["train"], saved=True, where=where),
        k=int(values.get("k", 10)),
        feedback=values.get("feedback"),
    )


def _write_run(
    out: Path, config: RunConfig, split: Split, model: MatrixFactorization, metrics: dict, overwrite: bool,
    ranked: Any = None,
) -> Path:
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # a run folder follows the umask, as any folder would (mkdtemp makes 0700)
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    kept = False
    try:
        # the files it read as absolute paths: a refit or resume finds them from any folder
        (tmp / "config.json").write_text(json.dumps(config.located().to_dict(), indent=2) + "\n")
        split.save(tmp / "split.parquet")
        pd.DataFrame([r.to_dict() for r in model.history_]).to_csv(tmp / "history.csv", index=False)
        (tmp / "metrics.json").write_text(json_text(metrics, indent=2))
        plot_history(
            model.history_,
            tmp / "loss.png",
            best_epoch=model.best_epoch_,
            title=f"{config.train.model} on {metrics['dataset']} ({config.preset} preset)",
        )
        model.save(tmp / MODEL_FILE, metrics=metrics)
        atomic_write_text(tmp / REPORT_FILE, build_report(model, split, metrics, ranked=ranked))
        write_manifest(tmp, sorted(p.name for p in tmp.iterdir()))  # last: the digest of every file
        old = None
        if out.exists() and any(out.iterdir()) and not (overwrite and is_run_folder(out)):
            kept = True
            raise OutputError(f"{out}: appeared while training; the new run is kept at {tmp}")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        if not kept:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write the run folder {out}: {exc.strerror or exc}") from None
        raise
    return out
