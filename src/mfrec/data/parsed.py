"""A binary cache of parsed datasets: the second load of ML-25M reads Parquet, not CSV.

After a registered dataset's CSV/DAT files are parsed and validated, the result
is written under ``<cache>/parsed/<name>-<key>/``:

* ``ratings.parquet``: user index (int32), item index (int32), rating (float32), timestamp (int64);
* ``users.parquet``, ``items.parquet``: the raw id of each index (and the item titles, genres and years);
* ``meta.json``: format version, scale, kind, name, counts, what validation reported, the
  SHA-256 of each Parquet file, and its own SHA-256 (of the rest of it, as canonical JSON).

The key hashes the source's path, size and modification time and the duplicate
policy, so an edited or replaced file is parsed again. Files are written to a
temporary file renamed into place, and ``meta.json``, written last, records the
SHA-256 of each, so a killed process never leaves an entry that counts; an entry
that cannot be read or whose content does not match its digests is ignored (and
parsed again), and a cache folder that cannot be written only costs the speed-up.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mfrec.data.idmap import IdMap
from mfrec.data.ratings import Ratings

FORMAT = 4  # 4: items.parquet holds genres and years
FILES = ("ratings.parquet", "users.parquet", "items.parquet")


def entry_for(name: str, source_file: Path, on_duplicates: str, root: Path) -> Path:
    """The cache folder for one parsed source file (see the module docstring for the key)."""
    stat = source_file.stat()
    key = json.dumps([FORMAT, name, str(source_file.resolve()), stat.st_size, stat.st_mtime_ns, on_duplicates])
    return root / "parsed" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def load(entry: Path) -> Ratings | None:
    """The cached ratings at ``entry``, or ``None`` when there is no complete, readable entry."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mfrec._io import file_digest, unseal_text

    try:
        meta = unseal_text((entry / "meta.json").read_text(encoding="utf-8"))  # meta.json carries its own digest
        if meta.get("format") != FORMAT:
            return None
        digests = meta.get("sha256") or {}
        if any(digests.get(name) != file_digest(entry / name) for name in FILES):
            return None  # damaged or incomplete: parse the source again
        table = pq.read_table(entry / "ratings.parquet")
        users = pq.read_table(entry / "users.parquet").column("id").to_numpy()
        items_table = pq.read_table(entry / "items.parquet")
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
    names = items_table.column_names
    titles = np.asarray(items_table.column("title").to_pylist(), dtype=object) if "title" in names else None
    genres = np.asarray(items_table.column("genres").to_pylist(), dtype=object) if "genres" in names else None
    years = items_table.column("year").to_numpy(zero_copy_only=False).astype(np.float64) if "year" in names else None
    has_time = "timestamp" in table.column_names
    ratings = Ratings(
        users=table.column("user").to_numpy().astype(np.int64),
        items=table.column("item").to_numpy().astype(np.int64),
        ratings=table.column("rating").to_numpy(),
        timestamps=table.column("timestamp").to_numpy() if has_time else None,
        user_map=IdMap(_ids(users), "user"),
        item_map=IdMap(_ids(items_table.column("id").to_numpy()), "item"),
        scale=tuple(meta["scale"]),
        titles=titles,
        name=meta["name"],
        kind=meta["kind"],
        genres=genres,
        years=years,
    )
    ratings.info.update(meta.get("info", {}))
    del table, items_table
    pa.default_memory_pool().release_unused()  # hand the decoded Parquet pages back to the system
    if len(ratings) != meta["n"]:
        return None
    return ratings


def store(entry: Path, ratings: Ratings) -> bool:
    """Write ``ratings`` as the cache entry ``entry``; False (and no usable partial entry) when it cannot.

    Each file is written atomically; ``meta.json``, written last, holds every file's
    SHA-256, so an entry counts only once it is whole, and a damaged file is noticed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mfrec._io import atomic_write, atomic_write_text, file_digest, sealed_json_text
    from mfrec.errors import OutputError

    try:
        entry.mkdir(parents=True, exist_ok=True)
        (entry / "meta.json").unlink(missing_ok=True)  # the entry is invalid until its new meta.json lands
        atomic_write(entry / "ratings.parquet", lambda tmp: _write_ratings(ratings, tmp))
        atomic_write(entry / "users.parquet",
                     lambda tmp: pq.write_table(pa.table({"id": _column(ratings.user_map.ids)}), tmp))  # fmt: skip
        items = {"id": _column(ratings.item_map.ids)}
        if ratings.titles is not None:
            items["title"] = pa.array([None if t is None or t != t else str(t) for t in ratings.titles], pa.string())
        if ratings.genres is not None:
            items["genres"] = pa.array([None if g is None or g != g else str(g) for g in ratings.genres], pa.string())
        if ratings.years is not None:
            items["year"] = pa.array(ratings.years, pa.float64())
        atomic_write(entry / "items.parquet", lambda tmp: pq.write_table(pa.table(items), tmp))
        meta = {
            "format": FORMAT,
            "name": ratings.name,
            "kind": ratings.kind,
            "scale": list(ratings.scale),
            "n": len(ratings),
            "info": {k: v for k, v in ratings.info.items() if isinstance(v, int | float | str)},
            "sha256": {name: file_digest(entry / name) for name in FILES},
        }
        atomic_write_text(entry / "meta.json", sealed_json_text(meta))
        return True
    except (OSError, OutputError, ValueError, pa.ArrowException):
        return False


def _write_ratings(ratings: Ratings, path: Path, rows: int = 1 << 22) -> None:
    """The rating arrays as Parquet, a row group at a time, so the copy made for writing stays small."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [("user", pa.int32()), ("item", pa.int32()), ("rating", pa.float32())]
    if ratings.timestamps is not None:
        fields.append(("timestamp", pa.int64()))
    schema = pa.schema(fields)
    with pq.ParquetWriter(path, schema, use_dictionary=False) as writer:
        for first in range(0, max(len(ratings), 1), rows):
            part = slice(first, first + rows)
            columns = [
                pa.array(ratings.users[part].astype(np.int32)),
                pa.array(ratings.items[part].astype(np.int32)),
                pa.array(ratings.ratings[part].astype(np.float32, copy=False)),
            ]
            if ratings.timestamps is not None:
                columns.append(pa.array(ratings.timestamps[part]))
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _column(ids: np.ndarray):
    import pyarrow as pa

    return pa.array(ids) if ids.dtype.kind in "iu" else pa.array([str(v) for v in ids], pa.string())


def _ids(values: np.ndarray) -> np.ndarray:
    return values if values.dtype.kind in "iu" else np.asarray(values, dtype=object)
