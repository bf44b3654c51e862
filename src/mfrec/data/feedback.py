"""Ratings that profiles gave through the service, as training data: alone, or merged into a dataset.

Profiles become users named ``profile:<id>`` (:data:`~mfrec.data.profiles.PROFILE_USER`); a
dataset's users are then named by the text of their ids, so the two can never collide. Item ids
are the text the service stored, read back as the dataset's (or as whole numbers when every one
is). What was used is recorded in ``Ratings.info["feedback"]``: how many ratings, and the time
of the latest change.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from mfrec.data.ratings import Ratings
from mfrec.errors import DataError


def read_feedback(url: str) -> pd.DataFrame:
    """Every rating stored in the profile database at ``url`` (:meth:`ProfileStore.table`)."""
    from mfrec.data.profiles import ProfileStore, _safe

    store = ProfileStore(url, create=False)  # read only: a missing database is an error, never made
    try:
        frame = store.table()
    finally:
        store.close()
    if not len(frame):
        raise DataError(f"{_safe(url)}: the profile database holds no ratings")
    return frame


def feedback_ratings(url: str, base: Ratings | None = None, *, scale: tuple[float, float] = (0.5, 5.0)) -> Ratings:
    """The profiles' ratings at ``url``; merged into ``base`` when given (see the module docstring)."""
    frame = _checked(read_feedback(url), url)
    info = {"ratings": len(frame), "profiles": int(frame["user"].nunique()), "source": _safe_url(url),
            "until": datetime.fromtimestamp(float(frame["timestamp"].max()), UTC).isoformat()}  # fmt: skip
    items = frame["item"].to_numpy(dtype=object)
    timestamps = frame["timestamp"].to_numpy(dtype=np.float64).astype(np.int64)
    if base is None:
        numeric = pd.to_numeric(pd.Series(items), errors="coerce")
        if numeric.notna().all() and (numeric == numeric.round()).all():
            items = numeric.to_numpy(dtype=np.int64)
        low, high = scale
        _check_scale(frame, low, high, url)
        data = Ratings.from_arrays(frame["user"].to_numpy(dtype=object), items, frame["rating"].to_numpy(np.float32),
                                   timestamps=timestamps, scale=scale, name="feedback", validate=False)  # fmt: skip
        data.info["feedback"] = info
        return data
    low, high = base.scale
    _check_scale(frame, low, high, url)
    ids = base.item_map.ids
    if ids.dtype != object:
        numeric = pd.to_numeric(pd.Series(items), errors="coerce")
        bad = numeric.isna() | (numeric != numeric.round())
        if bad.any():
            raise DataError(f"{_safe_url(url)}: item {items[int(np.flatnonzero(bad)[0])]!r} is not an item id of "
                            f"{base.name} (its ids are whole numbers)")  # fmt: skip
        items = numeric.to_numpy(dtype=ids.dtype)
    old = base.to_frame()
    users = np.concatenate([old["user"].astype(str).to_numpy(dtype=object), frame["user"].to_numpy(dtype=object)])
    merged_items = np.concatenate([old["item"].to_numpy(), items])
    ratings = np.concatenate([old["rating"].to_numpy(np.float32), frame["rating"].to_numpy(np.float32)])
    stamps = None
    if "timestamp" in old:
        stamps = np.concatenate([old["timestamp"].to_numpy(np.int64), timestamps])
    from mfrec.data.items import item_table

    table = item_table(ids, base.titles, base.genres, base.years)
    data = Ratings.from_arrays(users, merged_items, ratings, timestamps=stamps, scale=base.scale,
                               name=f"{base.name}+feedback", kind=base.kind, item_info=table,
                               validate=False)  # fmt: skip
    data.info.update(base.info)
    data.info["feedback"] = info
    return data


#: The last second of the year 9999 (Unix seconds): a stored time of change beyond it was not written by the service.
_LAST_TIME = 253_402_300_799


def _checked(frame: pd.DataFrame, url: str) -> pd.DataFrame:
    """The stored rows with float ratings and times; a row edited by hand into something else (text, bytes,
    NULL, NaN, an item that is not text) is a :class:`DataError` naming the profile, item and value."""
    from mfrec.data.profiles import stored_number

    for column, what, high in (("rating", "rating, which is not a finite number", np.inf),
                               ("timestamp", "time of change, which is not Unix seconds up to 9999", _LAST_TIME)):
        values = frame[column]
        if values.dtype.kind != "f" or not np.isfinite(values.to_numpy()).all():
            values = pd.Series([stored_number(v) for v in values], index=frame.index, dtype=np.float64)
        wrong = values.isna() | ((values < 0) | (values > high) if column == "timestamp" else False)
        if wrong.any():
            row = frame[wrong.to_numpy()].iloc[0]
            raise DataError(f"{_safe_url(url)}: {row['user']} has item {str(row['item'])[:40]!r} with the "
                            f"value {str(row[column])[:40]!r} as its {what}; correct or delete that row")  # fmt: skip
        frame = frame.assign(**{column: values.to_numpy(np.float64)})
    texts = frame["item"].map(lambda v: isinstance(v, str))
    if not texts.all():
        row = frame[~texts].iloc[0]
        raise DataError(f"{_safe_url(url)}: {row['user']} rated item {str(row['item'])[:40]!r}, which is not text "
                        "(the service stores item ids as text); correct or delete that row")  # fmt: skip
    return frame


def _check_scale(frame: pd.DataFrame, low: float, high: float, url: str) -> None:
    outside = (frame["rating"] < low) | (frame["rating"] > high)
    if outside.any():
        row = frame[outside].iloc[0]
        raise DataError(f"{_safe_url(url)}: {row['user']} rated item {row['item']} {row['rating']:g}, outside the "
                        f"scale {low:g}-{high:g}")  # fmt: skip


def _safe_url(url: str) -> str:
    from mfrec.data.profiles import _safe

    return _safe(url)
