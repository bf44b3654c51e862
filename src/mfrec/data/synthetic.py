"""Synthetic data sets shaped like a MovieLens release, written in its file layout.

``write_like("ml-25m", out)`` writes ``out/ml-25m/ratings.csv`` and ``movies.csv``
with ML-25M's header and column types, so the real loader reads it. Users'
activity and items' popularity are long-tailed (log-normal and Zipf), ratings come
from a low-rank model with biases and Gaussian noise, rounded to half stars, and
timestamps grow through the span of the release. Every user has at least 20
ratings, as in MovieLens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfrec.errors import ConfigError, OutputError


@dataclass(frozen=True)
class Shape:
    users: int
    items: int
    ratings: int
    start: int  # first timestamp (seconds)
    end: int


SHAPES = {
    "ml-25m": Shape(162_541, 59_047, 25_000_095, 789_652_009, 1_574_327_703),
    "ml-latest-small": Shape(610, 9_724, 100_836, 828_124_615, 1_537_799_250),
    "ml-1m": Shape(6_040, 3_706, 1_000_209, 956_703_932, 1_046_454_590),
}


def synthesize(shape: Shape, *, fraction: float = 1.0, rank: int = 8, seed: int = 0):
    """Arrays ``(users, items, ratings, timestamps)`` (1-based ids), unique pairs, sorted by user."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction must be in (0, 1], not {fraction}")
    rng = np.random.default_rng(seed)
    n_users = max(2, round(shape.users * fraction))
    # items shrink with the square root, so a small copy is not denser than the real one by 1/fraction
    n_items = max(40, round(shape.items * fraction**0.5))
    target = min(max(40, round(shape.ratings * fraction)), n_users * n_items // 2)
    activity = rng.lognormal(0.0, 1.2, n_users)
    low, high = 0.0, 1000.0 * target  # scale the activity so the clipped counts add up to the target
    for _ in range(60):
        middle = (low + high) / 2
        if np.clip(activity / activity.sum() * middle, 20, n_items // 2).sum() < target:
            low = middle
        else:
            high = middle
    want = np.clip(np.round(activity / activity.sum() * high), 20, n_items // 2).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    draws = np.repeat(np.arange(n_users), (want * 1.3).astype(np.int64) + 5)  # extra draws cover repeats
    keys = np.unique(draws * n_items + rng.choice(n_items, size=len(draws), p=popularity))
    for _ in range(10):  # users short of their count after removing repeats get uniform extra items
        users = keys // n_items
        short = np.flatnonzero(np.bincount(users, minlength=n_users) < want)
        if len(short) == 0:
            break
        extra = np.repeat(short, 2 * want[short])
        keys = np.unique(np.r_[keys, extra * n_items + rng.integers(0, n_items, len(extra))])
    users, items = keys // n_items, keys % n_items
    order = np.lexsort((rng.random(len(users)), users))  # each user's pairs in random order
    starts = np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))[:-1]]
    rank_in_user = np.arange(len(users)) - starts[users[order]]
    keep = np.sort(order[rank_in_user < want[users[order]]])
    users, items = users[keep], items[keep]
    p = rng.normal(0, 0.35, (n_users, rank))
    q = rng.normal(0, 0.35, (n_items, rank))
    bu, bi = rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_items)
    raw = 3.5 + bu[users] + bi[items] + np.einsum("ij,ij->i", p[users], q[items]) + rng.normal(0, 0.8, len(users))
    ratings = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    stamps = np.sort(rng.integers(shape.start, shape.end, len(users)))[rng.permutation(len(users))]
    return users + 1, items + 1, ratings, stamps, n_items


def write_like(name: str, out: str | Path, *, fraction: float = 1.0, seed: int = 0) -> Path:
    """Write a synthetic copy of ``name``'s layout under ``out/<name>/``; returns that folder.

    The folder is filled beside its place and renamed into it once complete, with a
    ``SHA256SUMS`` of its files. A folder that already holds anything (a real copy of
    the release, say) is an :class:`OutputError`, and nothing is written.
    """
    import os
    import shutil

    from mfrec._io import as_path, write_manifest
    from mfrec.options import CHECKS

    if name not in SHAPES:
        raise ConfigError(f"no synthetic shape for {name!r}; choose from {', '.join(SHAPES)}")
    accepts, wanted, _ = CHECKS["seed"]
    if not accepts(seed):
        raise ConfigError(f"seed must be {wanted}, not {seed!r}")
    folder = as_path(out, "out") / name
    if folder.is_symlink() or folder.is_file() or (folder.is_dir() and any(folder.iterdir())):
        raise OutputError(f"{folder} already exists and is not empty; nothing was written (choose another --out)")
    users, items, ratings, stamps, n_items = synthesize(SHAPES[name], fraction=fraction, seed=seed)
    work = Path(out) / f".{name}.synth-{os.getpid()}"
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        work.mkdir()
        _write_files(work, name, (users, items, ratings, stamps), n_items, fraction, seed)
        write_manifest(work, [p.name for p in work.iterdir()])
        os.rename(work, folder)  # onto nothing or an empty folder; anything else appeared meanwhile and is kept
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write to {folder}: {exc.strerror or exc}") from None
        raise
    return folder


def _write_files(folder: Path, name: str, arrays: tuple, n_items: int, fraction: float, seed: int) -> None:
    """ratings.csv, movies.csv and README.txt of a synthetic release in ``folder``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    users, items, ratings, stamps = arrays
    table = pa.table({"userId": users, "movieId": items, "rating": ratings, "timestamp": stamps})
    pacsv.write_csv(table, folder / "ratings.csv", pacsv.WriteOptions(quoting_style="none"))
    ids = np.arange(1, n_items + 1)
    years = 1920 + ids % 100
    movies = pa.table({
        "movieId": ids,
        "title": [f"Synthetic Movie {i} ({y})" for i, y in zip(ids.tolist(), years.tolist(), strict=True)],
        "genres": ["Drama|Comedy" if i % 2 else "Action" for i in ids.tolist()],
    })  # fmt: skip
    pacsv.write_csv(movies, folder / "movies.csv")
    (folder / "README.txt").write_text(
        f"Synthetic data shaped like {name} (fraction {fraction}, seed {seed}), written by mfrec; not MovieLens.\n"
    )
