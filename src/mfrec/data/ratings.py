"""The ratings container: contiguous indices, float32 ratings, id maps."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mfrec._repr import count, html_facts
from mfrec.data.idmap import IdMap


@dataclass(frozen=True, eq=False)
class Ratings:
    """Explicit ratings as parallel arrays over contiguous indices.

    ``users[k]``, ``items[k]`` and ``ratings[k]`` describe rating ``k``; indices run
    over ``0..n_users-1`` and ``0..n_items-1`` of :attr:`user_map` and
    :attr:`item_map`, which are shared by every subset (a split's train, val and
    test use the same maps). Ratings are in stars, inside :attr:`scale`.

    Attributes:
        users: int64 user indices, shape ``(n,)``.
        items: int64 item indices, shape ``(n,)``.
        ratings: float32 ratings in the dataset's units (stars), shape ``(n,)``.
        timestamps: int64 seconds since the epoch, or ``None``.
        user_map, item_map: raw id <-> index maps.
        scale: ``(lowest, highest)`` rating allowed.
        titles: item titles aligned with item indices (``None`` where unknown), or ``None``.
        genres: item genres aligned with item indices (``"Action|Comedy"``, ``None`` where
            unknown), or ``None``; see :mod:`mfrec.data.items`.
        years: item release years aligned with item indices (float, NaN where unknown), or ``None``.
        name: where the ratings came from, for reports.
        kind: ``"explicit"`` (ratings on a scale) or ``"implicit"`` (interactions:
            ``ratings`` holds 1 or a count, and every interaction is relevant).
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    user_map: IdMap
    item_map: IdMap
    scale: tuple[float, float] = (0.5, 5.0)
    timestamps: np.ndarray | None = None
    titles: np.ndarray | None = None
    name: str = "ratings"
    genres: np.ndarray | None = None
    years: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    kind: str = "explicit"

    def __post_init__(self) -> None:
        n = len(self.users)
        if len(self.items) != n or len(self.ratings) != n:
            raise ValueError("users, items and ratings must have the same length")
        if self.timestamps is not None and len(self.timestamps) != n:
            raise ValueError("timestamps must have the same length as ratings")

    def __len__(self) -> int:
        return len(self.ratings)

    def _summary(self) -> str:
        what = "ratings" if self.kind == "explicit" else "interactions"
        scale = f", scale {self.scale[0]:g}-{self.scale[1]:g}" if self.kind == "explicit" else ""
        return (f"{len(self):,} {what}, {count(self.n_users, 'user')}, {count(self.n_items, 'item')}"
                f"{scale}")  # fmt: skip

    def __repr__(self) -> str:
        return f"Ratings({self.name!r}: {self._summary()})"

    def _repr_html_(self) -> str:
        return html_facts(f"Ratings {self.name!r}: {self._summary()}", [],
                          self.to_frame().head(5).to_html(index=False))  # fmt: skip

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    def subset(self, rows: np.ndarray) -> Ratings:
        """The ratings at positions ``rows``, sharing this container's id maps."""
        rows = np.asarray(rows, dtype=np.int64)
        return replace(
            self,
            users=self.users[rows],
            items=self.items[rows],
            ratings=self.ratings[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            info={},
        )

    def with_items(self, table: pd.DataFrame, *, source: str = "the items table") -> Ratings:
        """These ratings with titles, genres and years from an items table (:mod:`mfrec.data.items`).

        Raises:
            DataError: when no item id of the table is an item of these ratings (wrong id column).
        """
        from mfrec.data.items import aligned
        from mfrec.errors import DataError

        titles, genres, years = aligned(table, self.item_map.ids)
        matched = int(pd.Index(self.item_map.ids).isin(table.index.astype(str) if self.item_map.ids.dtype == object
                                                       else table.index).sum()) if len(table) else 0  # fmt: skip
        if not matched:
            raise DataError(f"{source}: none of its {len(table):,} item ids is an item of the ratings "
                            f"(is the item id column right?)")  # fmt: skip
        return replace(self, titles=titles, genres=genres, years=years)

    def user_counts(self) -> np.ndarray:
        """Number of ratings per user index, shape ``(n_users,)``."""
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Number of ratings per item index, shape ``(n_items,)``."""
        return np.bincount(self.items, minlength=self.n_items)

    @property
    def relevance_threshold(self) -> float:
        """Ratings at or above this are relevant in ranking metrics: 80% of the top of the
        scale (4 stars on 0.5-5) for explicit data; every interaction for implicit data."""
        return -np.inf if self.kind == "implicit" else 0.8 * self.scale[1]

    @property
    def has_relevant(self) -> bool:
        """Whether some rating reaches :attr:`relevance_threshold`: without one, ranking metrics
        on these ratings have no user to measure and are undefined."""
        return bool((self.ratings >= self.relevance_threshold).any())

    def title(self, item_index: int) -> str | None:
        if self.titles is None:
            return None
        value = self.titles[item_index]
        return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)

    def to_frame(self) -> pd.DataFrame:
        """Raw ids with ratings (and timestamps): the inverse of :func:`from_frame`."""
        frame = pd.DataFrame(
            {
                "user": self.user_map.raw(self.users),
                "item": self.item_map.raw(self.items),
                "rating": self.ratings,
            }
        )
        if self.timestamps is not None:
            frame["timestamp"] = self.timestamps
        return frame

    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        *,
        timestamps: np.ndarray | None = None,
        scale: tuple[float, float] = (0.5, 5.0),
        titles: pd.Series | None = None,
        name: str = "ratings",
        user_map: IdMap | None = None,
        item_map: IdMap | None = None,
        kind: str = "explicit",
        item_info: pd.DataFrame | None = None,
        validate: bool = True,
    ) -> Ratings:
        """Map raw ids to indices (new maps unless given) and build the container.

        ``titles`` is a Series of titles by raw item id; ``item_info`` an items table
        (:func:`mfrec.data.items.read_items`: title, genres, year by raw item id), which wins over ``titles``.

        The arrays are checked as a ratings file is (:func:`mfrec.data.checks.check_frame`): one
        dimension and one length; ids present; ratings finite numbers inside ``scale`` (explicit) or
        weights >= 0 (``kind="implicit"``); timestamps whole numbers; each (user, item) pair once.
        Ids keep the file rule (text ids that are all plain integers become integers) only when
        no map is given. ``validate=False`` is for data mfrec has already checked.

        Raises:
            DataError: naming the array and position (counted from 1) of the first bad value.
        """
        from mfrec.options import check_flag

        if check_flag(validate, "validate"):
            checked = _checked_arrays(users, items, ratings, timestamps, scale, name, kind)
            if checked is not None and user_map is None and item_map is None:
                return checked if item_info is None and titles is None else cls.from_codes(
                    checked.users, checked.items, checked.ratings, user_map=checked.user_map,
                    item_map=checked.item_map, timestamps=checked.timestamps, scale=checked.scale, titles=titles,
                    name=name, kind=kind, item_info=item_info)  # fmt: skip
        if user_map is None:
            user_map, user_idx = IdMap.from_values(users, "user")
        else:
            user_idx = user_map.index(users)
        if item_map is None:
            item_map, item_idx = IdMap.from_values(items, "item")
        else:
            item_idx = item_map.index(items)
        return cls.from_codes(
            user_idx, item_idx, ratings, user_map=user_map, item_map=item_map, timestamps=timestamps,
            scale=scale, titles=titles, name=name, kind=kind, item_info=item_info,
        )  # fmt: skip

    @classmethod
    def from_codes(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        *,
        user_map: IdMap,
        item_map: IdMap,
        timestamps: np.ndarray | None = None,
        scale: tuple[float, float] = (0.5, 5.0),
        titles: pd.Series | None = None,
        name: str = "ratings",
        kind: str = "explicit",
        item_info: pd.DataFrame | None = None,
    ) -> Ratings:
        """Build the container from indices into ``user_map``/``item_map`` (no lookups, no validation)."""
        from mfrec.data.items import aligned

        title_array, genres, years = aligned(item_info, item_map.ids)
        if item_info is None and titles is not None and len(titles):
            title_array = titles.reindex(item_map.ids).to_numpy(dtype=object)
        return cls(
            users=np.asarray(users, dtype=np.int64),
            items=np.asarray(items, dtype=np.int64),
            ratings=np.asarray(ratings, dtype=np.float32),
            timestamps=None if timestamps is None else np.asarray(timestamps, dtype=np.int64),
            user_map=user_map,
            item_map=item_map,
            scale=(float(scale[0]), float(scale[1])),
            titles=title_array,
            name=name,
            kind=kind,
            genres=genres,
            years=years,
        )


def require_ratings(value: object, name: str) -> Ratings:
    """``value`` when it is :class:`Ratings`; else a :class:`~mfrec.errors.ConfigError` naming ``name`` and its type.

    A table (pandas or polars DataFrame, pyarrow Table) is pointed at :func:`mfrec.read_ratings`, which checks it
    as it would a file."""
    if isinstance(value, Ratings):
        return value
    from mfrec.errors import ConfigError

    kind = type(value).__name__
    if kind in ("DataFrame", "LazyFrame", "Table"):
        how = "mfrec.read_ratings(table) makes them from this table"
    else:
        how = "from mfrec.read_ratings, load_dataset, split_ratings or Ratings.from_arrays"
    raise ConfigError(f"{name} must be Ratings ({how}), not {kind}")


def _checked_arrays(users: Any, items: Any, ratings: Any, timestamps: Any, scale: tuple[float, float], name: str,
                    kind: str) -> Ratings | None:  # fmt: skip
    """:meth:`Ratings.from_arrays`' arrays checked and mapped by the one ratings check, ``check_frame``
    (``None`` for empty arrays: there is nothing to check)."""
    from mfrec.data.checks import Columns, check_frame
    from mfrec.errors import DataError

    if kind not in ("explicit", "implicit"):
        raise DataError(f"kind must be 'explicit' or 'implicit', not {kind!r}")
    named = {"users": users, "items": items, "ratings": ratings}
    if timestamps is not None:
        named["timestamps"] = timestamps
    lengths = {}
    for label, values in named.items():
        if values is None or isinstance(values, str | bytes | dict) or np.ndim(values) != 1:
            shape = "None" if values is None else type(values).__name__ if np.ndim(values) == 0 else \
                f"{np.ndim(values)} dimensions"  # fmt: skip
            raise DataError(f"{name}: {label} must be a one-dimensional array or list, not {shape}")
        lengths[label] = len(values)
    if len(set(lengths.values())) > 1:
        raise DataError(f"{name}: the arrays differ in length ({', '.join(f'{k} {v:,}' for k, v in lengths.items())})")
    if not lengths["users"]:
        return None
    frame = pd.DataFrame({key: pd.Series(np.asarray(value), dtype=object if np.asarray(value).dtype.kind in "OUS"
                                         else None) for key, value in named.items()})  # fmt: skip
    columns = Columns("users", "items", "ratings", "timestamps" if timestamps is not None else None)
    parts, _ = check_frame(frame, columns, source=name, scale=scale, header_lines=0, on_duplicates="error",
                           implicit=kind == "implicit")  # fmt: skip
    return Ratings.from_codes(**parts, name=name)
