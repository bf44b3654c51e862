"""Compressed sparse rows of (user, item) pairs, for masking seen items in batches."""

from __future__ import annotations

import numpy as np


def build_csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)``: the items of user ``u`` are ``indices[indptr[u]:indptr[u + 1]]``, sorted."""
    indptr, order = csr_order(users, items, n_users)
    return indptr, np.asarray(items)[order].astype(np.int64)


def csr_order(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, order)``: ``order`` sorts the pairs by user then item, so values can follow them."""
    order = np.lexsort((items, users))
    counts = np.bincount(users, minlength=n_users)
    return np.r_[0, np.cumsum(counts)].astype(np.int64), order


def csr_pairs(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(row, item)`` pairs for a batch of ``users`` (``row`` = position in the batch), vectorized."""
    starts = indptr[users]
    counts = indptr[users + 1] - starts
    rows = np.repeat(np.arange(len(users)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, indices[np.repeat(starts, counts) + offsets]
