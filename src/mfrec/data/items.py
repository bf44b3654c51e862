"""Item metadata: a title, genres and a release year per item, and the candidate masks built from them.

An *items table* is a pandas DataFrame indexed by raw item id with the columns ``title``
(text or missing), ``genres`` (``"Action|Comedy"``: names joined by ``|``, missing when
unknown) and ``year`` (float, NaN when unknown). It comes from a MovieLens release's
``movies.csv``/``movies.dat``/``u.item`` (:func:`mfrec.data.movielens.read_items`) or
from any CSV/Parquet file or table through :func:`mfrec.data.readers.read_items`. Aligned with an item map
it becomes the ``titles``, ``genres`` and ``years`` arrays of
:class:`~mfrec.data.Ratings` and of a fitted model, which stores them in its file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from mfrec.errors import ConfigError, DataError

GENRE_SEP = "|"
#: MovieLens writes this for a film without genres; it means "unknown", not a genre
NO_GENRES = "(no genres listed)"
#: a year in parentheses at the end of a title: "Heat (1995)", "Cosmos (1980-1981)"
TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")
#: the largest year, either side of 0, an items table may hold
MAX_YEAR = 9999
#: the item-table columns, in order
COLUMNS = ("title", "genres", "year")


def years_from_titles(titles: pd.Series) -> pd.Series:
    """The year at the end of each title (``"Heat (1995)"`` -> 1995.0), NaN where there is none."""
    found = titles.astype("string").str.extract(TITLE_YEAR, expand=False)
    return pd.to_numeric(found, errors="coerce").astype("float64")


def clean_genres(genres: pd.Series) -> pd.Series:
    """Genre strings with empty names, surrounding spaces and :data:`NO_GENRES` removed; ``None`` when none is left."""
    def clean(value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        names = [n.strip() for n in value.split(GENRE_SEP)]
        return GENRE_SEP.join(n for n in names if n and n != NO_GENRES) or None

    return pd.Series([clean(g) for g in genres], index=genres.index, dtype=object)


def item_table(ids: Any, titles: Any = None, genres: Any = None, years: Any = None) -> pd.DataFrame:
    """An items table indexed by ``ids``; years are read from the titles where ``years`` is not given."""
    index = pd.Index(np.asarray(ids))
    n = len(index)
    title = pd.Series([None if titles is None or pd.isna(t) else str(t) for t in (titles if titles is not None
                       else [None] * n)], index=index, dtype=object)  # fmt: skip
    genre = clean_genres(pd.Series([None] * n if genres is None else list(genres), index=index, dtype=object))
    year = years_from_titles(title) if years is None else pd.Series(np.asarray(years, dtype=np.float64), index=index)
    return pd.DataFrame({"title": title, "genres": genre, "year": year}, index=index)


def parse_items(
    frame: pd.DataFrame,
    *,
    where: str,
    first_row: int = 1,
    item: str = "item",
    title: str | None = "title",
    genres: str | None = "genres",
    year: str | None = "year",
) -> pd.DataFrame:
    """An items table from a raw table (see :func:`mfrec.data.readers.read_items`).

    ``where`` names the table in errors and ``first_row`` is the row number of its first
    data row (2 for a file with a header line).

    Raises:
        DataError: naming the table and the first row whose id is missing or repeated, or
            whose year is not a whole number from -9999 to 9999; or naming the columns found
            when none of ``title``, ``genres`` and ``year`` is there.
    """
    frame = frame.replace(r"^\s*$", None, regex=True) if len(frame) else frame  # blank cells are missing
    if item not in frame.columns:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "nothing"
        raise DataError(f"{where}: missing item id column {item!r}; found {found}")
    wanted = [name for name in (title, genres, year) if name]
    if wanted and not any(name in frame.columns for name in wanted):
        found = ", ".join(repr(str(c)) for c in frame.columns)
        named = ", ".join(map(repr, wanted[:-1])) + (" or " if len(wanted) > 1 else "") + repr(wanted[-1])
        raise DataError(f"{where}: no {named} column (found {found}); an items file gives each item id "
                        f"a title, genres or a year")  # fmt: skip
    ids = frame[item]
    missing = np.flatnonzero(ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy())
    if len(missing):
        raise DataError(f"{where}, row {missing[0] + first_row}: the item id is missing")
    ids = _ids(ids)
    repeated = np.flatnonzero(pd.Index(ids).duplicated())
    if len(repeated):
        raise DataError(f"{where}, row {repeated[0] + first_row}: item {ids[repeated[0]]} is listed twice")
    years = None
    if year and year in frame.columns:
        values = pd.to_numeric(frame[year], errors="coerce").astype("float64")
        bad = np.flatnonzero((frame[year].notna() & (values.isna() | (values % 1 != 0))).to_numpy())
        if len(bad):
            raise DataError(f"{where}, row {bad[0] + first_row}: year {frame[year].iloc[bad[0]]!r} "
                            f"is not a whole number")  # fmt: skip
        bad = np.flatnonzero((values.abs() > MAX_YEAR).to_numpy())
        if len(bad):
            raise DataError(f"{where}, row {bad[0] + first_row}: year {frame[year].iloc[bad[0]]!r} "
                            f"is not a year (at most {MAX_YEAR} either side of year 0)")  # fmt: skip
        years = values.to_numpy()
    column = (lambda name: frame[name].to_numpy(dtype=object) if name and name in frame.columns else None)  # noqa: E731
    return item_table(ids, column(title), column(genres), years)


def _ids(values: pd.Series) -> np.ndarray:
    """Item ids as the ratings readers make them: integers when every id is one, text otherwise."""
    text = values.astype(str).str.strip()
    if text.str.fullmatch(r"[+-]?\d+").all():
        return pd.to_numeric(text).astype("int64").to_numpy()
    return text.to_numpy(dtype=object)


def aligned(table: pd.DataFrame | None, ids: np.ndarray) -> tuple[np.ndarray | None, ...]:
    """``(titles, genres, years)`` of ``table`` in the order of ``ids`` (``None`` for each without a table)."""
    if table is None or not len(table):
        return None, None, None
    ids = np.asarray(ids)
    if ids.dtype == object and table.index.dtype != object:  # text ids in the ratings: match the table's as text
        table = table.set_axis(table.index.astype(str))
    table = table[~table.index.duplicated(keep="first")].reindex(pd.Index(ids))
    genres = table["genres"].to_numpy(dtype=object)
    years = table["year"].to_numpy(dtype=np.float64)
    return (table["title"].to_numpy(dtype=object), None if pd.isna(genres).all() else genres,
            None if np.isnan(years).all() else years)  # fmt: skip


class ItemFilter:
    """Candidate masks from item metadata: genres (any of), a year range and a minimum number of ratings.

    Built once per model over its aligned arrays; :meth:`mask` is vectorised (a
    ``(n_items, n_genres)`` boolean matrix and array comparisons), with no loop over items.
    """

    def __init__(self, genres: np.ndarray | None, years: np.ndarray | None, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts)
        self.years = years
        if genres is None:
            self.names: tuple[str, ...] = ()
            self.matrix = np.zeros((len(self.counts), 0), dtype=bool)
        else:
            dummies = pd.Series(genres, dtype=object).fillna("").str.get_dummies(sep=GENRE_SEP)
            self.names = tuple(dummies.columns)
            self.matrix = dummies.to_numpy(dtype=bool)

    def mask(
        self,
        genres: str | Iterable[str] | None = None,
        years: tuple[Any, Any] | None = None,
        min_ratings: int | None = None,
    ) -> np.ndarray | None:
        """True for items that pass every given filter; ``None`` when no filter is given.

        ``genres``: one name or several (an item passes with any of them; names are matched
        without regard to case). ``years``: ``(first, last)`` inclusive, either end ``None``
        for open; items of unknown year fail a year filter. ``min_ratings``: the item's
        ratings in the model's data (:meth:`~mfrec.MatrixFactorization.catalog`).

        Raises:
            ConfigError: naming an unknown genre (with the known ones) or a bad bound.
        """
        keep = None
        if genres is not None:
            try:
                wanted = [genres] if isinstance(genres, str) else list(genres)
            except TypeError:  # not iterable
                wanted = []
            if not wanted or not all(isinstance(g, str) for g in wanted):
                raise ConfigError(f"genres must be one or more genre names, not {genres!r}")
            lower = {name.lower(): k for k, name in enumerate(self.names)}
            unknown = [g for g in wanted if g.strip().lower() not in lower]
            if unknown:
                known = ", ".join(self.names) if self.names else "none: this model has no genre data"
                raise ConfigError(f"unknown genre {unknown[0]!r}; known genres: {known}")
            keep = self.matrix[:, [lower[g.strip().lower()] for g in wanted]].any(axis=1)
        if years is not None:
            first, last = _year_bounds(years)
            if self.years is None:
                raise ConfigError("a year filter needs item years, and this model has none (give --items)")
            ok = ~np.isnan(self.years)
            if first is not None:
                ok &= self.years >= first
            if last is not None:
                ok &= self.years <= last
            keep = ok if keep is None else keep & ok
        if min_ratings is not None:
            if isinstance(min_ratings, bool) or not isinstance(min_ratings, int | np.integer) or min_ratings < 0:
                raise ConfigError(f"min_ratings must be a whole number >= 0, not {min_ratings!r}")
            ok = self.counts >= min_ratings
            keep = ok if keep is None else keep & ok
        return keep


def _year_bounds(years: Any) -> tuple[float | None, float | None]:
    try:
        first, last = years
    except (TypeError, ValueError):
        raise ConfigError(f"years must be a (first, last) pair, not {years!r}") from None
    bounds = []
    for value in (first, last):
        if value is None:
            bounds.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) or value != value:
            raise ConfigError(f"a year bound must be a number or None, not {value!r}")
        bounds.append(float(value))
    if None not in bounds and bounds[0] > bounds[1]:
        raise ConfigError(f"the year range {years!r} is empty: the first year is after the last")
    return bounds[0], bounds[1]


def parse_year_range(text: str) -> tuple[int | None, int | None]:
    """``"1990-1999"``, ``"1990-"``, ``"-1999"`` or ``"1995"`` as ``(first, last)``; ConfigError otherwise."""
    match = re.fullmatch(r"\s*(\d{1,4})?\s*(-)?\s*(\d{1,4})?\s*", text or "")
    if not match or not (match[1] or match[3]) or (match[2] is None and match[3]):
        raise ConfigError(f"a year range is FIRST-LAST, FIRST-, -LAST or one year, not {text!r}")
    first = int(match[1]) if match[1] else None
    last = int(match[3]) if match[3] else (first if match[2] is None else None)
    _year_bounds((first, last))
    return first, last
