"""Compiled (numba) half-iteration of implicit ALS: every row's conjugate-gradient solve, in parallel.

Imported only when the compiled engine trains. float32 throughout, as the torch engine.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def cg_half_iteration(indptr, cols, confidence, x, y, gram, regularization, unobserved, steps):  # pragma: no cover
    r"""Solve every row :math:`u` of ``x`` against fixed ``y`` by ``steps`` conjugate-gradient steps, warm-started.

    The system is :math:`(G + \lambda_u I + \sum_{i \in I_u} (c_{ui} - \alpha_0)\, y_i y_i^\top)\, x_u
    = \sum_{i \in I_u} c_{ui}\, y_i` with :math:`G = \alpha_0 Y^\top Y` (``gram``, shared by every row),
    :math:`\lambda_u` = ``regularization[u]``, :math:`\alpha_0` = ``unobserved`` and :math:`c_{ui}` =
    ``confidence`` (CSR by row, with ``indptr`` and ``cols``). A product with the matrix costs
    :math:`O(k^2 + n_u k)`. ``x`` is updated in place.
    """
    n, k = x.shape
    for u in numba.prange(n):
        start, stop = indptr[u], indptr[u + 1]
        lam = regularization[u]
        xu = x[u].copy()
        r = np.empty(k, dtype=x.dtype)
        ap = np.empty(k, dtype=x.dtype)
        # r = b - A x
        for a in range(k):
            s = -lam * xu[a]
            for b in range(k):
                s -= gram[a, b] * xu[b]
            r[a] = s
        for pos in range(start, stop):
            yi = y[cols[pos]]
            c = confidence[pos]
            dot = np.float32(0.0)
            for f in range(k):
                dot += yi[f] * xu[f]
            coef = c - (c - unobserved) * dot
            for f in range(k):
                r[f] += coef * yi[f]
        p = r.copy()
        rs = np.float32(0.0)
        for f in range(k):
            rs += r[f] * r[f]
        for _ in range(steps):
            if rs < 1e-20:
                break
            for a in range(k):
                s = lam * p[a]
                for b in range(k):
                    s += gram[a, b] * p[b]
                ap[a] = s
            for pos in range(start, stop):
                yi = y[cols[pos]]
                dot = np.float32(0.0)
                for f in range(k):
                    dot += yi[f] * p[f]
                coef = (confidence[pos] - unobserved) * dot
                for f in range(k):
                    ap[f] += coef * yi[f]
            pap = np.float32(0.0)
            for f in range(k):
                pap += p[f] * ap[f]
            if pap <= 0:
                break
            step = rs / pap
            new_rs = np.float32(0.0)
            for f in range(k):
                xu[f] += step * p[f]
                r[f] -= step * ap[f]
                new_rs += r[f] * r[f]
            beta = new_rs / rs
            for f in range(k):
                p[f] = r[f] + beta * p[f]
            rs = new_rs
        x[u] = xu
