"""Data: the ratings container, id maps, readers, the MovieLens registry and splits."""

from __future__ import annotations

from pathlib import Path

from mfrec.data.idmap import IdMap
from mfrec.data.movielens import REGISTRY, MovieLensSpec
from mfrec.data.ratings import Ratings
from mfrec.data.readers import Columns, DuplicateRatingsWarning, read_ratings
from mfrec.data.split import Split, load_split, split_ratings


def load_dataset(
    name: str, path: str | Path | None = None, *, download: bool = True, on_duplicates: str = "keep-latest"
) -> Ratings:
    """Load a registered MovieLens dataset (see :data:`REGISTRY`) with its titles.

    ``path`` may be the extracted folder or the official zip; otherwise
    ``$MFREC_DATA``, the cache and finally a download are tried
    (:mod:`mfrec.data.fetch`).
    """
    from mfrec.data.fetch import locate
    from mfrec.data.movielens import read_movielens

    return read_movielens(locate(name, path, download=download), on_duplicates=on_duplicates)


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
    "read_ratings",
    "split_ratings",
]
