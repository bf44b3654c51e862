"""Options every model shares: where to train, the seed, threads and when to stop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from mfrec.options import Options, option

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainOptions(Options):
    """How any model is trained; the model's own hyperparameters live in its Config.

    Checkpoints, progress and per-epoch callbacks are arguments of
    :meth:`~mfrec.MatrixFactorization.fit` rather than fields here: these
    options are saved with the model as JSON, and a callback is not a value.
    """

    subject: ClassVar[str] = "training"

    device: str = option("auto", "where to train: auto (CUDA when available), cpu or cuda", choices=DEVICES)
    seed: int = option(42, "seed of the initialisation, the shuffling and the sampling", check="seed")
    threads: int = option(0, "CPU threads for every pool: torch, numba and BLAS (0 = their defaults)", check="threads")
    patience: int = option(
        3, "early-stopping patience: epochs without a better validation score (0 = train every epoch)", check="count"
    )
    target_rmse: float = option(0.0, "stop once the validation RMSE reaches this (rating models; 0 = off)",
                                check="nonneg")  # fmt: skip


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Bound torch's intra-op pool, numba's pool and the BLAS pools to ``threads`` (0: leave them alone).

    The previous sizes are restored afterwards, so a library caller's settings survive a fit.
    """
    if not threads:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    numba_before = None
    try:
        import numba

        numba_before = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        numba = None
    import scipy.linalg  # noqa: F401 - load scipy's BLAS now: threadpoolctl limits the libraries already loaded

    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
        if numba is not None and numba_before is not None:
            numba.set_num_threads(numba_before)
