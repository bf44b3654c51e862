"""Micro-batching: concurrent live top-n requests scored as one matrix product.

One batch is scored at a time, off the event loop. Requests that arrive meanwhile queue and
become the next batch, so a lone request waits for nothing, and under load B requests cost one
``(B, k) @ (k, n_items)`` product and one ``topk`` instead of B of each
(:meth:`~mfrec.MatrixFactorization.recommend_batch`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from mfrec.recommend import Recommendations, TopRequest

#: The most requests scored in one product (a (64, n_items) score matrix).
MAX_BATCH = 64


class MicroBatcher:
    """Queues :class:`~mfrec.recommend.TopRequest` s from concurrent handlers and scores them in batches."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self._pending: list[tuple[Any, TopRequest, asyncio.Future]] = []
        self._running = False
        self._task: asyncio.Task | None = None
        self.batches = 0  # how many products were computed, and for how many requests (for /v1/model)
        self.requests = 0

    async def recommend(self, model, request: TopRequest) -> Recommendations:
        """``model``'s answer to ``request``, scored together with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((model, request, future))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())  # held: a task nobody references can be collected
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                groups: dict[int, tuple[Any, list]] = {}
                for model, request, future in batch:  # a reload can leave two models in one queue
                    groups.setdefault(id(model), (model, []))[1].append((request, future))
                for model, items in groups.values():
                    await self._score(model, items)
        finally:
            self._running = False

    async def _score(self, model, items: list[tuple[TopRequest, asyncio.Future]]) -> None:
        try:
            answers = await asyncio.to_thread(model.recommend_batch, [request for request, _ in items])
        except Exception:
            if len(items) == 1:  # its own error (an unknown item, a bad filter), as the handler would raise it
                request, future = items[0]
                try:
                    answers = await asyncio.to_thread(model.recommend_batch, [request])
                except Exception as exc:
                    future.set_exception(exc)
                    return
            else:  # one request's error must not fail the others: each alone
                for item in items:
                    await self._score(model, [item])
                return
        self.batches += 1
        self.requests += len(items)
        for (_, future), answer in zip(items, answers, strict=True):
            if not future.done():
                future.set_result(answer)
