"""Ratings grouped by row as plain numpy CSR arrays, for the compiled (numba) engines."""

from __future__ import annotations

import numpy as np


def csr(rows: np.ndarray, cols: np.ndarray, n_rows: int, values: np.ndarray | None = None, dtype=np.float64):
    """``(indptr, cols[, values])`` of the pairs grouped by row, in their order within a row.

    ``indptr`` has ``n_rows + 1`` int64 entries; ``cols`` are int64 and ``values`` ``dtype``.
    """
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    grouped = (indptr, np.ascontiguousarray(cols[order], dtype=np.int64))
    return grouped if values is None else (*grouped, np.ascontiguousarray(values[order], dtype=dtype))
