"""Readers for rating files (CSV, TSV, Parquet, MovieLens layouts) with validation.

Every problem is reported as a :class:`~mfrec.errors.DataError` whose message
names the file, the row (1-based line in the file, header included) and the value.
"""

from __future__ import annotations

import csv
import io
import re
import shlex
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from mfrec.data.ratings import Ratings
from mfrec.errors import ConfigError, DataError

DUPLICATE_POLICIES = ("keep-latest", "error")


@dataclass(frozen=True)
class Columns:
    """Column names of a ratings table; ``timestamp`` is optional, ``rating=None`` means interactions only."""

    user: str = "user"
    item: str = "item"
    rating: str | None = "rating"
    timestamp: str | None = None


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet/``::``-separated file into a DataFrame of strings and numbers.

    The format is chosen by suffix (``.parquet``, ``.tsv``, ``.dat``; anything
    else is CSV) unless ``sep`` is given; a Parquet file is known by its first
    bytes too. A gzip, bzip2 or xz file, or a zip of one file, is read through:
    the suffix inside (``ratings.tsv.gz``) picks the format. A spreadsheet is a
    :class:`DataError` saying to save it as CSV.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a ratings file")
    try:
        if sep is None and (_parquet_name(path.name) or _first_bytes(path).startswith(b"PAR1")):
            return pd.read_parquet(path)
        data, name = _unpacked(path)
        if sep is None and _parquet_name(name):
            return pd.read_parquet(io.BytesIO(data))
        sep = default_separator(name) if sep is None else sep
        return read_delimited(io.BytesIO(data), source=str(path), sep=sep, header=header, names=names,
                              encoding=encoding)  # fmt: skip
    except DataError:
        raise
    except (OSError, ValueError) as exc:  # pyarrow errors derive from these
        raise DataError(f"{path}: cannot be read: {_one_line(exc)}") from None


def read_ids(path: str | Path, column: str = "user") -> list[str]:
    """Ids from a file: one per line (blank lines skipped; a first line that is ``column`` is its header), or
    ``column`` of a CSV/TSV/Parquet table; compressed as :func:`read_table` reads. No id at all is a
    :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: is a folder, expected a file")
    if is_parquet(path):
        return _column_ids(read_table(path), column, path)
    try:
        data, name = _unpacked(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {_one_line(exc)}") from None
    lines = [line.strip() for line in _decoded(data, str(path)).splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: no {column} ids (the file is empty)")
    sep = default_separator(name)
    if sep in lines[0]:  # a table: its header names the columns (parsed from the bytes already read)
        return _column_ids(read_delimited(io.BytesIO(data), source=str(path), sep=sep), column, path)
    ids = lines[1:] if lines[0].lower() == column else lines
    if not ids:
        raise DataError(f"{path}: no {column} ids (a header only)")
    return ids


def _decoded(data: bytes, source: str, encoding: str = "utf-8") -> str:
    """``data`` as text, without a UTF-8 byte-order mark; bytes that do not decode are a :class:`DataError`."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{source}, line {line}: bytes that are not valid {encoding} text") from None


def _column_ids(frame: pd.DataFrame, column: str, path: Path) -> list[str]:
    if column not in frame.columns:
        found = ", ".join(map(repr, map(str, frame.columns))) or "nothing"
        raise DataError(f"{path}: no {column!r} column for the {column} ids; found {found}")
    values = frame[column].astype(str).str.strip()
    empty = np.flatnonzero((values == "").to_numpy() | frame[column].isna().to_numpy())
    if len(empty):
        raise DataError(f"{path}, row {int(empty[0]) + 1}: the {column} id is missing")
    if len(values) == 0:
        raise DataError(f"{path}: no {column} ids (a header only)")
    return values.tolist()


def is_parquet(path: str | Path, sep: str | None = None) -> bool:
    """Whether :func:`read_table` reads ``path`` as Parquet: by suffix or first bytes, when no separator is given."""
    return sep is None and (_parquet_name(_inner_name(Path(path))) or _first_bytes(path).startswith(b"PAR1"))


def _parquet_name(name: str) -> bool:
    return Path(name).suffix.lower() in (".parquet", ".pq")


def default_separator(name: str) -> str:
    """The field separator a file name implies: tab for ``.tsv``/``.data``, ``::`` for ``.dat``, else a comma."""
    lower = name.lower()
    return "\t" if lower.endswith((".tsv", ".data")) else "::" if lower.endswith(".dat") else ","


def _first_bytes(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(8)
    except OSError:  # no such file, a folder, or a name that is not a path
        return b""


_PACKED = {b"\x1f\x8b": ("gzip", ".gz"), b"BZh": ("bz2", ".bz2"), b"\xfd7zXZ\x00": ("lzma", ".xz")}


def _inner_name(path: Path) -> str:
    """The name of the table inside a compressed file or a zip of one file (else the file's own name)."""
    import zipfile

    head = _first_bytes(path)
    for magic, (_, suffix) in _PACKED.items():
        if head.startswith(magic) and path.name.lower().endswith(suffix):
            return path.name[: -len(suffix)]  # ratings.tsv.gz holds ratings.tsv; a gzip named r.tsv holds r.tsv
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                members = _zip_members(archive)
            return members[0].filename if len(members) == 1 else path.name
        except (OSError, zipfile.BadZipFile):
            return path.name
    return path.name


def _zip_members(archive) -> list:
    """A zip's files, without folders and the ``__MACOSX/`` entries macOS adds."""
    return [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]


def _unpacked(path: Path) -> tuple[bytes, str]:
    """The bytes of ``path``, decompressed (gzip, bzip2, xz) or taken from a zip of one file, and the inner name."""
    import importlib
    import zipfile

    head = _first_bytes(path)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise DataError(f"{path}: a spreadsheet (Excel); save the sheet as CSV or Parquet and read that")
    if head.startswith(b"(\xb5/\xfd"):
        raise DataError(f"{path}: Zstandard-compressed, which is not read here; decompress it first (zstd -d)")
    try:
        for magic, (module, _) in _PACKED.items():
            if head.startswith(magic):
                with importlib.import_module(module).open(path, "rb") as handle:
                    return handle.read(), _inner_name(path)
        if head.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(path) as archive:
                members = _zip_members(archive)
                names = [m.filename for m in members]
                if "[Content_Types].xml" in names or "mimetype" in names:
                    raise DataError(f"{path}: a spreadsheet or office document (Excel, OpenDocument); save the "
                                    "sheet as CSV or Parquet and read that")  # fmt: skip
                if len(members) != 1:
                    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
                    dataset = any(n.lower().endswith(("ratings.csv", "ratings.dat")) for n in names)
                    where = (" (a MovieLens zip: --dataset NAME --data-path ZIP)" if dataset
                             else "; unzip it and name the file")  # fmt: skip
                    raise DataError(f"{path}: a zip of {len(members)} files ({shown or 'none'}), not one{where}")
                return archive.read(members[0]), members[0].filename
    except DataError:
        raise
    except Exception as exc:  # zlib, bz2, lzma and zipfile each raise their own type for a damaged file
        raise DataError(f"{path}: damaged compressed file ({_one_line(exc)})") from None
    return path.read_bytes(), path.name


def read_delimited(
    handle: IO[bytes],
    *,
    source: str,
    sep: str | None = None,
    header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_MINIMAL,
) -> pd.DataFrame:
    """Parse delimited text. ``sep=None`` picks ``,`` or tab by the suffix of ``source``; ``::`` is supported."""
    sep = _check_separator(sep)
    data = handle.read()
    if sep is None:
        sep = default_separator(source)
    if sep == "::":  # the C parser takes one-byte separators only
        data = data.replace(b"::", b"\x1f")
        sep = "\x1f"
    text = _decoded(data, source, encoding)
    if not text.strip():
        raise DataError(f"{source}: the file is empty")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # index_col=False: a row with more fields than the header is an error below, never an index
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                header=0 if header else None,
                names=names,
                dtype=str,
                keep_default_na=False,
                quoting=quoting,
                engine="c",
                index_col=False,
            )
    except pd.errors.ParserError as exc:
        raise DataError(f"{source}: malformed line: {_one_line(exc)}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the file is empty") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        lines = text.splitlines()
        first = 1 if header else 0
        fields = len(next(csv.reader([lines[first]], delimiter=sep))) if len(lines) > first else 0
        above = header and names is None and len(frame.columns) == 1 and fields > 1
        raise DataError(
            f"{source}, line {first + 1}: {fields} fields, but the "
            + (
                f"header names {len(frame.columns)} columns"
                if header and names is None
                else f"{len(frame.columns)} column names were given"
            )
            + (" (is line 1 a title or comment above the header? the header must be the first line)" if above else "")
        )
    for w in caught:  # any other warning goes on as it came
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if header and names is None:
        _check_unique_header(text, sep, quoting, source)
    return frame


def _check_unique_header(text: str, sep: str, quoting: int, source: str) -> None:
    """A header that names a column twice is a :class:`DataError` (pandas would rename the second ``name.1``)."""
    try:  # newline="": the csv module then reads \r, \n and \r\n line ends alike, as pandas did
        first = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting), [])
    except csv.Error:  # pandas read the header already; its own checks stand
        return
    seen: dict[str, int] = {}
    for position, name in enumerate(first, 1):
        if name in seen and name != "":
            raise DataError(f"{source}, line 1: the header names {name!r} twice (columns {seen[name]} and {position})")
        seen.setdefault(name, position)


#: field separators a header may show, with how each is typed as a flag
_SEPARATORS = (("\t", "'\\t'"), (";", "';'"), ("|", "'|'"), ("::", "'::'"), (",", "','"))


def _header_separator(header: str) -> str | None:
    """The first of :data:`_SEPARATORS` that a header read as one column holds, if any."""
    return next((sep for sep, _ in _SEPARATORS if sep in header), None)


def _header_separator_of(path: Path) -> str | None:
    """The separator of a file whose header lacks the one its name implies and holds another; else ``None``."""
    try:
        data, name = _unpacked(path)
    except (DataError, OSError, ValueError):  # read_table names the problem
        return None
    header = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    return None if default_separator(name) in header else _header_separator(header)


def _separator_hint(header: str) -> str:
    """For a table read as one column: the separator its header seems to use, as a flag to try."""
    sep = _header_separator(header)
    if sep is None:
        return " (one column: is the field separator right?)"
    flag = dict(_SEPARATORS)[sep]
    return f" (one column: the header holds {flag}, so try --sep {flag}, or sep={sep!r} in Python)"


def _check_separator(sep: str | None) -> str | None:
    """One ASCII character other than a quote or line break, ``::``, or ``None``; ``\\t`` means a tab."""
    if sep is None or sep == "::":
        return sep
    sep = {"\\t": "\t", "tab": "\t"}.get(sep, sep)
    if len(sep) != 1 or not sep.isascii() or sep in "\r\n\"" or (sep.isalnum()):
        raise DataError(f"the field separator must be one character such as , ; | or tab (or ::), not {sep!r}")
    return sep


#: words that name each role's column in tables seen in the wild (userId, movie_id, Book-Rating, ...)
_ROLE_WORDS = {
    "user": ("user", "uid", "customer", "member", "visitor", "reader", "listener", "viewer"),
    "item": ("item", "movie", "product", "iid", "book", "song", "track", "artist", "isbn", "asin", "film"),
    "rating": ("rating", "score", "stars", "value"),
    "timestamp": ("timestamp", "time", "date"),
}


def _column_hint(columns: Columns, frame: pd.DataFrame) -> str:
    """For each missing column, a found column whose name says it plays that role, and how to name it.

    Only printable names are offered (the message is one line, and the flag must be typeable).

    ``userId`` for ``user``, ``movie_id`` for ``item``: ``"; name them: --user-col userId
    (Columns(user='userId') in Python)"``, or ``""`` where no found name fits.
    """
    found = [c for c in frame.columns if isinstance(c, str)]  # a tuple or number cannot be typed as a flag
    taken = {getattr(columns, role) for role in _ROLE_WORDS} & set(found)
    chosen: dict[str, str] = {}
    for role, words in _ROLE_WORDS.items():
        wanted = getattr(columns, role)
        if wanted is None or wanted in found:
            continue
        for name in found:
            plain = re.sub(r"[^a-z]", "", name.lower())
            if name.isprintable() and name not in taken and any(word in plain for word in words):
                chosen[role] = name
                taken.add(name)
                break
    if not chosen:
        return ""
    flags = " ".join(f"--{role}-col {shlex.quote(name)}" for role, name in chosen.items())
    python = ", ".join(f"{role}={name!r}" for role, name in chosen.items())
    return f"; name them: {flags} (Columns({python}) in Python)"


def validate_frame(
    frame: pd.DataFrame,
    columns: Columns,
    *,
    source: str,
    scale: tuple[float, float] | None,
    header_lines: int = 1,
    on_duplicates: str = "keep-latest",
    item_info: pd.DataFrame | None = None,
    name: str | None = None,
    implicit: bool = False,
    integer_ids: bool = False,
) -> Ratings:
    """Check a raw table and turn it into :class:`Ratings`.

    Checks, in order: required columns present; at least one row; user and item
    ids present (integers when every id parses as one, strings otherwise);
    ratings numeric, finite and inside ``scale``; timestamps integer. Duplicate
    (user, item) pairs keep the latest by timestamp (the last row without
    timestamps); how many were dropped is in ``ratings.info["duplicates_dropped"]``
    and a warning. ``on_duplicates="error"`` refuses them instead.

    Implicit feedback (``implicit=True`` or no rating column): the rating column,
    if any, holds counts or weights (finite, >= 0, no scale); without one every
    interaction has weight 1. The result has ``kind="implicit"``.
    """
    implicit = implicit or columns.rating is None
    if on_duplicates not in DUPLICATE_POLICIES:
        raise DataError(f"on_duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, not {on_duplicates!r}")
    wanted = [c for c in (columns.user, columns.item, columns.rating, columns.timestamp) if c]
    twice = [c for c in wanted if (frame.columns == c).sum() > 1]  # a DataFrame may hold one name twice
    if twice:
        raise DataError(f"{source}: the table has {len(np.flatnonzero(frame.columns == twice[0]))} columns named "
                        f"{twice[0]!r}; keep one")  # fmt: skip
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        found = ", ".join(map(repr, map(str, frame.columns))) or "nothing"  # repr: a name may hold a newline
        hint = _column_hint(columns, frame)
        if len(frame.columns) == 1:
            hint = _separator_hint(str(frame.columns[0]))
        raise DataError(f"{source}: missing column(s) {', '.join(map(repr, missing))}; found {found}{hint}")
    if len(frame) == 0:
        raise DataError(f"{source}: no ratings (header only or empty)")

    def row_of(position: int) -> int:
        return int(position) + 1 + header_lines

    users = _ids(frame[columns.user], "user", source, row_of, integer_ids)
    items = _ids(frame[columns.item], "item", source, row_of, integer_ids)
    if columns.rating is None:
        ratings = np.ones(len(frame))
    else:
        ratings = _numbers(frame[columns.rating], "rating", source, row_of)
    if implicit:
        negative = np.flatnonzero(ratings < 0)
        if len(negative):
            k = negative[0]
            raise DataError(f"{source}, row {row_of(k)}: interaction weight {_fmt(ratings[k])} is negative")
        scale = (0.0, float(ratings.max()))
    elif scale is not None:
        low, high = check_scale(scale)
        outside = np.flatnonzero((ratings < low) | (ratings > high))
        if len(outside):
            k = outside[0]
            raise DataError(
                f"{source}, row {row_of(k)}: rating {_fmt(ratings[k])} is outside the rating scale "
                f"[{_fmt(low)}, {_fmt(high)}]" + (f" ({len(outside)} such rows)" if len(outside) > 1 else "")
            )
    else:
        scale = (float(ratings.min()), float(ratings.max()))
    timestamps = _timestamps(frame[columns.timestamp], source, row_of) if columns.timestamp else None

    from mfrec.data.idmap import IdMap

    user_map, user_codes = IdMap.from_values(users, "user")
    item_map, item_codes = IdMap.from_values(items, "item")
    del users, items
    # one int64 key per (user, item); sorting it finds repeats in O(n log n) with two arrays of memory
    keys = user_codes * len(item_map) + item_codes
    ordered = np.sort(keys)
    has_duplicates = bool((ordered[1:] == ordered[:-1]).any())
    del ordered
    dropped = 0
    if has_duplicates:
        if on_duplicates == "error":
            repeated = pd.Series(keys).duplicated(keep="first").to_numpy()
            k = int(np.flatnonzero(repeated)[0])
            raise DataError(
                f"{source}, row {row_of(k)}: duplicate rating for user {user_map.ids[user_codes[k]]} and item "
                f"{item_map.ids[item_codes[k]]} ({int(repeated.sum())} duplicate rows)"
            )
        order = np.arange(len(keys))
        if timestamps is not None:  # latest timestamp last; ties keep file order
            order = np.lexsort((order, timestamps))
        keep = ~pd.Series(keys[order]).duplicated(keep="last").to_numpy()
        rows = np.sort(order[keep])
        dropped = len(keys) - len(rows)
        user_codes, item_codes, ratings = user_codes[rows], item_codes[rows], ratings[rows]
        if timestamps is not None:
            timestamps = timestamps[rows]
        warnings.warn(
            f"{source}: dropped {dropped} duplicate (user, item) rating(s), kept the latest",
            DuplicateRatingsWarning,
            stacklevel=2,
        )
    del keys
    result = Ratings.from_codes(
        user_codes,
        item_codes,
        ratings,
        user_map=user_map,
        item_map=item_map,
        timestamps=timestamps,
        scale=scale,
        item_info=item_info,
        name=name or source,
        kind="implicit" if implicit else "explicit",
    )
    result.info["duplicates_dropped"] = dropped
    return result


class DuplicateRatingsWarning(UserWarning):
    """Duplicate (user, item) pairs were found and resolved by keeping the latest."""


def read_ratings(
    source: str | Path | Any,
    *,
    columns: Columns | None = None,
    sep: str | None = None,
    scale: tuple[float, float] | None = (0.5, 5.0),
    on_duplicates: str = "keep-latest",
    implicit: bool = False,
    items: str | Path | Any = None,
) -> Ratings:
    """Read ratings from a CSV/TSV/Parquet file or from a table in memory, with the given column names.

    Args:
        source: a file path (``.parquet`` is read with pyarrow, other suffixes as text), or a
            pandas DataFrame, a polars DataFrame or a pyarrow Table. A table is checked exactly
            like a file; its rows are numbered from 1 in error messages.
        columns: column names (default ``user``, ``item``, ``rating``, no timestamp).
        sep: field separator of a text file; default by suffix (``,``, tab for ``.tsv``,
            ``::`` for ``.dat``).
        scale: the allowed rating range in stars; ``None`` takes it from the data.
        on_duplicates: ``"keep-latest"`` or ``"error"``.
        implicit: the rating column holds counts/weights (views, plays); with
            ``columns.rating=None`` there is no rating column at all.
        items: item metadata, as a file path or table with columns ``item`` (or the ratings'
            item column), ``title``, ``genres`` (``|``-joined) and ``year`` (any may be
            absent); read by :func:`mfrec.data.items.read_items`. Titles, genres and years
            are then shown with recommendations and usable as filters.

    Raises:
        DataError: naming the file (or table), the row and the value of the first problem.
    """
    if columns is not None and not isinstance(columns, Columns):
        raise ConfigError(f"columns must be mfrec.Columns(user=..., item=..., rating=..., timestamp=...), "
                          f"not {type(columns).__name__}")  # fmt: skip
    columns = columns or Columns()
    ratings = _read_ratings(source, columns, sep, scale, on_duplicates, implicit)
    return ratings if items is None else attach_items(ratings, items, columns.item)


def read_items(
    source: str | Path | Any,
    *,
    item: str = "item",
    title: str | None = "title",
    genres: str | None = "genres",
    year: str | None = "year",
    sep: str | None = None,
) -> pd.DataFrame:
    """An items table (:mod:`mfrec.data.items`) from a CSV/TSV/Parquet file or a pandas/polars/pyarrow table.

    ``item`` names the id column (required). ``title``, ``genres`` and ``year`` name
    optional columns: a column that is absent is simply unknown, except that years
    are then read from the titles' ``(YYYY)``. Genres are names joined by ``|``.

    Raises:
        DataError: naming the file and the first row whose id is missing or repeated, or
            whose year is not a whole number.
    """
    from mfrec.data.items import parse_items

    frame, where, first_row = _items_source(source, sep)
    return parse_items(frame, where=where, first_row=first_row, item=item, title=title, genres=genres, year=year)


def attach_items(ratings: Ratings, items: str | Path | Any, item_column: str = "item") -> Ratings:
    """``ratings`` with the metadata of an items file or table (see :func:`read_ratings`); its id column is
    ``item_column`` (the ratings' own) or else the first of ``item``, ``movieId``, ``item_id``, ``id`` it has."""
    from mfrec.data.items import parse_items

    frame, where, first_row = _items_source(items)
    names = [str(c) for c in frame.columns]
    item = next((c for c in (item_column, "item", "movieId", "item_id", "id") if c in names), item_column)
    table = parse_items(frame, where=where, first_row=first_row, item=item)
    return ratings.with_items(table, source=where)


def _items_source(source: Any, sep: str | None = None) -> tuple[pd.DataFrame, str, int]:
    """``(frame, its name for errors, the row number of its first data row)`` of an items file or table."""
    frame = table_frame(source)
    if frame is not None:
        return frame, f"{type(source).__module__.split('.')[0]} {type(source).__name__}", 1
    if isinstance(source, str | Path):
        if sep is None and not is_parquet(source):  # no --sep for items: take the separator its header uses
            sep = _header_separator_of(Path(source))
        return read_table(source, sep=sep), str(source), 1 if is_parquet(source, sep) else 2
    raise DataError(f"an items table is a file path or a pandas/polars DataFrame or pyarrow Table, "
                    f"not {type(source).__name__}")  # fmt: skip


def _read_ratings(source, columns: Columns, sep, scale, on_duplicates: str, implicit: bool) -> Ratings:
    frame = table_frame(source)
    if frame is not None:
        label = f"{type(source).__module__.split('.')[0]} {type(source).__name__}"
        return validate_frame(frame, columns, source=label, scale=scale, header_lines=0,
                              on_duplicates=on_duplicates, name="ratings", implicit=implicit)  # fmt: skip
    if not isinstance(source, str | Path):
        raise DataError(f"read_ratings takes a file path, a pandas or polars DataFrame or a pyarrow Table, "
                        f"not {type(source).__name__}")  # fmt: skip
    frame = read_table(source, sep=sep)
    return validate_frame(
        frame,
        columns,
        source=str(source),
        scale=scale,
        header_lines=0 if is_parquet(source, sep) else 1,
        on_duplicates=on_duplicates,
        name=Path(source).name,
        implicit=implicit,
    )


def table_frame(source: Any) -> pd.DataFrame | None:
    """``source`` as a pandas DataFrame when it is a table in memory (pandas, polars, pyarrow), else None.

    polars and pyarrow tables are converted through Arrow; neither library is imported here. A pandas
    index level with a name (``frame.set_index("user")``) is a column, unless a column has that name.
    """
    if isinstance(source, pd.DataFrame):
        named = [name for name in source.index.names if name is not None and name not in source.columns]
        return (source.reset_index(level=named) if named else source).reset_index(drop=True)
    module = type(source).__module__.split(".")[0]
    if module in ("polars", "pyarrow") and hasattr(source, "to_pandas"):
        try:
            frame = source.to_pandas()
        except Exception as exc:  # a foreign library's conversion error becomes ours
            raise DataError(f"{module} {type(source).__name__}: cannot be converted: {_one_line(exc)}") from None
        if isinstance(frame, pd.DataFrame):
            return frame
    return None


def _ids(column: pd.Series, what: str, source: str, row_of, integer: bool = False) -> np.ndarray:
    """The ids of ``column``, exactly as written.

    Integers (int64) when every id is written as an integer literal that fits in 64 bits
    (:data:`~mfrec.data.idmap.INTEGER`: ``"10"``, not ``"1e1"``, ``"010"`` or ``"+10"``),
    strings otherwise, with surrounding whitespace dropped. Typed columns (Parquet) keep
    their integers; unsigned ones at or above 2**63 become their decimal text, and whole
    floats below 2**53 (a column pandas widened for a missing value) become integers.
    ``integer=True`` requires integer ids and names the first that is not one.
    """
    from mfrec.data.idmap import INTEGER

    values = column.to_numpy()
    empty = np.flatnonzero(column.isna().to_numpy())
    if len(empty):
        raise DataError(f"{source}, row {row_of(empty[0])}: {what} id is missing")
    if (typed := _typed_int64(values)) is not None:
        return typed
    if values.dtype == object and pd.api.types.infer_dtype(values) not in ("string", "integer"):
        # a table in memory may hold lists, dicts or other objects in a cell; files never do, so this is rare
        plain = (str, bytes, int, float, np.integer, np.floating)
        odd = [k for k, v in enumerate(values) if not isinstance(v, plain) or isinstance(v, bool | np.bool_)]
        if odd:
            raise DataError(f"{source}, row {row_of(odd[0])}: {what} id {values[odd[0]]!r} is not text or a number")
    if values.dtype.kind == "f" and (np.abs(values) < 2**53).all() and (values == np.floor(values)).all():
        return values.astype(np.int64)
    # typed values: the exact decimal text of each; text: as written, without surrounding spaces
    text = pd.Series(values.astype(object)).astype(str) if values.dtype.kind in "uf" else column.astype(str).str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if len(empty):
        raise DataError(f"{source}, row {row_of(empty[0])}: {what} id is missing")
    literal = text.str.fullmatch(INTEGER.pattern).to_numpy(dtype=bool)
    if literal.all():
        fits = _fits_int64(text)
        if fits.all():
            return pd.to_numeric(text).to_numpy(dtype=np.int64)
        if integer:
            k = int(np.flatnonzero(~fits)[0])
            raise DataError(f"{source}, row {row_of(k)}: {what} id {text.iloc[k]} is beyond 64-bit integers")
    elif integer:
        k = int(np.flatnonzero(~literal)[0])
        raise DataError(f"{source}, row {row_of(k)}: {what} id {text.iloc[k]!r} is not an integer")
    return text.to_numpy(dtype=object).astype(str)


def _typed_int64(values: np.ndarray) -> np.ndarray | None:
    """A typed integer column as int64, when every value fits; ``None`` otherwise (text, floats, big uint64)."""
    if values.dtype.kind == "i":
        return values.astype(np.int64, copy=False)
    if values.dtype.kind == "u" and (len(values) == 0 or values.max() < 2**63):
        return values.astype(np.int64)
    return None


def _fits_int64(text: pd.Series) -> np.ndarray:
    """For integer literals: which fit in int64. Only the few long ones are checked one by one."""
    fits = np.ones(len(text), dtype=bool)
    for k in np.flatnonzero((text.str.len() >= 19).to_numpy(dtype=bool)):
        fits[k] = -(2**63) <= int(text.iloc[k]) < 2**63
    return fits


def _timestamps(column: pd.Series, source: str, row_of) -> np.ndarray:
    """Integer timestamps (int64) of ``column``, exactly; datetimes become Unix seconds.

    A column with no number in it is read as ISO 8601 dates or date-times
    (``2024-05-31``, ``2024-05-31 17:45``, ``2024-05-31T17:45:00+02:00``): each
    becomes Unix seconds (floored), a time without an offset counts as UTC.
    A missing, non-numeric or fractional timestamp, or one outside int64, is a
    :class:`DataError` naming its row: nothing is rounded, wrapped or clipped.
    """
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        missing = np.flatnonzero(column.isna().to_numpy())
        if len(missing):
            raise DataError(f"{source}, row {row_of(missing[0])}: timestamp is missing")
        return column.dt.as_unit("s").astype("int64").to_numpy()
    values = column.to_numpy()
    if (typed := _typed_int64(values)) is not None:
        return typed
    text = (pd.Series(values.astype(object)) if values.dtype.kind in "uif" else column).astype(str).str.strip()
    literal = text.str.fullmatch(r"[+-]?[0-9]+").to_numpy(dtype=bool)
    if literal.all():
        fits = _fits_int64(text.str.lstrip("+"))
        if fits.all():
            return pd.to_numeric(text).to_numpy(dtype=np.int64)
        k = int(np.flatnonzero(~fits)[0])
        raise DataError(f"{source}, row {row_of(k)}: timestamp {text.iloc[k]} is outside the 64-bit integer range")
    numeric = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    if not numeric.any():
        return _iso_seconds(text, source, row_of)
    dated = np.flatnonzero(~numeric & _iso_dates(text).notna().to_numpy())
    if len(dated):
        k, j = int(dated[0]), int(np.flatnonzero(numeric)[0])
        raise DataError(f"{source}, row {row_of(k)}: timestamp {text.iloc[k]!r} is a date, and row {row_of(j)} "
                        f"holds a number ({text.iloc[j]}); a timestamp column holds one or the other")  # fmt: skip
    stamps = _numbers(text, "timestamp", source, row_of)
    fractional = np.flatnonzero(stamps != np.floor(stamps))
    if len(fractional):
        k = fractional[0]
        raise DataError(f"{source}, row {row_of(k)}: timestamp {_fmt(stamps[k])} is not an integer")
    fits = np.abs(stamps) < 2**63
    fits[literal] = _fits_int64(text[literal].str.lstrip("+"))
    outside = np.flatnonzero(~fits)
    if len(outside):
        k = outside[0]
        raise DataError(f"{source}, row {row_of(k)}: timestamp {text.iloc[k]} is outside the 64-bit integer range")
    exact = literal | (np.abs(stamps) < 2**53)  # float text beyond 2**53 would be rounded
    if not exact.all():
        k = int(np.flatnonzero(~exact)[0])
        raise DataError(
            f"{source}, row {row_of(k)}: timestamp {text.iloc[k]!r} cannot be read exactly; write it as an integer"
        )
    stamps = stamps.astype(np.int64)
    stamps[literal] = pd.to_numeric(text[literal]).to_numpy(dtype=np.int64)
    return stamps


def _iso_dates(text: pd.Series) -> pd.Series:
    """UTC datetimes of the cells that are ISO 8601 calendar dates (YYYY-MM-DD, then an optional time); else NaT.

    pandas would also read words such as ``now`` and ``today``; only cells that begin with a date are parsed."""
    dated = text.where(text.str.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:$|[T ])"))
    return pd.to_datetime(dated, format="ISO8601", utc=True, errors="coerce")


def _iso_seconds(text: pd.Series, source: str, row_of) -> np.ndarray:
    """Unix seconds (floored, int64) of ISO 8601 dates or date-times; the first other cell is a :class:`DataError`."""
    parsed = _iso_dates(text)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        k = int(bad[0])
        more = f" ({len(bad)} such rows)" if len(bad) > 1 else ""
        shown = _cell_text(text.iloc[k])
        if shown.lower() in MISSING_TEXT:
            raise DataError(f"{source}, row {row_of(k)}: timestamp is missing{more}")
        raise DataError(f"{source}, row {row_of(k)}: timestamp {shown!r} is neither a whole number (Unix "
                        f"seconds) nor an ISO 8601 date or date-time such as 2024-05-31T17:45:00{more}")  # fmt: skip
    return parsed.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)  # numpy floors


#: How a missing cell reads as text (pandas writes NaN, <NA> and NaT; files write the rest).
MISSING_TEXT = ("", "nan", "na", "n/a", "null", "none", "<na>", "nat")


def _cell_text(value: Any) -> str:
    """A cell as the text a message shows; a missing one (NaN, None, pd.NA: pandas 3 keeps them through
    ``astype(str)``) as ``""``."""
    missing = value is None or (pd.api.types.is_scalar(value) and not isinstance(value, str) and pd.isna(value))
    return "" if missing else str(value).strip()


def _numbers(column: pd.Series, what: str, source: str, row_of) -> np.ndarray:
    """Float values of ``column``; the first missing, non-numeric or infinite cell is a :class:`DataError`."""
    text = column.astype(str).str.strip() if column.dtype.kind not in "iuf" else None
    values = (pd.to_numeric(text, errors="coerce") if text is not None else column).to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad) == 0:
        return values
    k = bad[0]
    shown = _cell_text((column if text is None else text).iloc[k])
    if np.isinf(values[k]):
        problem = f"{what} {shown!r} is not finite"
    elif shown.lower() in MISSING_TEXT:
        problem = f"{what} is missing"
    else:
        problem = f"{what} {shown!r} is not a number"
    more = f" ({len(bad)} such rows)" if len(bad) > 1 else ""
    raise DataError(f"{source}, row {row_of(k)}: {problem}{more}")


def _fmt(value: float) -> str:
    return f"{float(value):g}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def check_scale(scale) -> tuple[float, float]:
    """``(low, high)`` as finite floats with ``low < high``; :class:`DataError` naming the values otherwise."""
    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise DataError(f"the rating scale must be two numbers (lowest, highest), not {scale!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise DataError(f"the rating scale must be two finite numbers, lowest first, not {_fmt(low)} {_fmt(high)}")
    return low, high
