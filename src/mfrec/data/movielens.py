"""The MovieLens registry: where each release lives, its layout and its parser."""

from __future__ import annotations

import csv
import io
import lzma
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from mfrec.data.idmap import INTEGER
from mfrec.data.ratings import Ratings
from mfrec.data.readers import Columns, read_delimited, validate_frame
from mfrec.errors import DataError

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
#: What reading a damaged zip raises: a bad header or CRC, a broken deflate, bzip2 or lzma stream, an early end.
ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError)


@dataclass(frozen=True)
class MovieLensSpec:
    """One MovieLens release.

    Attributes:
        name: registry name, e.g. ``"ml-1m"``.
        folder: the folder inside the official zip.
        layout: ``"csv"`` (header, comma), ``"dat"`` (``::``-separated), ``"udata"`` (ml-100k, tab).
        md5: checksum of the zip; ``None`` for releases GroupLens regenerates, whose
            published ``<zip>.md5`` file is fetched and checked instead.
        n_ratings: rating count of the release (for ``datasets info``).
        size_mb: approximate zip size.
    """

    name: str
    folder: str
    layout: str
    md5: str | None
    n_ratings: int
    size_mb: float
    scale: tuple[float, float] = (0.5, 5.0)
    description: str = ""

    @property
    def url(self) -> str:
        return f"{BASE_URL}{self.name}.zip"

    @property
    def ratings_file(self) -> str:
        return {"csv": "ratings.csv", "dat": "ratings.dat", "udata": "u.data"}[self.layout]

    @property
    def movies_file(self) -> str:
        return {"csv": "movies.csv", "dat": "movies.dat", "udata": "u.item"}[self.layout]


REGISTRY: dict[str, MovieLensSpec] = {
    spec.name: spec
    for spec in (
        MovieLensSpec(
            "ml-latest-small",
            "ml-latest-small",
            "csv",
            None,
            100_836,
            1.0,
            description="100k ratings, 610 users, 9.7k movies (development set, 2018)",
        ),
        MovieLensSpec(
            "ml-100k",
            "ml-100k",
            "udata",
            "0e33842e24a9c977be4e0107933c0723",
            100_000,
            4.9,
            scale=(1.0, 5.0),
            description="100k ratings, 943 users, 1.7k movies (1998)",
        ),
        MovieLensSpec(
            "ml-1m",
            "ml-1m",
            "dat",
            "c4d9eecfca2ab87c1945afe126590906",
            1_000_209,
            5.9,
            scale=(1.0, 5.0),
            description="1M ratings, 6k users, 3.9k movies (2003)",
        ),
        MovieLensSpec(
            "ml-10m",
            "ml-10M100K",
            "dat",
            "ce571fd55effeba0271552578f2648bd",
            10_000_054,
            63.0,
            description="10M ratings, 72k users, 10k movies (2009)",
        ),
        MovieLensSpec(
            "ml-20m",
            "ml-20m",
            "csv",
            "cd245b17a1ae2cc31bb14903e1204af3",
            20_000_263,
            190.0,
            description="20M ratings, 138k users, 27k movies (2015)",
        ),
        MovieLensSpec(
            "ml-25m",
            "ml-25m",
            "csv",
            "6b51fb2759a8657d3bfcbfc42b592ada",
            25_000_095,
            250.0,
            description="25M ratings, 162k users, 62k movies (2019)",
        ),
        MovieLensSpec(
            "ml-32m", "ml-32m", "csv", None, 32_000_204, 239.0, description="32M ratings, 200k users, 87k movies (2023)"
        ),
        MovieLensSpec(
            "ml-latest",
            "ml-latest",
            "csv",
            None,
            33_832_162,
            335.0,
            description="the full latest release (changes over time)",
        ),
    )
}


class Source:
    """A MovieLens copy on disk: an extracted folder or the official zip."""

    def __init__(self, path: Path, spec: MovieLensSpec) -> None:
        self.path = path
        self.spec = spec

    @property
    def file(self) -> Path:
        """The file whose size and time identify this copy: the ratings file, or the zip."""
        return self.path / self.spec.ratings_file if self.path.is_dir() else self.path

    def has(self, member: str) -> bool:
        if self.path.is_dir():
            return (self.path / member).is_file()
        try:
            with zipfile.ZipFile(self.path) as archive:
                return f"{self.spec.folder}/{member}" in archive.namelist()
        except ZIP_DAMAGE as exc:
            raise self._damaged(exc) from None

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        if self.path.is_dir():
            with (self.path / member).open("rb") as handle:
                yield handle
            return
        try:  # a damaged member shows only while it is read: a CRC, a zlib stream or an early end
            with zipfile.ZipFile(self.path) as archive, archive.open(f"{self.spec.folder}/{member}") as handle:
                yield handle
        except ZIP_DAMAGE as exc:
            raise self._damaged(exc) from None

    def check(self) -> None:
        """Read every member of a zip copy through its CRC (``DataError`` naming the first damaged one);
        a folder is taken as it is."""
        if self.path.is_dir():
            return
        try:
            with zipfile.ZipFile(self.path) as archive:
                bad = archive.testzip()
        except ZIP_DAMAGE as exc:
            raise self._damaged(exc) from None
        if bad is not None:
            raise self._damaged(f"{bad} does not match its CRC")

    def _damaged(self, reason: object) -> DataError:
        detail = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason
        return DataError(f"{self.path}: a damaged zip ({detail}); download it again, or give an unzipped copy")

    def describe(self, member: str) -> str:
        return str(self.path / member) if self.path.is_dir() else f"{self.path}:{self.spec.folder}/{member}"


def read_movielens(source: Source, on_duplicates: str = "keep-latest") -> Ratings:
    """Parse a MovieLens release's ratings and titles into :class:`Ratings`."""
    spec = source.spec
    member = spec.ratings_file
    where = source.describe(member)
    names = ["user", "item", "rating", "timestamp"]
    with source.open(member) as handle:
        frame = _typed_csv(handle) if spec.layout == "csv" else None
    with source.open(member) as handle:
        if frame is not None:
            header_lines = 1
        elif spec.layout == "csv":
            frame = read_delimited(handle, source=where, sep=",")
            frame = frame.rename(columns={"userId": "user", "movieId": "item"})
            header_lines = 1
        else:
            sep = "\t" if spec.layout == "udata" else "::"
            frame = read_delimited(handle, source=where, sep=sep, header=False, names=names)
            header_lines = 0
    items = read_items(source) if source.has(spec.movies_file) else None
    return validate_frame(
        frame,
        Columns("user", "item", "rating", "timestamp"),
        source=where,
        scale=spec.scale,
        header_lines=header_lines,
        on_duplicates=on_duplicates,
        item_info=items,
        name=spec.name,
        integer_ids=True,
    )


def _typed_csv(handle) -> pd.DataFrame | None:
    """The fast path for the CSV releases: pyarrow reads typed columns directly (seconds for ML-25M).

    Returns ``None`` when a value does not parse, so the validating reader can
    name the row and value; empty cells come back as NaN and are reported by validation.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float64(), "timestamp": pa.int64()}
    if not isinstance(handle, io.BufferedReader):  # a zip member: read here, where its damage raises in Python;
        handle = pa.BufferReader(handle.read())  # raised inside Arrow's reader threads it aborts the process
    try:
        table = pacsv.read_csv(handle, convert_options=pacsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    if (
        table.num_rows == 0
        or not set(types) <= set(table.column_names)
        or any(table.column(name).null_count for name in ("userId", "movieId"))
    ):
        return None
    table = table.select(list(types)).combine_chunks()
    # one block per column, and each Arrow buffer released once converted (pandas 2 would copy twice)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()
    return frame.rename(columns={"userId": "user", "movieId": "item"})


#: ml-100k's u.item genre flag columns (5-23), in order; "unknown" means no genre
UITEM_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                "War", "Western")  # fmt: skip


def read_items(source: Source) -> pd.DataFrame:
    """The items table (:mod:`mfrec.data.items`: title, genres, year by raw movie id) from movies.csv,
    movies.dat or u.item; years come from the titles' ``(YYYY)``."""
    from mfrec.data.items import item_table

    spec = source.spec
    where = source.describe(spec.movies_file)
    if spec.layout == "csv":
        with source.open(spec.movies_file) as handle:
            frame = read_delimited(handle, source=where, sep=",")
        ids, titles = frame["movieId"], frame["title"]
        genres = frame["genres"] if "genres" in frame.columns else None
    else:  # ml-100k and ml-1m titles are latin-1; later releases utf-8
        sep = "|" if spec.layout == "udata" else "::"
        for encoding in ("utf-8", "latin-1"):
            try:
                with source.open(spec.movies_file) as handle:
                    frame = read_delimited(
                        handle, source=where, sep=sep, header=False, encoding=encoding, quoting=csv.QUOTE_NONE
                    )
                break
            except DataError:
                if encoding == "latin-1":
                    raise
        ids, titles = frame[0], frame[1]
        if spec.layout == "udata" and frame.shape[1] >= 5 + len(UITEM_GENRES):
            flags = frame.iloc[:, 5 : 5 + len(UITEM_GENRES)].apply(pd.to_numeric, errors="coerce").fillna(0) > 0
            flags.columns = list(UITEM_GENRES)
            flags = flags.drop(columns="unknown")
            genres = flags.apply(lambda row: "|".join(flags.columns[row.to_numpy()]), axis=1)
        else:
            genres = frame[2] if frame.shape[1] > 2 else None
    text = ids.astype(str).str.strip()
    if not text.str.fullmatch(INTEGER.pattern).all():
        raise DataError(f"{where}: movie ids are not integers")
    index = pd.to_numeric(text).astype("int64").to_numpy()
    table = item_table(index, titles.to_numpy(dtype=object), None if genres is None else genres.to_numpy(dtype=object))
    return table[~table.index.duplicated(keep="first")]
