"""Compressed sparse rows of (user, item) pairs, for masking seen items in batches."""

from __future__ import annotations

import numpy as np


def build_csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)``: the items of user ``u`` are ``indices[indptr[u]:indptr[u + 1]]``, sorted."""
    indptr, order = csr_order(users, items, n_users)
    return indptr, np.asarray(items)[order].astype(np.int64)


def csr_order(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, order)``: ``order`` sorts the pairs by user then item, so values can follow them."""
    users = np.asarray(users, dtype=np.int64)
    width = int(np.max(items)) + 1 if len(items) else 1
    if n_users * width < 2**62:  # one int64 key sorts faster than a two-key lexsort
        order = np.argsort(users * width + np.asarray(items, dtype=np.int64), kind="stable")
    else:
        order = np.lexsort((items, users))
    counts = np.bincount(users, minlength=n_users)
    return np.r_[0, np.cumsum(counts)].astype(np.int64), order


def csr_contains(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Whether each ``(users[j], items[j])`` is in the CSR of :func:`build_csr` (rows sorted), vectorized: the
    pairs as one sorted key ``row * width + item``, searched with ``searchsorted``."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    if not len(indices) or not len(users):
        return np.zeros(len(users), dtype=bool)
    width = max(int(indices.max()), int(items.max())) + 1
    keys = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr)) * width + indices
    wanted = users * width + items
    found = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return keys[found] == wanted


def csr_pairs(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(row, item)`` pairs for a batch of ``users`` (``row`` = position in the batch), vectorized."""
    starts = indptr[users]
    counts = indptr[users + 1] - starts
    rows = np.repeat(np.arange(len(users)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, indices[np.repeat(starts, counts) + offsets]


def csr_arrays(rows: np.ndarray, cols: np.ndarray, n_rows: int, values: np.ndarray | None = None, dtype=np.float64):
    """``(indptr, cols[, values])`` of pairs grouped by row, in their given order within a row, for the compiled
    engines: ``indptr`` has ``n_rows + 1`` int64 entries, ``cols`` are int64 and ``values`` ``dtype``."""
    order = np.argsort(rows, kind="stable")  # one key: quicker than csr_order's lexsort at 25M pairs
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    grouped = (indptr, np.ascontiguousarray(cols[order], dtype=np.int64))
    return grouped if values is None else (*grouped, np.ascontiguousarray(values[order], dtype=dtype))
