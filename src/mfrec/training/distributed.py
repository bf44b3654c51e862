"""Data-parallel training with ``torch.distributed``: one process per rank, ratings sharded across ranks.

How a rating model is trained on ``W`` ranks (see :class:`mfrec.training.sgd.GradientTrainer`):

* every rank loads the data and makes the same split (a split is deterministic for its seed),
  then keeps every ``W``-th training and validation rating, starting at its rank;
* the model is wrapped in ``DistributedDataParallel``; an epoch has as many steps as one process
  would take (``ceil(n / batch_size)``), each rank's step works on its share of the global batch,
  and DDP averages the gradients, so every rank holds the same parameters after every step;
* factor tables may send sparse gradients (SGD, Adagrad), but bias tables are always dense under
  DDP: sparse one-column tables received wrong gradients (FINDINGS.md);
* the epoch's training error and the validation RMSE are all-reduced, so early stopping and the
  divergence check decide the same way on every rank;
* rank 0 alone evaluates and writes the run folder; other ranks write nothing.

Launch on one machine with ``mfrec train --nproc N`` (:func:`launch`, spawned processes meeting
through a file in a temporary folder), or on several machines with ``torchrun``, which sets
``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` for every process (:func:`init_from_env`). Backend: gloo
on CPU, NCCL on CUDA (one GPU per local rank).

When one rank fails, the others are stopped: :func:`launch` terminates them and raises
:class:`~mfrec.errors.DistributedError` naming the rank and its error; under torchrun the elastic
agent stops the other workers, and every rank prints its own one-line error.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mfrec.errors import ConfigError, DistributedError, MfrecError

#: How long a rank waits for the others to join or answer before giving up.
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Group:
    """This process's place among the ranks."""

    rank: int
    world_size: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> Group | None:
    """The process group this process belongs to, or ``None`` when training alone."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def is_main_process() -> bool:
    """True on rank 0, and when not distributed."""
    group = current()
    return group is None or group.is_main


def backend_for(device: str) -> str:
    """gloo for CPU training, NCCL for CUDA."""
    return "nccl" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "gloo"


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set ``WORLD_SIZE`` > 1 for this process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be a whole number, not {os.environ['WORLD_SIZE']!r}") from None


def init_from_env(device: str = "auto") -> Group | None:
    """Join the process group described by torchrun's environment (``env://``); ``None`` when alone."""
    import torch.distributed as dist

    if not launched_by_torchrun():
        return None
    if not dist.is_initialized():
        backend = backend_for(device)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        try:
            dist.init_process_group(backend, init_method="env://", timeout=TIMEOUT)
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(f"cannot join the process group: {_first_line(exc)}") from None
    return current()


def shutdown() -> None:
    """Leave the process group after success, all ranks together.

    A failing rank must not call this: waiting for peers that may be stuck would
    keep its launcher from learning that it failed.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # gloo aborts a rank whose peer closed its connections mid-teardown
        dist.destroy_process_group()


def shard(tensors: tuple[torch.Tensor, ...], group: Group) -> tuple[torch.Tensor, ...]:
    """Every ``world_size``-th row, starting at the rank (contiguous copies)."""
    return tuple(t[group.rank :: group.world_size].contiguous() for t in tensors)


def all_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """Sum 0-d float64 tensors over all ranks (one collective); unchanged when alone."""
    import torch.distributed as dist

    if current() is None:
        return list(values)
    packed = torch.stack([v.to(torch.float64) for v in values])
    dist.all_reduce(packed)
    return list(packed.unbind())


# ----------------------------------------------------------------- launching on one machine
def _worker(
    rank: int, world_size: int, backend: str, init_file: str, errors: str, fn: Callable, args: tuple
) -> None:
    """Body of one spawned rank: join the group, run ``fn(*args)``, report a failure in one line."""
    import torch.distributed as dist

    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size)})
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))  # ranks share the cores
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist.init_process_group(
            backend, init_method=f"file://{init_file}", rank=rank, world_size=world_size, timeout=TIMEOUT
        )
        fn(*args)
        dist.barrier()  # leave together: gloo aborts a rank whose peer closed its connections mid-teardown
    except BaseException as exc:
        message = str(exc) if isinstance(exc, MfrecError) else f"{type(exc).__name__}: {_first_line(exc)}"
        if not isinstance(exc, MfrecError | KeyboardInterrupt | SystemExit):
            message += "\n" + traceback.format_exc()
        Path(errors, f"rank{rank}").write_text(message)
        os._exit(1)  # skip the process group's teardown, which would wait for ranks that are gone
    # The rank's work is done and written. Its process ends here without the process group's teardown: even
    # after the barrier, gloo's threads could abort it ("terminate called without an active exception",
    # SIGABRT) when the peer closed its connections first, and the run was reported as failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def launch(fn: Callable[..., Any], args: tuple = (), nproc: int = 2, *, backend: str = "gloo") -> None:
    """Run ``fn(*args)`` on ``nproc`` spawned ranks of one process group and wait for all of them.

    ``fn`` must be importable by name (a module-level function), as spawned
    processes start fresh interpreters. When a rank fails, the others are
    terminated and :class:`DistributedError` names the first rank that failed
    and its one-line error.
    """
    import logging

    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, not {nproc}")
    with tempfile.TemporaryDirectory(prefix="mfrec-dist-") as folder:
        init_file = os.path.join(folder, "rendezvous")
        errors = os.path.join(folder, "errors")
        os.mkdir(errors)
        context = mp.start_processes(
            _worker, args=(nproc, backend, init_file, errors, fn, args), nprocs=nproc, join=False,
            start_method="spawn",
        )  # fmt: skip
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        level = spawn_log.level
        spawn_log.setLevel(logging.ERROR)  # our own message says the other ranks were stopped
        try:
            while not context.join():
                pass
        except ProcessException as exc:
            raise DistributedError(_failure(exc.error_index, context.processes, Path(errors))) from None
        except BaseException:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
            raise
        finally:
            spawn_log.setLevel(level)


def _failure(first: int, processes: list, errors: Path) -> str:
    """The one-line report of a failed launch, naming the rank that failed first.

    A rank that lost its peer (gloo: connection closed or reset) only reports the
    consequence, so its report counts last. In order: the earliest report of a rank's own
    error; else a rank that died without a report (killed; not the launcher's own
    SIGTERM); else the earliest report of any kind.
    """
    import signal

    reports = {}
    for path in errors.glob("rank*"):
        lines = path.read_text().splitlines() or ["(no message)"]
        reports[int(path.name[4:])] = (path.stat().st_mtime, lines[0])
    own = {rank: report for rank, report in reports.items() if not _lost_peer(report[1])}
    codes = {rank: process.exitcode for rank, process in enumerate(processes)}
    silent = [r for r, code in codes.items() if code not in (0, None, -signal.SIGTERM) and r not in reports]
    if own:
        rank = min(own, key=lambda r: own[r][0])
        detail = own[rank][1]
    elif silent:
        rank = first if first in silent else silent[0]
        code = codes[rank]
        how = signal.Signals(-code).name if code < 0 else f"exit code {code}"
        detail = f"the process died without a message ({how}: killed, or out of memory?)"
    elif reports:
        rank = min(reports, key=lambda r: reports[r][0])
        detail = reports[rank][1]
    else:
        rank, detail = first, f"the process exited with code {codes.get(first)}"
    return f"rank {rank} of {len(processes)} failed: {detail}; the other ranks were stopped"


def _lost_peer(message: str) -> bool:
    return "closed by peer" in message or "reset by peer" in message or "Connection refused" in message


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
