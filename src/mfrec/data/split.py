"""Train/validation/test splits, deterministic for a seed.

Every split returns a :class:`Split` whose three parts are disjoint and together
hold every rating exactly once. Parts share the dataset's id maps; ratings in
val/test whose user or item never occurs in train are counted by
:meth:`Split.cold_start` (models predict them from biases and the global mean).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from mfrec._io import as_path, atomic_write, verify_manifest
from mfrec._repr import html_facts
from mfrec.data.ratings import Ratings, require_ratings
from mfrec.errors import ConfigError, DataError

METHODS = ("stratified", "random", "user", "temporal", "temporal-user", "none")
PARTS = ("train", "val", "test")
#: column names that look like a time, suggested when a temporal split finds no timestamps
TIME_NAME = re.compile(r"(?i)^(ts|.*(time|date).*)$")
#: Split seeds are scikit-learn's ``random_state`` for the stratified split: below 2^32.
SPLIT_SEED_LIMIT = 2**32


@dataclass(frozen=True)
class Split:
    """Three disjoint parts of one :class:`Ratings`; ``rows[part]`` are positions in the full data."""

    data: Ratings
    rows: dict[str, np.ndarray]
    method: str
    seed: int | None

    @cached_property
    def train(self) -> Ratings:
        return self.data.subset(self.rows["train"])

    @cached_property
    def val(self) -> Ratings:
        return self.data.subset(self.rows["val"])

    @cached_property
    def test(self) -> Ratings:
        return self.data.subset(self.rows["test"])

    def part(self, name: str) -> Ratings:
        if name not in PARTS:
            raise ConfigError(f"unknown split part {name!r}; choose from {', '.join(PARTS)}")
        return self.data.subset(self.rows[name])

    def sizes(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}

    def _summary(self) -> str:
        seed = "" if self.seed is None else f" seed {self.seed}"
        parts = " / ".join(f"{name} {len(self.rows[name]):,}" for name in PARTS)
        return f"{self.method}{seed}: {parts} of {self.data.name!r}"

    def __repr__(self) -> str:
        return f"Split({self._summary()})"

    def _repr_html_(self) -> str:
        facts = [(name, f"{len(self.rows[name]):,} ratings") for name in PARTS]
        return html_facts(f"Split of {self.data.name!r} ({self.method}"
                          f"{'' if self.seed is None else f', seed {self.seed}'})", facts)  # fmt: skip

    def cold_start(self) -> dict[str, dict[str, int]]:
        """For val and test: ratings whose user, item, or either is absent from train."""
        train = self.rows["train"]
        seen_users = np.zeros(self.data.n_users, dtype=bool)
        seen_items = np.zeros(self.data.n_items, dtype=bool)
        seen_users[self.data.users[train]] = True
        seen_items[self.data.items[train]] = True
        report = {}
        for name in ("val", "test"):
            rows = self.rows[name]
            new_user = ~seen_users[self.data.users[rows]]
            new_item = ~seen_items[self.data.items[rows]]
            report[name] = {
                "ratings": len(rows),
                "unseen_user": int(new_user.sum()),
                "unseen_item": int(new_item.sum()),
                "unseen_either": int((new_user | new_item).sum()),
            }
        return report

    def to_frame(self) -> pd.DataFrame:
        """Raw ids, ratings and a ``split`` column naming each rating's part."""
        frames = []
        for name in PARTS:
            frame = self.data.subset(self.rows[name]).to_frame()
            frame["split"] = name
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def save(self, path: str | Path) -> None:
        """Write the split as Parquet (raw ids, rating, timestamp, split) with its method and seed."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = {
            b"mfrec.split.method": self.method.encode(),
            b"mfrec.split.seed": str(self.seed).encode(),
            b"mfrec.split.kind": self.data.kind.encode(),
            b"mfrec.split.scale": f"{self.data.scale[0]},{self.data.scale[1]}".encode(),
        }
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def load_split(path: str | Path, like: Ratings | None = None) -> Split:
    """Read a split written by :meth:`Split.save`.

    With ``like`` (e.g. a model's id maps via a :class:`Ratings`), ids are mapped
    through its maps so indices agree with the model; otherwise new maps are built.
    """
    import pyarrow.parquet as pq

    if like is not None:
        require_ratings(like, "like")
    path = as_path(path, "the split path")
    if not path.is_file():
        raise DataError(f"{path}: no such split file")
    # a run folder's split: checked against the folder's digests
    verify_manifest(path.parent, [path.name], error=DataError, listed_only=True)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise DataError(f"{path}: not a split file written by mfrec ({type(exc).__name__})") from None
    frame = table.to_pandas()
    if not {"user", "item", "rating", "split"} <= set(frame.columns):
        raise DataError(f"{path}: not a split file written by mfrec (columns {', '.join(frame.columns)})")
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (table.schema.metadata or {}).items()}
    method, seed, scale, kind = _split_meta(meta, path)
    labels = frame["split"].to_numpy()
    if sum(int((labels == name).sum()) for name in PARTS) < len(labels):  # the slow search only when one is off
        odd = np.flatnonzero(~np.isin(labels, PARTS))
        raise DataError(f"{path}, row {odd[0] + 1}: part {labels[odd[0]]!r} is not one of {', '.join(PARTS)}")
    if kind == "implicit":  # the reader drops weights of 0 (no interaction); the parts must drop the same rows
        nonzero = pd.to_numeric(frame["rating"], errors="coerce").to_numpy() != 0
        frame, labels = frame[nonzero], labels[nonzero]
    data = Ratings.from_arrays(  # checked as a ratings file is: the digest proves who wrote it, not what
        frame["user"].to_numpy(),
        frame["item"].to_numpy(),
        frame["rating"].to_numpy(),
        timestamps=frame["timestamp"].to_numpy() if "timestamp" in frame else None,
        name=str(path),
        scale=scale,
        kind=kind,
        user_map=None if like is None else like.user_map,
        item_map=None if like is None else like.item_map,
    )
    rows = {name: np.flatnonzero(labels == name) for name in PARTS}
    return Split(data, rows, method, seed)


def _split_meta(meta: dict[str, str], path: Path) -> tuple[str, int | None, tuple[float, float], str]:
    """The method, seed, scale and kind a split file records (defaults for files without them)."""
    method = meta.get("mfrec.split.method", "unknown")
    seed_text = meta.get("mfrec.split.seed", "None")
    kind = meta.get("mfrec.split.kind", "explicit")
    try:
        seed = None if seed_text == "None" else int(seed_text)
        low, high = (float(v) for v in meta.get("mfrec.split.scale", "0.5,5").split(","))
    except ValueError:
        raise DataError(f"{path}: the split's seed or scale is not a number ({seed_text!r}, "
                        f"{meta.get('mfrec.split.scale')!r})") from None  # fmt: skip
    if not (np.isfinite(low) and np.isfinite(high) and low < high) or kind not in ("explicit", "implicit"):
        raise DataError(f"{path}: the split records scale {low:g} to {high:g} and kind {kind!r}; "
                        "not a split file written by mfrec")  # fmt: skip
    return method, seed, (low, high), kind


def split_ratings(
    data: Ratings,
    method: str = "stratified",
    *,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 42,
    holdout: int = 1,
) -> Split:
    """Split ``data`` into train/val/test.

    Methods:
        ``stratified``: the notebook's split. scikit-learn's ``train_test_split``
            stratified on the rating value: first ``fractions[0]`` to train, then the
            rest divided into val and test in the ratio of the last two fractions,
            both with ``random_state=seed``. With the defaults on ml-latest-small this
            is exactly the notebook's 60,501 / 20,167 / 20,168 split.
        ``random``: a uniformly random permutation cut by ``fractions``.
        ``user``: per-user holdout; each user's ratings are shuffled and cut by
            ``fractions`` (their first rating always goes to train).
        ``temporal``: a global time cut; the oldest ``fractions[0]`` of ratings to
            train, then val, then the newest to test.
        ``temporal-user``: each user's ``holdout`` latest ratings go to test and the
            ``holdout`` before those to val; users with ``2*holdout`` ratings or fewer
            stay entirely in train.
        ``none``: every rating in train and nothing to evaluate on (a deployment fit);
            ``fractions`` and ``seed`` are not used.
    """
    require_ratings(data, "data")
    if method not in METHODS:
        raise ConfigError(f"unknown split method {method!r}; choose from {', '.join(METHODS)}")
    if method == "none":
        if len(data) == 0:
            raise DataError(f"{data.name}: no ratings to train on")
        empty = np.zeros(0, dtype=np.int64)
        return Split(data, {"train": np.arange(len(data), dtype=np.int64), "val": empty, "test": empty}, "none", None)
    fractions = _check_fractions(fractions)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) < SPLIT_SEED_LIMIT:
        wanted = f"an integer from 0 to 2^32 - 1 ({SPLIT_SEED_LIMIT - 1})"
        raise ConfigError(f"the split seed must be {wanted}, not {seed!r}")
    if isinstance(holdout, bool) or not isinstance(holdout, int | np.integer):
        raise ConfigError(f"holdout must be an integer, not {holdout!r}")
    n = len(data)
    if n < 3:
        raise DataError(f"{data.name}: {n} rating(s) cannot be split into train, val and test")
    if method == "stratified":
        rows = _stratified(data.ratings, fractions, seed)
    elif method == "random":
        order = np.random.default_rng(seed).permutation(n)
        rows = _cut(order, fractions)
    elif method == "user":
        rows = _per_user(data.users, fractions, seed)
    elif method == "temporal":
        order = np.argsort(_timestamps(data), kind="stable")
        rows = _cut(order, fractions)
    else:
        if holdout < 1:
            raise ConfigError(f"holdout must be at least 1, not {holdout}")
        rows = _last_k(data.users, _timestamps(data), min(int(holdout), n))  # more than n: all in train
    rows = {name: np.sort(r).astype(np.int64) for name, r in rows.items()}
    return Split(data, rows, method, seed)


def split_from_parts(parts: dict[str, Ratings], name: str = "split files") -> Split:
    """One :class:`Split` of three separately read parts (a split made elsewhere), on shared id maps.

    ``parts`` maps ``train``, ``val`` and ``test`` to ratings read with the same
    options. Ids that are numbers in one part and text in another are compared as
    text (a CSV's ``7`` and ``"7"`` are one id). A (user, item) pair in two parts is
    a :class:`DataError`: the protocol would test on what it trained on.
    """
    missing = [p for p in PARTS if p not in parts]
    if missing:
        raise ConfigError(f"a split from files needs train, val and test parts; missing {', '.join(missing)}")
    if len(parts["train"]) == 0:
        raise DataError(f"{parts['train'].name}: the training part holds no ratings")
    kinds = {parts[p].kind for p in PARTS}
    scales = {tuple(parts[p].scale) for p in PARTS}
    if len(kinds) > 1 or len(scales) > 1:
        raise DataError(f"{name}: the parts were read as different kinds of data ({sorted(kinds)}, {sorted(scales)})")
    frames = [parts[p].to_frame() for p in PARTS]
    for column in ("user", "item"):
        numeric = {pd.api.types.is_integer_dtype(f[column]) for f in frames if len(f)}
        if len(numeric) > 1:
            for f in frames:
                f[column] = f[column].astype(str)
    stamped = all("timestamp" in f for f in frames)
    frame = pd.concat([f if stamped else f.drop(columns="timestamp", errors="ignore") for f in frames],
                      ignore_index=True)  # fmt: skip
    labels = np.repeat(np.arange(3), [len(f) for f in frames])
    repeated = frame.duplicated(["user", "item"], keep=False).to_numpy()
    if repeated.any():
        first = np.flatnonzero(repeated)[0]
        user, item = (getattr(v, "item", lambda v=v: v)() for v in (frame.at[first, "user"], frame.at[first, "item"]))
        same = repeated & (frame["user"] == user).to_numpy() & (frame["item"] == item).to_numpy()
        where = sorted({PARTS[labels[i]] for i in np.flatnonzero(same)}, key=PARTS.index)
        count = int(frame.loc[repeated].drop_duplicates(["user", "item"]).shape[0])
        raise DataError(
            f"{name}: user {user!r} rated item {item!r} in {' and '.join(where)} "
            f"({count:,} pair(s) are in more than one part); each pair must be in one part only"
        )
    train = parts["train"]
    data = Ratings.from_arrays(
        frame["user"].to_numpy(), frame["item"].to_numpy(), frame["rating"].to_numpy(),
        timestamps=frame["timestamp"].to_numpy() if stamped else None,
        name=train.name, scale=train.scale, kind=train.kind, validate=False,  # each part was read and checked
    )  # fmt: skip
    rows = {p: np.flatnonzero(labels == k).astype(np.int64) for k, p in enumerate(PARTS)}
    return Split(data, rows, "files", None)


def _check_fractions(fractions) -> tuple[float, float, float]:
    """Three finite, non-negative fractions adding up to 1, train above 0 and below 1."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"split fractions must be three numbers (train, val, test), not {fractions!r}") from None
    shown = " ".join(f"{f:g}" for f in values)
    if len(values) != 3 or not all(np.isfinite(values)) or min(values) < 0:
        raise ConfigError(f"split fractions must be three finite, non-negative numbers (train, val, test), not {shown}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must add up to 1, not {sum(values):g} ({shown})")
    if not 0 < values[0] < 1:
        left = "nothing for val and test (--split none trains on every rating)" if values[0] else "nothing to train on"
        raise ConfigError(f"split fractions {shown} leave {left}")
    return values  # type: ignore[return-value]


def _timestamps(data: Ratings) -> np.ndarray:
    if data.timestamps is None:
        timely = [c for c in data.info.get("unread_columns", ()) if TIME_NAME.search(c)]
        hint = (f"; its column {timely[0]!r} was not read: name it as the timestamp column "
                f"(--timestamp-col {shlex.quote(timely[0])}, or Columns(timestamp=...))") if timely else ""  # fmt: skip
        raise DataError(f"{data.name}: a temporal split needs timestamps, and these ratings have none{hint}")
    return data.timestamps


def _cut(order: np.ndarray, fractions) -> dict[str, np.ndarray]:
    n = len(order)
    n_train = round(fractions[0] * n)
    n_val = round(fractions[1] * n)
    return {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}


def _stratified(ratings: np.ndarray, fractions, seed: int) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    labels = np.round(ratings * 2).astype(np.int64)  # half-star classes; same partition as the values
    positions = np.arange(len(ratings))
    try:
        train, rest = train_test_split(
            positions, train_size=fractions[0], stratify=_merge_rare(labels), random_state=seed
        )
        if fractions[2] == 0:
            return {"train": train, "val": rest, "test": rest[:0]}
        if fractions[1] == 0:
            return {"train": train, "val": rest[:0], "test": rest}
        test_share = fractions[2] / (fractions[1] + fractions[2])
        val, test = train_test_split(rest, test_size=test_share, stratify=_merge_rare(labels[rest]), random_state=seed)
    except ValueError as exc:
        raise DataError(f"cannot make a stratified split of these ratings: {exc}") from None
    return {"train": train, "val": val, "test": test}


def _merge_rare(labels: np.ndarray) -> np.ndarray:
    """Fold classes with a single member into the most common class (scikit-learn needs two per class).

    On data where every rating value occurs at least twice per stage (any real
    dataset) this changes nothing, so the notebook's split is reproduced exactly.
    """
    values, counts = np.unique(labels, return_counts=True)
    rare = values[counts < 2]
    if len(rare) == 0:
        return labels
    return np.where(np.isin(labels, rare), values[np.argmax(counts)], labels)


def _per_user(users: np.ndarray, fractions, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(users)), users))  # grouped by user, shuffled within
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    share = rank / np.repeat(counts, counts)  # 0 for each user's first rating
    train = share < fractions[0]
    val = ~train & (share < fractions[0] + fractions[1])
    return {"train": order[train], "val": order[val], "test": order[~train & ~val]}


def _last_k(users: np.ndarray, stamps: np.ndarray, k: int) -> dict[str, np.ndarray]:
    order = np.lexsort((-np.arange(len(users)), -stamps, users))  # newest first within user
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    eligible = np.repeat(counts, counts) > 2 * k
    test = eligible & (rank < k)
    val = eligible & (rank >= k) & (rank < 2 * k)
    return {"train": order[~test & ~val], "val": order[val], "test": order[test]}
