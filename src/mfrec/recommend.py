"""Top-N results as arrays, and the masked top-k they come from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from mfrec._repr import count, html_facts
from mfrec.data.idmap import raw_ids


@dataclass(frozen=True)
class TopRequest:
    """One top-``n`` request for :meth:`~mfrec.MatrixFactorization.recommend_batch`.

    Either ``user`` (a raw id of a trained user; their rated items are left out when
    ``exclude_seen``) or ``ratings`` (a new user's ``{raw item: rating}``, folded in; those items
    are left out). ``items``, ``exclude``, ``genres``, ``years`` and ``min_ratings`` are the
    candidate filters of :meth:`~mfrec.MatrixFactorization.recommend`.
    """

    user: Any = None
    ratings: Mapping[Any, float] | None = None
    n: int = 10
    exclude_seen: bool = True
    items: Any = None
    exclude: Any = None
    genres: Any = None
    years: Any = None
    min_ratings: int | None = None


@dataclass(frozen=True)
class Because:
    """Why each recommendation scored as it did: the user's rated items that added most to it.

    Every array has shape ``(U, N, K)`` (``K`` items per recommendation, padded with
    ``None``/NaN when the user rated fewer), best contributor first.

    Attributes:
        items: raw ids of the user's rated items.
        titles: their titles (``None`` where unknown).
        contributions: what each added to the score, in the score's units
            (:meth:`mfrec.models.base.Model.explain`): with ``base`` and the contributions of
            *all* the user's items they sum to the score of the user's fold-in.
        shares: each contribution over the sum of the absolute contributions of all the
            user's items (negative: it pulled the score down).
        base: ``(U, N)``, the part of the score no rated item explains (a rating model's
            item offset, 0 for implicit ALS and EASE).
    """

    items: np.ndarray
    titles: np.ndarray
    contributions: np.ndarray
    shares: np.ndarray
    base: np.ndarray

    def describe(self, valid: np.ndarray) -> list[str]:
        """One line per valid recommendation: ``"Title A (41%), Title B (22%)"``."""
        lines = []
        for items, titles, shares in zip(self.items[valid], self.titles[valid], self.shares[valid], strict=True):
            named = zip(items, titles, shares, strict=True)
            lines.append(", ".join(f"{t if t is not None else i} ({s:.0%})" for i, t, s in named if i is not None))
        return lines


@dataclass(frozen=True)
class Recommendations:
    """Top-N for a batch of users, batch-first.

    Attributes:
        users: raw user ids, shape ``(U,)`` (``None`` entries for folded-in new users);
            for :meth:`~mfrec.estimator.MatrixFactorization.similar_items`, the query items.
        items: raw item ids, shape ``(U, N)``; rows with fewer candidates than N are padded.
        scores: shape ``(U, N)``; ``-inf`` marks padding. What they are is ``unit``.
        titles: item titles, shape ``(U, N)``, ``None`` where unknown.
        unit: ``stars`` (a rating model's predicted rating, clipped to the rating scale),
            ``score`` (a ranking model's score: only its order means something) or
            ``similarity`` (similar items).
        query: what ``users`` are: ``user``, or ``query_item`` for similar items.
        because: the explanations (:class:`Because`) when asked for (``explain=``), else ``None``.
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    titles: np.ndarray
    unit: str = "score"
    query: str = "user"
    because: Because | None = None

    def __len__(self) -> int:
        return len(self.users)

    def __repr__(self) -> str:
        who = "query item" if self.query == "query_item" else "user"
        shown = self.to_frame().head(10).to_string(index=False)
        return f"Recommendations({count(len(self), who)}, top {self.items.shape[1]}, {self._unit()})\n{shown}"

    def _unit(self) -> str:
        return {"stars": "scores in stars", "score": "ranking scores: only their order matters",
                "similarity": "cosine similarities"}.get(self.unit, self.unit)  # fmt: skip

    def _repr_html_(self) -> str:
        who = "query item" if self.query == "query_item" else "user"
        return html_facts(f"Recommendations: {count(len(self), who)}, top {self.items.shape[1]}, "
                          f"{self._unit()}", [], self.to_frame().to_html(index=False, max_rows=40))  # fmt: skip

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.scores)

    def to_frame(self, query: str | None = None, score: str | None = None) -> pd.DataFrame:
        """One row per recommendation: ``user, rank, item, <unit>, title`` (padding dropped), and
        ``because`` (the top contributors with their shares) when explanations were asked for.

        The first column is named by ``query`` (default :attr:`query`) and left out for a
        folded-in new user, who has no id; the score column by ``score`` (default :attr:`unit`).
        """
        n = self.items.shape[1] if self.items.ndim == 2 else 0
        valid = self.valid
        columns = {
            query or self.query: np.repeat(self.users, n).reshape(-1, n)[valid] if n else [],
            "rank": np.tile(np.arange(1, n + 1), (len(self.users), 1))[valid] if n else [],
            "item": self.items[valid],
            score or self.unit: self.scores[valid],
            "title": self.titles[valid],
        }
        if self.because is not None:
            columns["because"] = self.because.describe(valid)
        if len(self.users) and all(user is None for user in self.users):
            del columns[query or self.query]
        return pd.DataFrame(columns)


def masked_topk(scores: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, scores)`` of the ``n`` best entries per row; masked entries are ``-inf``."""
    k = min(n, scores.shape[-1])
    top, pos = torch.topk(scores, k, dim=-1)
    return pos.numpy(), top.double().numpy()


def write_recommendations(
    model,
    path,
    *,
    users=None,
    n: int = 10,
    exclude_seen: bool = True,
    chunk_size: int = 2048,
    progress: bool = False,
    **options,
) -> int:
    """Write top-``n`` for ``users`` (default: every user with training data) to Parquet or CSV.

    Columns ``user, rank, item, stars|score, title`` (and ``because`` with ``explain``); ``options``
    are :meth:`~mfrec.MatrixFactorization.recommend`'s filters and ``explain``. Users are scored chunk by chunk
    and each chunk is appended, so memory stays bounded by ``chunk_size``; the
    file appears under its name only when complete. Returns the rows written.
    """

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from mfrec._io import as_path, atomic_write, check_replaceable, write_sidecar
    from mfrec.errors import OutputError

    path = as_path(path, "the output file")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise OutputError(f"{path}: recommendations are written as .parquet or .csv")
    if path.parent.is_dir():
        check_replaceable(path.parent, [path.name], f"{path.name}.sha256", "a recommendations file")
    users = model.trained_users() if users is None else users
    users = raw_ids(users, "users")
    model.user_indices(users)  # fail on an unknown id, genre or bound before writing anything
    model.recommend(users[:1], 1, **options)
    rows = 0

    def write(tmp) -> None:
        nonlocal rows
        writer = None
        try:
            for start in tqdm(range(0, len(users), chunk_size), desc="recommending", unit="chunk",
                              disable=not progress):  # fmt: skip
                chunk = users[start : start + chunk_size]
                frame = model.recommend(chunk, n, exclude_seen=exclude_seen, **options).to_frame()
                frame["title"] = frame["title"].astype(object).where(frame["title"].notna(), None)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = (pq.ParquetWriter(tmp, table.schema) if suffix == ".parquet"
                              else pacsv.CSVWriter(tmp, table.schema))  # fmt: skip
                writer.write_table(table)
                rows += len(frame)
        finally:
            if writer is not None:
                writer.close()

    atomic_write(path, write)
    write_sidecar(path)  # <path>.sha256, so the file can be checked wherever it goes
    return rows
