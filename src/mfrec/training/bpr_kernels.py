"""Compiled (numba) BPR epoch: per-triple SGD, lock-free across threads (Hogwild).

Imported only when the compiled BPR engine trains. float32 factors, as the torch engine.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(inline="always")
def _mix(state):  # pragma: no cover
    """One splitmix64 step: a fresh 64-bit draw from ``state`` (no global generator is touched)."""
    z = state + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(inline="always")
def _rated(cols, start, stop, item):  # pragma: no cover
    """Whether ``item`` is among ``cols[start:stop]`` (sorted): binary search."""
    lo, hi = start, stop
    while lo < hi:
        mid = (lo + hi) >> 1
        if cols[mid] < item:
            lo = mid + 1
        else:
            hi = mid
    return lo < stop and cols[lo] == item


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def bpr_epoch(indptr, cols, users, items, order, draws, pool, p, q, b, lr, reg, n_slices, tries,
              hard):  # pragma: no cover
    r"""One pass over the training pairs in ``order``; returns the summed :math:`-\log\sigma(x_{uij})`.

    For pair :math:`(u, i)` the negative :math:`j` is ``pool[draw % len(pool)]``, drawn
    again (splitmix64 from ``draws``) while :math:`u` has interacted with it, at most
    ``tries`` times (a user who has seen nearly everything is skipped); with ``hard > 1``,
    ``hard - 1`` further unseen draws compete and the highest-scored is the negative
    (dynamic negative sampling, Zhang et al. 2013). ``pool`` holds each
    known item once (uniform negatives) or once per interaction (popularity-weighted).
    With :math:`x = p_u^\top (q_i - q_j) + b_i - b_j` and :math:`z = \sigma(-x)`, SGD on
    :math:`-\log\sigma(x) + \lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2 + \lVert q_j\rVert^2 + b_i^2 + b_j^2)/2`:

    .. math::  p_u \mathrel{+}= \eta (z (q_i - q_j) - \lambda p_u),\ q_i \mathrel{+}= \eta (z p_u - \lambda q_i),\
               q_j \mathrel{+}= \eta (-z p_u - \lambda q_j),\ b_{i,j} \mathrel{+}= \eta (\pm z - \lambda b_{i,j}).

    ``indptr``/``cols``: each user's items, sorted (CSR). The permutation is cut into
    ``n_slices`` slices run at once without locks.
    """
    lr, reg = np.float32(lr), np.float32(reg)
    n = order.shape[0]
    k = p.shape[1]
    m = np.uint64(pool.shape[0])
    losses = np.zeros(n_slices)
    size = (n + n_slices - 1) // n_slices
    for s in numba.prange(n_slices):
        total = 0.0
        for t in range(s * size, min(n, (s + 1) * size)):
            x = order[t]
            u = users[x]
            i = items[x]
            state = draws[t]
            j = pool[np.int64(state % m)]
            attempt = 0
            while _rated(cols, indptr[u], indptr[u + 1], j) and attempt < tries:
                state = _mix(state)
                j = pool[np.int64(state % m)]
                attempt += 1
            if attempt == tries and _rated(cols, indptr[u], indptr[u + 1], j):
                continue
            pu = p[u]
            if hard > 1:  # the highest-scored of ``hard`` unseen draws (dynamic negative sampling)
                best = b[j]
                for f in range(k):
                    best += pu[f] * q[j, f]
                for _ in range(hard - 1):
                    state = _mix(state)
                    c = pool[np.int64(state % m)]
                    if _rated(cols, indptr[u], indptr[u + 1], c):
                        continue
                    s_c = b[c]
                    for f in range(k):
                        s_c += pu[f] * q[c, f]
                    if s_c > best:
                        best = s_c
                        j = c
            qi = q[i]
            qj = q[j]
            diff = b[i] - b[j]
            for f in range(k):
                diff += pu[f] * (qi[f] - qj[f])
            z = np.float32(1.0) / (np.float32(1.0) + np.exp(diff))
            total += np.log1p(np.exp(-diff)) if diff > -30.0 else -diff
            for f in range(k):
                a = pu[f]
                gi = qi[f]
                gj = qj[f]
                pu[f] = a + lr * (z * (gi - gj) - reg * a)
                qi[f] = gi + lr * (z * a - reg * gi)
                qj[f] = gj + lr * (-z * a - reg * gj)
            b[i] += lr * (z - reg * b[i])
            b[j] += lr * (-z - reg * b[j])
        losses[s] = total
    return losses.sum()
