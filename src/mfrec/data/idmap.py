"""Raw id <-> contiguous index maps, built once at the data boundary."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mfrec.errors import UnknownIdError

#: The only text that is an integer id: a decimal literal as ``str(int)`` writes it (no sign
#: but ``-``, no leading zeros), so converting between the id and its text is exact both ways.
INTEGER = re.compile(r"0|-?[1-9][0-9]*")


@dataclass(frozen=True, eq=False)
class IdMap:
    """Maps raw ids (ints or strings) to indices ``0..len-1`` and back.

    ``ids[k]`` is the raw id of index ``k``; ids are unique. Lookups are
    vectorized through a :class:`pandas.Index` (hash table), never a Python loop.
    """

    ids: np.ndarray
    kind: str = "entity"
    _index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.ids.dtype.kind in "US":  # fixed-width numpy strings drop trailing NULs
            object.__setattr__(self, "ids", self.ids.astype(object))
        index = pd.Index(self.ids)
        if not index.is_unique:
            raise ValueError(f"{self.kind} ids are not unique")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_values(cls, values: Sequence[Any] | np.ndarray, kind: str = "entity") -> tuple[IdMap, np.ndarray]:
        """Build a map from raw values (in order of first appearance) and return their codes."""
        if not isinstance(values, np.ndarray):
            values = pd.Series(list(values)).to_numpy()  # object array: no width truncation
        codes, uniques = pd.factorize(values, sort=False)
        return cls(np.asarray(uniques), kind), codes.astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self.ids, other.ids)

    def __hash__(self) -> int:
        return hash((self.kind, len(self.ids)))

    @property
    def is_integer(self) -> bool:
        return np.issubdtype(self.ids.dtype, np.integer)

    def coerce(self, raw: Any) -> Any:
        """Turn a raw id given as text (CLI, HTTP) into the map's id type, as the readers do for files.

        Surrounding whitespace is dropped. Text is an integer id only when it is written as
        :data:`INTEGER` says (``"10"``, not ``"1_0"``, ``"1e1"``, ``"+10"`` or ``"010"``); an
        integer beyond 64 bits, a boolean or a float is an id no integer map holds.
        """
        if isinstance(raw, str):
            raw = raw.strip()
        if isinstance(raw, bool | np.bool_):
            wanted = "integers" if self.is_integer else "text"
            raise UnknownIdError(f"unknown {self.kind} {raw}: {self.kind} ids are {wanted}")
        if not self.is_integer:
            return raw if isinstance(raw, str) else str(raw.item() if isinstance(raw, np.generic) else raw)
        if isinstance(raw, str):
            if not INTEGER.fullmatch(raw):
                raise UnknownIdError(f"unknown {self.kind} {_show(raw)}: {self.kind} ids are integers")
            if len(raw) > 20:  # beyond 64 bits (and int() refuses 4,300+ digits)
                raise UnknownIdError(f"unknown {self.kind} {_show(raw)}")
            raw = int(raw)
        if not isinstance(raw, int | np.integer):
            raise UnknownIdError(f"unknown {self.kind} {_show(raw)}: {self.kind} ids are integers")
        if not -(2**63) <= int(raw) < 2**63:
            raise UnknownIdError(f"unknown {self.kind} {_show(raw)}")
        return raw

    def get_indexer(self, raw: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Indices of ``raw`` ids, ``-1`` where unknown."""
        values = _as_array(raw)
        if len(values) == 0:
            return np.empty(0, dtype=np.int64)
        if self.is_integer and values.dtype.kind in "OUS":
            if values.dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=False) == "integer":
                try:  # Python or numpy integers: one vectorized conversion
                    values = values.astype(np.int64)
                except OverflowError:  # some beyond 64 bits: those are unknown
                    return np.array([self._lookup_one(v) for v in values], dtype=np.int64)
            else:  # text: exact parsing, not numpy's int() ("1_0" is not 10)
                return np.array([self._lookup_one(v) for v in values], dtype=np.int64)
        return self._index.get_indexer(values).astype(np.int64)

    def _lookup_one(self, value: Any) -> int:
        try:
            found = self._index.get_loc(self.coerce(value))
        except (KeyError, TypeError, OverflowError, UnknownIdError):
            return -1
        return int(found) if isinstance(found, int | np.integer) else -1

    def index(self, raw: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Indices of ``raw`` ids; raises :class:`UnknownIdError` naming the first unknown id."""
        codes = self.get_indexer(raw)
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            bad = _as_array(raw)[missing[0]]
            extra = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UnknownIdError(f"unknown {self.kind} {_show(bad)}{extra}")
        return codes

    def index_one(self, raw: Any) -> int:
        """Index of one raw id (text is coerced to the id type)."""
        return int(self.index(np.asarray([self.coerce(raw)]))[0])

    def raw(self, indices: np.ndarray) -> np.ndarray:
        """Raw ids of ``indices``."""
        return self.ids[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list[Any]:
        return self.ids.tolist()


def raw_ids(values: Any, what: str, dtype: Any = object) -> np.ndarray:
    """One raw id, or a one-dimensional list, array, Series or tensor of them, as a 1-d array.

    Raises:
        ConfigError: naming ``what`` for a set, mapping or iterator (no order, or read once) and for
            an array of more than one dimension (a nested list).
    """
    from mfrec.errors import ConfigError

    if isinstance(values, set | frozenset | dict | Iterator):
        raise ConfigError(f"{what} must be one id or a list or array of ids, not {type(values).__name__}")
    array = np.asarray(values, dtype=dtype)
    if array.ndim > 1:
        raise ConfigError(f"{what} must be one id or a one-dimensional list of ids, not an array of shape "
                          f"{array.shape}")  # fmt: skip
    return np.atleast_1d(array)


def _as_array(raw: Any) -> np.ndarray:
    """A 1-d array of ``raw``; lists become object arrays (numpy's fixed-width strings drop NULs)."""
    if isinstance(raw, np.ndarray):
        return raw.reshape(-1)
    if isinstance(raw, (list, tuple, pd.Series, pd.Index)):
        return pd.Series(list(raw), dtype=object).to_numpy() if len(raw) else np.empty(0, dtype=object)
    return np.asarray([raw], dtype=object)


def _show(value: Any) -> str:
    """An id for a message: text quoted, and anything long cut to its first 40 characters."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int) and value.bit_length() > 256:  # str() refuses ints of 4,300+ digits
        return f"(an integer of {value.bit_length()} bits)"
    shown = repr(value) if isinstance(value, str) else str(value)
    return shown if len(shown) <= 60 else f"{shown[:40]}... ({len(shown):,} characters)"
