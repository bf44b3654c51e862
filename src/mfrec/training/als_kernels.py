"""Compiled (numba) half-iteration of implicit ALS: every row's conjugate-gradient solve, in parallel.

Imported only when the compiled engine trains. float32 throughout, as the torch engine.
"""

from __future__ import annotations

import numba
import numpy as np

#: rows per chunk: each numba thread multiplies its chunk's directions by the Gram matrix with one BLAS call
CHUNK = 256


def cg_half_iteration(indptr, cols, confidence, x, y, gram, regularization, unobserved, steps) -> None:
    r"""Solve every row :math:`u` of ``x`` against fixed ``y`` by ``steps`` conjugate-gradient steps, warm-started.

    The system is :math:`(G + \lambda_u I + \sum_{i \in I_u} (c_{ui} - \alpha_0)\, y_i y_i^\top)\, x_u
    = \sum_{i \in I_u} c_{ui}\, y_i` with :math:`G = \alpha_0 Y^\top Y` (``gram``, shared by every row),
    :math:`\lambda_u` = ``regularization[u]``, :math:`\alpha_0` = ``unobserved`` and :math:`c_{ui}` =
    ``confidence`` (CSR by row, with ``indptr`` and ``cols``). ``x`` is updated in place.

    The steps run in lockstep over the rows, in a parallel numba loop over chunks of
    :data:`CHUNK` rows: a chunk's shared part, :math:`P G`, is one (single-threaded) BLAS
    matrix product, and the :math:`O(n_u k)` observed part and the step follow row by row.
    Every row's iterates are those of its own conjugate-gradient solve. Run it with BLAS
    limited to one thread: the chunks are the parallel part.
    """
    r = np.empty_like(x)
    p = np.empty_like(x)
    rs = np.empty(len(x), dtype=x.dtype)
    _residual(indptr, cols, confidence, x, y, gram, regularization, unobserved, r, p, rs, CHUNK)
    for _ in range(steps):
        _step(indptr, cols, confidence, x, y, gram, regularization, unobserved, r, p, rs, CHUNK)


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _residual(indptr, cols, confidence, x, y, gram, regularization, unobserved, r, p, rs, chunk):  # pragma: no cover
    """``r = b - A x`` for every row; ``p = r``; ``rs = |r|^2``."""
    n, k = x.shape
    for c in numba.prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        shared = np.dot(x[lo:hi], gram)  # X G for the chunk
        for u in range(lo, hi):
            xu = x[u]
            lam = regularization[u]
            ru = r[u]
            for f in range(k):
                ru[f] = -shared[u - lo, f] - lam * xu[f]
            for pos in range(indptr[u], indptr[u + 1]):
                yi = y[cols[pos]]
                conf = confidence[pos]
                dot = np.float32(0.0)
                for f in range(k):
                    dot += yi[f] * xu[f]
                coef = conf - (conf - unobserved) * dot
                for f in range(k):
                    ru[f] += coef * yi[f]
            total = np.float32(0.0)
            for f in range(k):
                p[u, f] = ru[f]
                total += ru[f] * ru[f]
            rs[u] = total


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _step(indptr, cols, confidence, x, y, gram, regularization, unobserved, r, p, rs, chunk):  # pragma: no cover
    """One conjugate-gradient step for every row; a converged row stays put."""
    n, k = x.shape
    for c in numba.prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        shared = np.dot(p[lo:hi], gram)  # P G for the chunk
        for u in range(lo, hi):
            if rs[u] < 1e-20:
                continue
            pu = p[u]
            ap = shared[u - lo]
            lam = regularization[u]
            for f in range(k):
                ap[f] += lam * pu[f]
            for pos in range(indptr[u], indptr[u + 1]):
                yi = y[cols[pos]]
                dot = np.float32(0.0)
                for f in range(k):
                    dot += yi[f] * pu[f]
                coef = (confidence[pos] - unobserved) * dot
                for f in range(k):
                    ap[f] += coef * yi[f]
            pap = np.float32(0.0)
            for f in range(k):
                pap += pu[f] * ap[f]
            if pap <= 0:
                rs[u] = 0.0  # no descent direction left: this row stops
                continue
            step = rs[u] / pap
            new_rs = np.float32(0.0)
            xu, ru = x[u], r[u]
            for f in range(k):
                xu[f] += step * pu[f]
                ru[f] -= step * ap[f]
                new_rs += ru[f] * ru[f]
            beta = new_rs / rs[u]
            for f in range(k):
                pu[f] = ru[f] + beta * pu[f]
            rs[u] = new_rs
