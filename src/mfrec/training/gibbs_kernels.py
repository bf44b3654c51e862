"""Compiled (numba) conditionals of the Bayesian SVD++ sampler; imported only when that model trains.

Every kernel works on one side at a time (users, then items; the item side is the
same code with the roles swapped) in float64. The standard normal draws come in as
arrays drawn by the caller from its own generator, so the chain depends on the seed
alone, not on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _gaussian(precision, linear, draw):  # pragma: no cover - compiled
    r"""One draw of :math:`\mathcal N(P^{-1} h, P^{-1})`: Cholesky :math:`P = LL^\top`, then
    :math:`x = L^{-\top}(L^{-1} h + z)`. ``precision`` must be symmetric positive definite."""
    m = precision.shape[0]
    lower = np.linalg.cholesky(precision)
    w = np.empty(m)
    for a in range(m):
        s = linear[a]
        for b in range(a):
            s -= lower[a, b] * w[b]
        w[a] = s / lower[a, a]
    x = np.empty(m)
    for a in range(m - 1, -1, -1):
        s = w[a] + draw[a]
        for b in range(a + 1, m):
            s -= lower[b, a] * x[b]
        x[a] = s / lower[a, a]
    return x


@numba.njit(parallel=True, cache=True, nogil=True)
def row_statistics(indptr, cols, targets, other, free, fixed, gram, moment):  # pragma: no cover - compiled
    r"""Each row's likelihood in its free coordinates: ``gram[u]`` :math:`= \sum_i v_i v_i^\top` and
    ``moment[u]`` :math:`= \sum_i (t_{ui} - o_{i,c})\, v_i`, where :math:`v_i` is the other side's
    vector ``other[i]`` restricted to the columns ``free`` and :math:`o_{i,c}` its column ``fixed``
    (the other side's bias, which meets this side's constant 1). CSR by row."""
    n = indptr.shape[0] - 1
    m = free.shape[0]
    for u in numba.prange(n):
        g = np.zeros((m, m))
        e = np.zeros(m)
        v = np.empty(m)
        for pos in range(indptr[u], indptr[u + 1]):
            i = cols[pos]
            for a in range(m):
                v[a] = other[i, free[a]]
            t = targets[pos] - other[i, fixed]
            for a in range(m):
                e[a] += t * v[a]
                for b in range(a + 1):
                    g[a, b] += v[a] * v[b]
        for a in range(m):
            for b in range(a):
                g[b, a] = g[a, b]
        gram[u] = g
        moment[u] = e


@numba.njit(parallel=True, cache=True, nogil=True)
def sample_rows(gram, moment, offset, rows, prior_linear, prior_precision, noise, draws):  # pragma: no cover
    r"""Every row's own vector :math:`p_u` given the rest of its representation :math:`o_u` (``offset``),
    under the prior :math:`\mathcal N(\Lambda^{-1}\eta, \Lambda^{-1})` (``prior_precision`` :math:`\Lambda`,
    ``prior_linear`` :math:`\eta = \Lambda\mu`): precision :math:`\alpha G_u + \Lambda`, linear term
    :math:`\alpha (m_u - G_u o_u) + \eta`. Writes ``rows`` in place."""
    n, m = rows.shape
    for u in numba.prange(n):
        p = noise * gram[u] + prior_precision
        h = np.empty(m)
        for a in range(m):
            s = moment[u, a]
            for b in range(m):
                s -= gram[u, a, b] * offset[u, b]
            h[a] = noise * s + prior_linear[a]
        rows[u] = _gaussian(p, h, draws[u])


@numba.njit(parallel=True, cache=True, nogil=True)
def sample_rating_rows(indptr, cols, targets, other, prior_linear, prior_precision, noise, draws, rows):  # pragma: no cover  # noqa: E501
    r"""Every row's vector given the other side's ``other`` (all columns), BPMF's conditional: precision
    :math:`\Lambda + \alpha \sum_i v_i v_i^\top`, linear term :math:`\eta + \alpha \sum_i t_{ui} v_i`.
    Each row's Gram matrix lives only while its row is drawn, so memory is that of the tables."""
    n, m = rows.shape
    for u in numba.prange(n):
        p = prior_precision.copy()
        h = prior_linear.copy()
        for pos in range(indptr[u], indptr[u + 1]):
            i = cols[pos]
            t = noise * targets[pos]
            for a in range(m):
                va = noise * other[i, a]
                h[a] += t * other[i, a]
                for b in range(a + 1):
                    p[a, b] += va * other[i, b]
        for a in range(m):
            for b in range(a):
                p[b, a] = p[a, b]
        rows[u] = _gaussian(p, h, draws[u])


@numba.njit(cache=True, nogil=True)
def sample_features(indptr, owners, weight, gram, moment, total, features, prior_mean, prior_precision, noise,
                    draws):  # pragma: no cover - compiled  # fmt: skip
    r"""Every implicit feature vector :math:`y_j` in turn (a sequential scan, so the chain is exact).

    Feature :math:`j` enters the representation :math:`a_u = p_u + w_u \sum_{l \in N(u)} y_l` of each
    owner :math:`u` (CSR ``indptr``/``owners`` by feature; :math:`w_u` = ``weight[u]``). With
    :math:`a_u^{-j} = a_u - w_u y_j`, its conditional has precision
    :math:`\mathrm{diag}(\lambda) + \alpha \sum_u w_u^2 G_u` and linear term
    :math:`\lambda \odot \mu + \alpha \sum_u w_u (m_u - G_u a_u^{-j})`. ``total`` (the :math:`a_u`)
    is kept up to date after each draw."""
    n, m = features.shape
    p = np.empty((m, m))
    h = np.empty(m)
    rest = np.empty(m)
    for j in range(n):
        if indptr[j] == indptr[j + 1]:  # no owner: the prior
            for a in range(m):
                features[j, a] = prior_mean[a] + draws[j, a] / np.sqrt(prior_precision[a])
            continue
        p[:] = 0.0
        for a in range(m):
            p[a, a] = prior_precision[a]
            h[a] = prior_precision[a] * prior_mean[a]
        for pos in range(indptr[j], indptr[j + 1]):
            u = owners[pos]
            w = weight[u]
            c = noise * w * w
            for a in range(m):
                rest[a] = total[u, a] - w * features[j, a]
            for a in range(m):
                s = moment[u, a]
                for b in range(m):
                    s -= gram[u, a, b] * rest[b]
                for b in range(a + 1):  # the lower triangle; mirrored below
                    p[a, b] += c * gram[u, a, b]
                h[a] += noise * w * s
        for a in range(m):
            for b in range(a):
                p[b, a] = p[a, b]
        new = _gaussian(p, h, draws[j])
        for pos in range(indptr[j], indptr[j + 1]):
            u = owners[pos]
            w = weight[u]
            for a in range(m):
                total[u, a] += w * (new[a] - features[j, a])
        features[j] = new


@numba.njit(parallel=True, cache=True, nogil=True)
def pair_dots(x, y, users, items, out):  # pragma: no cover - compiled
    """``out[r] = x[users[r]] . y[items[r]]``."""
    k = x.shape[1]
    for r in numba.prange(users.shape[0]):
        s = 0.0
        u, i = users[r], items[r]
        for f in range(k):
            s += x[u, f] * y[i, f]
        out[r] = s
