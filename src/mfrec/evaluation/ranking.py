"""Top-K ranking metrics, batched over users.

Protocol (binary relevance):

* relevant items of a user: their test ratings ``>= threshold`` (default 4.0 stars), less any item
  they also have in train (or in the excluded part): those are masked from every list;
* candidates: every item with a training rating that the user did not rate in train
  (optionally also minus their validation items);
* a user counts when they have at least one relevant item; metrics are means over them.

For a user with ranked list :math:`L` (length K), relevant set :math:`R` and
:math:`\\mathrm{hit}_j = [L_j \\in R]`:

* Precision@K = hits / K; Recall@K = hits / |R|; HitRate@K = [hits > 0];
* NDCG@K = DCG / IDCG with DCG = Σ_j hit_j / log2(j + 1) and IDCG over
  min(|R|, K) positions;
* MAP@K = (Σ_j hit_j · Precision@j) / min(|R|, K);
* MRR@K = 1 / rank of the first hit (0 when none);
* coverage = distinct items recommended to any user / number of candidate items.

Scores come in chunks of users (``score(users) -> (B, n_items)``), seen items are
masked, and ``topk`` picks the list, so memory is bounded by the chunk size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mfrec.data.csr import build_csr, csr_contains, csr_pairs
from mfrec.data.ratings import Ratings
from mfrec.errors import ConfigError

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: Ranking metrics of a run use every test user up to this many, and a uniform sample (seed 0) beyond.
RANKING_USERS = 20_000


def ranking_metrics_from_lists(ranked: np.ndarray, relevant: list[set] | np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user metrics from ranked item lists ``(U, K)`` and one set of relevant items per user.

    A readable reference for hand-made cases; :func:`evaluate_ranking` uses the
    vectorized :func:`per_user_metrics` directly.
    """
    hits = np.array([[item in rel for item in row[:k]] for row, rel in zip(ranked, relevant, strict=True)])
    n_rel = np.array([len(rel) for rel in relevant])
    return per_user_metrics(hits, n_rel, k)


def per_user_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Metrics per user from a boolean hit matrix ``(U, K)`` and relevant-set sizes ``(U,)``."""
    hits = np.asarray(hits, dtype=np.float64)[:, :k]
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    positions = np.arange(1, hits.shape[1] + 1)
    discounts = 1.0 / np.log2(positions + 1)
    n_hits = hits.sum(1)
    ideal_len = np.minimum(n_relevant, float(k)).astype(np.int64)
    longest = int(ideal_len.max(initial=0))  # k may exceed the catalog: the ideal list is never longer than this
    idcg = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, longest + 1) + 1))])[ideal_len]
    precision_at = np.cumsum(hits, 1) / positions
    first = np.where(hits.any(1), hits.argmax(1) + 1, 0)
    safe = np.maximum(n_relevant, 1)
    return {
        "precision": n_hits / float(k),
        "recall": n_hits / safe,
        "ndcg": (hits * discounts).sum(1) / np.maximum(idcg, 1e-12),
        "map": (hits * precision_at).sum(1) / np.maximum(ideal_len, 1),
        "hit_rate": (n_hits > 0).astype(np.float64),
        "mrr": np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0),
    }


@dataclass(frozen=True)
class RankedUsers:
    """What :func:`rank_users` found for each evaluated user, in index space.

    ``users`` ``(U,)``; ``top`` ``(U, k)`` the ranked item indices (-1 past the last
    candidate) and ``scores`` their scores (-inf there); ``metrics`` one array ``(U,)``
    per name in :data:`METRICS`; ``coverage`` the share of candidate items recommended
    to anyone.
    """

    users: np.ndarray
    top: np.ndarray
    scores: np.ndarray
    metrics: dict[str, np.ndarray]
    coverage: float
    k: int

    def summary(self) -> dict[str, float]:
        """Mean of each metric over the users, with ``coverage``, ``users`` and ``k``.

        With no user to rank for (no test rating reaches the relevance threshold) the
        means are undefined: NaN, not 0, so that "nothing to measure" never reads as
        "measured and missed everything".
        """
        n = len(self.users)
        result: dict[str, float] = {name: float(self.metrics[name].sum()) / n if n else float("nan")
                                    for name in METRICS}  # fmt: skip
        result["coverage"] = self.coverage
        result["users"] = len(self.users)
        result["k"] = self.k
        return result


def evaluate_ranking(
    score: Callable[[torch.Tensor], torch.Tensor],
    train: Ratings,
    test: Ratings,
    *,
    k: int = 10,
    threshold: float = 4.0,
    exclude: Ratings | None = None,
    chunk_size: int = 1024,
    sample_users: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Mean ranking metrics at ``k`` over test users with a relevant item (see the module docstring).

    The means of :func:`rank_users` (same arguments).
    """
    return rank_users(score, train, test, k=k, threshold=threshold, exclude=exclude, chunk_size=chunk_size,
                      sample_users=sample_users, seed=seed).summary()  # fmt: skip


def rank_users(
    score: Callable[[torch.Tensor], torch.Tensor],
    train: Ratings,
    test: Ratings,
    *,
    k: int = 10,
    threshold: float = 4.0,
    exclude: Ratings | None = None,
    chunk_size: int = 1024,
    sample_users: int | None = None,
    seed: int = 0,
) -> RankedUsers:
    """The top-``k`` list and per-user metrics of every test user with a relevant item.

    ``score(user_indices)`` returns scores of every item, shape ``(B, n_items)``;
    ``train``, ``test`` (and ``exclude``, e.g. validation) share id maps. With
    ``sample_users``, at most that many of those users are drawn uniformly (numpy
    generator seeded by ``seed``): the estimate for catalogs of ML-25M's size,
    where scoring every user costs minutes. Chunks hold at most ``chunk_size``
    users and about 2^25 scores, so memory is bounded at any catalog size.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k (the ranking cut-off) must be a whole number of at least 1, not {k!r}")
    n_users, n_items = train.n_users, train.n_items
    candidates = np.zeros(n_items, dtype=bool)
    candidates[train.items] = True
    seen_ptr, seen_idx = build_csr(train.users, train.items, n_users)
    if exclude is not None and len(exclude):
        ex_ptr, ex_idx = build_csr(exclude.users, exclude.items, n_users)
    keep = test.ratings >= threshold
    # a pair the user has in train (or exclude) is masked from every list, so it cannot count as relevant:
    # evaluating on ratings that overlap the training data measures the rest, not a list that could never hit
    keep[keep] &= ~csr_contains(seen_ptr, seen_idx, test.users[keep], test.items[keep])
    if exclude is not None and len(exclude):
        keep[keep] &= ~csr_contains(ex_ptr, ex_idx, test.users[keep], test.items[keep])
    rel_ptr, rel_idx = build_csr(test.users[keep], test.items[keep], n_users)
    n_relevant = np.diff(rel_ptr)
    users = np.flatnonzero(n_relevant > 0)
    if sample_users is not None and len(users) > sample_users:
        users = np.sort(np.random.default_rng(seed).choice(users, sample_users, replace=False))
    chunk_size = max(1, min(chunk_size, (1 << 25) // max(n_items, 1)))
    width = min(k, n_items)
    tops = np.full((len(users), width), -1, dtype=np.int64)
    top_scores = np.full((len(users), width), -np.inf)
    per_user = {name: np.zeros(len(users)) for name in METRICS}
    recommended = np.zeros(n_items, dtype=bool)
    not_candidate = torch.from_numpy(~candidates)
    for start in range(0, len(users), chunk_size):
        chunk = users[start : start + chunk_size]
        with torch.no_grad():
            scores = score(torch.from_numpy(chunk)).detach().to("cpu", torch.float64)
        scores[:, not_candidate] = -torch.inf
        rows, cols = csr_pairs(seen_ptr, seen_idx, chunk)
        scores[rows, cols] = -torch.inf
        if exclude is not None and len(exclude):
            rows, cols = csr_pairs(ex_ptr, ex_idx, chunk)
            scores[rows, cols] = -torch.inf
        best, top = torch.topk(scores, width, dim=1)
        best, top = best.numpy(), top.numpy()
        valid = np.isfinite(best)
        relevant = np.zeros((len(chunk), n_items), dtype=bool)
        rows, cols = csr_pairs(rel_ptr, rel_idx, chunk)
        relevant[rows, cols] = True
        hits = np.take_along_axis(relevant, top, 1) & valid
        recommended[top[valid]] = True
        where = slice(start, start + len(chunk))
        tops[where] = np.where(valid, top, -1)
        top_scores[where] = best
        for name, values in per_user_metrics(hits, n_relevant[chunk], k).items():
            per_user[name][where] = values
    coverage = float(recommended.sum() / max(candidates.sum(), 1))
    return RankedUsers(users, tops, top_scores, per_user, coverage, k)


def popularity_scores(train: Ratings) -> Callable[[torch.Tensor], torch.Tensor]:
    """Scores every item by its number of training ratings (the popularity baseline)."""
    counts = torch.from_numpy(np.bincount(train.items, minlength=train.n_items).astype(np.float64))
    return lambda users: counts.expand(len(users), -1).clone()


def named_metrics(ranking: dict[str, float]) -> dict[str, float]:
    """Ranking metrics named with their cut-off (``ndcg@10``, ``recall@10``); coverage and users unchanged."""
    k = ranking["k"]
    return {(f"{name}@{k}" if name in METRICS else name): value for name, value in ranking.items() if name != "k"}
