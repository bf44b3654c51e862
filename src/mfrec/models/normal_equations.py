"""Per-row normal equations over the ratings, batched: the shared core of the closed-form solvers.

Gibbs sampling (:mod:`mfrec.models.bayesian`) and explicit ALS (:mod:`mfrec.models.als`)
both need, for every user (then every item), the Gram matrix of the other side's
vectors over the row's ratings and the ratings-weighted sum of those vectors.
:class:`RowIndex` groups one side's ratings by row once; :func:`row_systems` yields
the pieces a slice of rows at a time as batched matrix products.
"""

from __future__ import annotations

import torch


class RowIndex:
    """One side's ratings grouped by row (CSR order), with rows bucketed by padded length.

    ``buckets`` lists ``(rows, length)``: the rows whose rating count is at most
    ``length`` (a power of two) and more than half of it. Padding each bucket to its
    length at most doubles the work, and every bucket is one batched matrix product.
    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n_rows: int) -> None:
        order = torch.argsort(rows, stable=True)
        narrow = torch.int32 if len(cols) == 0 or int(cols.max()) < 2**31 else torch.int64
        self.cols = cols[order].to(narrow)  # int32 and float32 halve what ML-25M's index holds
        self.values = values[order].float()
        del order
        counts = torch.bincount(rows, minlength=n_rows)
        self.starts = torch.cumsum(counts, 0) - counts
        self.counts = counts
        self.n_rows = n_rows
        lengths = torch.where(counts > 0, 2 ** torch.ceil(torch.log2(counts.clamp(min=1).double())).long(), 0)
        self.buckets = [
            (torch.nonzero(lengths == length).squeeze(1), int(length))
            for length in torch.unique(lengths).tolist()
            if length > 0
        ]


def row_systems(index: RowIndex, other: torch.Tensor, values: torch.Tensor | None = None, block: int = 1 << 22):
    """Per-row normal-equation pieces, a slice of rows at a time: ``(rows, gram, rhs)``.

    For each row :math:`u` with ratings :math:`j`: ``gram`` :math:`= \\sum_j y_j y_j^\\top`
    (shape ``(m, k, k)``) and ``rhs`` :math:`= \\sum_j v_j y_j` (``(m, k)``), both float64,
    where :math:`y_j` is the ``other`` row of rating :math:`j` and :math:`v_j` its value
    (``values`` in the index's row order, default ``index.values``). Rows without
    ratings come first, with zeros. Rows are taken a bucket at a time in slices of
    about ``block`` gathered numbers (and ``block`` numbers of k x k matrices), so
    memory stays bounded at any scale; the sums run in float32 as batched products.
    """
    k = other.shape[1]
    device = other.device
    values = index.values if values is None else values
    padded = torch.cat([other.float(), torch.zeros(1, k, dtype=torch.float32, device=device)])
    empty = torch.nonzero(index.counts == 0).squeeze(1)
    groups = [(empty, 0)] if len(empty) else []
    for rows, length in [*groups, *index.buckets]:
        step = max(1, block // max(length * k, k * k))
        for first in range(0, len(rows), step):
            chunk = rows[first : first + step]
            if not length:
                yield (chunk, torch.zeros(len(chunk), k, k, dtype=torch.float64, device=device),
                       torch.zeros(len(chunk), k, dtype=torch.float64, device=device))  # fmt: skip
                continue
            offsets = torch.arange(length, device=device)
            valid = offsets[None, :] < index.counts[chunk, None]
            positions = (index.starts[chunk, None] + offsets[None, :]).clamp(max=len(index.cols) - 1)
            # (m, L, k): each row's rated items, padded with a zero row
            y = padded[torch.where(valid, index.cols[positions].long(), len(other))]
            r = torch.where(valid, values[positions].float(), 0.0)
            yt = y.transpose(1, 2)
            yield chunk, torch.bmm(yt, y).double(), torch.bmm(yt, r[:, :, None])[:, :, 0].double()
