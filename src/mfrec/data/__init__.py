"""Data: the ratings container, id maps, readers, the MovieLens registry and splits."""

from __future__ import annotations

from pathlib import Path

from mfrec.data.idmap import IdMap
from mfrec.data.movielens import REGISTRY, MovieLensSpec
from mfrec.data.ratings import Ratings
from mfrec.data.readers import Columns, DuplicateRatingsWarning, read_items, read_ratings
from mfrec.data.split import Split, load_split, split_ratings


def load_dataset(
    name: str,
    path: str | Path | None = None,
    *,
    download: bool = True,
    on_duplicates: str = "keep-latest",
    cache: bool = True,
) -> Ratings:
    """Load a registered MovieLens dataset (see :data:`REGISTRY`) with its titles.

    ``path`` may be the extracted folder or the official zip; otherwise
    ``$MFREC_DATA``, the cache and finally a download are tried
    (:mod:`mfrec.data.fetch`). With ``cache`` (the default), the parsed result is
    kept as Parquet in the cache folder and later loads of the same, unchanged
    file read that instead of the text (:mod:`mfrec.data.parsed`).
    """
    from mfrec._io import as_path
    from mfrec.data import parsed
    from mfrec.data.fetch import cache_dir, locate
    from mfrec.data.movielens import read_movielens
    from mfrec.options import check_flag

    download, cache = check_flag(download, "download"), check_flag(cache, "cache")
    source = locate(name, None if path is None else as_path(path, "path"), download=download)
    entry = parsed.entry_for(source.spec.name, source.file, on_duplicates, cache_dir()) if cache else None
    if entry is not None:
        cached = parsed.load(entry)
        if cached is not None:
            return cached
    ratings = read_movielens(source, on_duplicates=on_duplicates)
    if entry is not None:
        parsed.store(entry, ratings)
    return ratings


__all__ = [
    "REGISTRY",
    "Columns",
    "DuplicateRatingsWarning",
    "IdMap",
    "MovieLensSpec",
    "Ratings",
    "Split",
    "load_dataset",
    "load_split",
    "read_items",
    "read_ratings",
    "split_ratings",
]
