"""Readers for rating files (CSV, TSV, Parquet, MovieLens layouts) with validation.

Every problem is reported as a :class:`~mfrec.errors.DataError` whose message
names the file, the row (1-based line in the file, header included) and the value.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from mfrec._io import as_path
from mfrec.data.checks import (  # noqa: F401 - Columns, DuplicateRatingsWarning, check_scale: re-exported
    DUPLICATE_POLICIES,
    NO_HEADER_HINT,
    Columns,
    DuplicateRatingsWarning,
    _header_separator,
    _separator_hint,
    check_frame,
    check_scale,
    looks_like_data,
)
from mfrec.data.ratings import Ratings
from mfrec.errors import ConfigError, DataError


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
    path = as_path(path, "the file")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a ratings file")
    try:
        if sep is None and (_parquet_name(path.name) or _first_bytes(path).startswith(b"PAR1")):
            return _read_parquet(path, path)
        data, name = _unpacked(path)
        if sep is None and _parquet_name(name):
            return _read_parquet(io.BytesIO(data), path)
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
    path = as_path(path, "the ids file")
    with regular_file(path) as readable:
        return _read_ids(readable, column)


def _read_ids(path: Path, column: str) -> list[str]:
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
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) and encoding == "utf-8":
        raise DataError(f"{source}: UTF-16 text (a spreadsheet's 'Unicode text' export); save it as UTF-8 CSV")
    if (nul := data.find(b"\x00")) >= 0:  # valid UTF-8, and the C parser cuts a field there: refused, not read
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(f"{source}, line {line}: a NUL byte, which text never holds (UTF-16 without a byte-order "
                        "mark, or a binary or damaged file?)")  # fmt: skip
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{source}, line {line}: bytes that are not valid {encoding} text (save the file as "
                        f"{encoding.upper()})") from None  # fmt: skip


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


def _read_parquet(source: Path | IO[bytes], path: Path) -> pd.DataFrame:
    """A Parquet table as a DataFrame; a column name given twice is named (pyarrow's message is about field refs)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    names = parquet.schema_arrow.names
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: the table names the column {repeated[0]!r} {names.count(repeated[0])} times")
    return parquet.read().to_pandas()


def is_parquet(path: str | Path, sep: str | None = None) -> bool:
    """Whether :func:`read_table` reads ``path`` as Parquet: by suffix or first bytes, when no separator is given."""
    return sep is None and (_parquet_name(_inner_name(Path(path))) or _first_bytes(path).startswith(b"PAR1"))


def _parquet_name(name: str) -> bool:
    return Path(name).suffix.lower() in (".parquet", ".pq")


def default_separator(name: str) -> str:
    """The field separator a file name implies: tab for ``.tsv``/``.data``, ``::`` for ``.dat``, else a comma."""
    lower = name.lower()
    return "\t" if lower.endswith((".tsv", ".data")) else "::" if lower.endswith(".dat") else ","


@contextlib.contextmanager
def regular_file(path: Path) -> Iterator[Path]:
    """``path`` when it is a regular file (or missing, or a folder: the readers say so); otherwise the bytes of
    a pipe or socket (``--ratings <(zcat r.csv.gz)``, ``/dev/stdin``) copied once into a temporary file of the
    same name, since the readers look at the first bytes before reading the whole. Errors name ``path``, never
    the copy. A device (``/dev/zero``, a terminal) is refused: it is not data and may never end."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        mode = None
    if mode is None or stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        yield path
        return
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise DataError(f"{path}: a device, not a file of data; give a file, or pipe the data in (/dev/stdin)")
    with tempfile.TemporaryDirectory(prefix="mfrec-pipe-") as folder:
        copy = Path(folder) / (path.name or "input")
        try:
            with open(path, "rb") as source, open(copy, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
        except OSError as exc:
            raise DataError(f"{path}: cannot be read: {_one_line(exc)}") from None
        try:
            yield copy
        except DataError as exc:
            raise DataError(str(exc).replace(str(copy), str(path))) from None


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
        other = _header_separator(str(frame.columns[0])) if above else None
        hint = _separator_hint(str(frame.columns[0])) if other and other != sep else (
            " (is line 1 a title or comment above the header? the header must be the first line)" if above else "")
        raise DataError(
            f"{source}, line {first + 1}: {fields} fields, but the "
            + (
                f"header names {len(frame.columns)} columns"
                if header and names is None
                else f"{len(frame.columns)} column names were given"
            )
            + hint
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
            hint = NO_HEADER_HINT if looks_like_data(first) else ""
            raise DataError(f"{source}, line 1: the header names {name!r} twice (columns {seen[name]} and "
                            f"{position}){hint}")  # fmt: skip
        seen.setdefault(name, position)


def _header_separator_of(path: Path) -> str | None:
    """The separator of a file whose header lacks the one its name implies and holds another; else ``None``."""
    try:
        data, name = _unpacked(path)
    except (DataError, OSError, ValueError):  # read_table names the problem
        return None
    header = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    return None if default_separator(name) in header else _header_separator(header)


def _check_separator(sep: str | None) -> str | None:
    """One ASCII character other than a quote or line break, ``::``, or ``None``; ``\\t`` means a tab."""
    if sep is None or sep == "::":
        return sep
    sep = {"\\t": "\t", "tab": "\t"}.get(sep, sep)
    if len(sep) != 1 or not sep.isascii() or sep in "\r\n\"" or (sep.isalnum()):
        raise DataError(f"the field separator must be one character such as , ; | or tab (or ::), not {sep!r}")
    return sep


def validate_frame(
    frame: pd.DataFrame,
    columns: Columns,
    *,
    source: str,
    item_info: pd.DataFrame | None = None,
    name: str | None = None,
    **checks: Any,
) -> Ratings:
    """Check a raw table (:func:`mfrec.data.checks.check_frame`, which takes ``checks``: ``scale``,
    ``header_lines``, ``on_duplicates``, ``implicit``, ``integer_ids``) and turn it into :class:`Ratings`;
    how many duplicate rows were dropped is in ``ratings.info["duplicates_dropped"]``, and the table's
    columns that were not read in ``ratings.info["unread_columns"]``."""
    parts, dropped = check_frame(frame, columns, source=source, **checks)
    result = Ratings.from_codes(**parts, item_info=item_info, name=name or source)
    result.info["duplicates_dropped"] = dropped
    read = {columns.user, columns.item, columns.rating, columns.timestamp}
    result.info["unread_columns"] = [str(c) for c in frame.columns if c not in read]
    return result


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
    from mfrec.options import check_flag

    columns = columns or Columns()
    ratings = _read_ratings(source, columns, sep, scale, on_duplicates, check_flag(implicit, "implicit"))
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
        with regular_file(as_path(source, "the items file")) as path:
            if sep is None and not is_parquet(path):  # no --sep for items: take the separator its header uses
                sep = _header_separator_of(path)
            return read_table(path, sep=sep), str(source), 1 if is_parquet(path, sep) else 2
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
    with regular_file(as_path(source, "the ratings file")) as path:
        frame = read_table(path, sep=sep)
        return validate_frame(
            frame,
            columns,
            source=str(path),
            scale=scale,
            header_lines=0 if is_parquet(path, sep) else 1,
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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

