"""The one check of a ratings table, for files, tables in memory and arrays alike.

:func:`check_frame` turns a raw table into integer codes, id maps, ratings and
timestamps, or raises a :class:`~mfrec.errors.DataError` that names the source, the
row (1-based, header lines included) and the value. It does not build
:class:`~mfrec.data.Ratings` itself, so that both the readers and
:meth:`Ratings.from_arrays <mfrec.data.Ratings.from_arrays>` can use it.
"""

from __future__ import annotations

import re
import shlex
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mfrec.errors import DataError

DUPLICATE_POLICIES = ("keep-latest", "error")


@dataclass(frozen=True)
class Columns:
    """Column names of a ratings table; ``timestamp`` is optional, ``rating=None`` means interactions only."""

    user: str = "user"
    item: str = "item"
    rating: str | None = "rating"
    timestamp: str | None = None


#: field separators a header may show, with how each is typed as a flag
_SEPARATORS = (("\t", "'\\t'"), (";", "';'"), ("|", "'|'"), ("::", "'::'"), (",", "','"))


def _header_separator(header: str) -> str | None:
    """The first of :data:`_SEPARATORS` that a header read as one column holds, if any."""
    return next((sep for sep, _ in _SEPARATORS if sep in header), None)


def _separator_hint(header: str) -> str:
    """For a table read as one column: the separator its header seems to use, as a flag to try."""
    sep = _header_separator(header)
    if sep is None:
        return " (one column: is the field separator right?)"
    flag = dict(_SEPARATORS)[sep]
    return f" (one column: the header holds {flag}, so try --sep {flag}, or sep={sep!r} in Python)"


#: words that name each role's column in tables seen in the wild (userId, movie_id, Book-Rating, ...)
_ROLE_WORDS = {
    "user": ("user", "uid", "customer", "member", "visitor", "reader", "listener", "viewer"),
    "item": ("item", "movie", "product", "iid", "book", "song", "track", "artist", "isbn", "asin", "film"),
    "rating": ("rating", "score", "stars", "value"),
    "timestamp": ("timestamp", "time", "date"),
}


#: what a header line of numbers means (MovieLens' ``u.data``, an export without one)
NO_HEADER_HINT = ("; its first line looks like data, not a header: add a header line naming the columns "
                  "(user,item,rating[,timestamp]); for MovieLens files, use --dataset NAME --data-path FOLDER")


def looks_like_data(names) -> bool:
    """True when every name of a header line is a number: a data row read as the header."""

    def number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    names = [str(n) for n in names]
    return bool(names) and all(number(n) for n in names)


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


def check_frame(
    frame: pd.DataFrame,
    columns: Columns,
    *,
    source: str,
    scale: tuple[float, float] | None,
    header_lines: int = 1,
    on_duplicates: str = "keep-latest",
    implicit: bool = False,
    integer_ids: bool = False,
) -> tuple[dict[str, Any], int]:
    """Check a raw table: the keywords of :meth:`~mfrec.data.Ratings.from_codes` it makes, and the
    number of duplicate rows dropped.

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
        elif header_lines and looks_like_data(frame.columns):  # u.data and its like: no header line
            hint = NO_HEADER_HINT
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
    if implicit and (zero := ratings == 0).any():  # Hu et al.: a weight of 0 is no interaction, not a positive
        if zero.all():
            raise DataError(f"{source}: every interaction has weight 0, and a weight of 0 is no interaction")
        keep = ~zero
        user_codes, item_codes, ratings = user_codes[keep], item_codes[keep], ratings[keep]
        timestamps = timestamps[keep] if timestamps is not None else None
        warnings.warn(f"{source}: dropped {int(zero.sum())} interaction(s) of weight 0: a weight of 0 is no "
                      "interaction, so they are neither positives nor seen", UserWarning, stacklevel=2)  # fmt: skip
    parts = {"users": user_codes, "items": item_codes, "ratings": ratings, "user_map": user_map, "item_map": item_map,
             "timestamps": timestamps, "scale": scale, "kind": "implicit" if implicit else "explicit"}  # fmt: skip
    return parts, dropped


class DuplicateRatingsWarning(UserWarning):
    """Duplicate (user, item) pairs were found and resolved by keeping the latest."""


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
    lengths = text.str.len().to_numpy()
    fits = lengths <= 20  # 2**63 has 19 digits; a longer literal never fits (nor does int() take 4,300+ digits)
    for k in np.flatnonzero((lengths >= 19) & fits):
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


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA (which pandas 3 keeps through ``astype(str)``); never a text or a list."""
    return value is None or (pd.api.types.is_scalar(value) and not isinstance(value, str) and bool(pd.isna(value)))


def _cell_text(value: Any) -> str:
    """A cell as the text a message shows; a missing one (:func:`is_missing`) as ``""``."""
    return "" if is_missing(value) else str(value).strip()


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
        if re.fullmatch(r"[+-]?\d+,\d+", shown):  # a spreadsheet's decimal comma: say what it would read as
            problem += f" (a decimal comma? write {shown.replace(',', '.')})"
    more = f" ({len(bad)} such rows)" if len(bad) > 1 else ""
    raise DataError(f"{source}, row {row_of(k)}: {problem}{more}")


def _fmt(value: float) -> str:
    return f"{float(value):g}"


def check_scale(scale) -> tuple[float, float]:
    """``(low, high)`` as finite floats with ``low < high``; :class:`DataError` naming the values otherwise."""
    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise DataError(f"the rating scale must be two numbers (lowest, highest), not {scale!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise DataError(f"the rating scale must be two finite numbers, lowest first, not {_fmt(low)} {_fmt(high)}")
    return low, high
