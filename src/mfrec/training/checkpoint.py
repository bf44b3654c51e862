"""Per-epoch training checkpoints, written atomically, so a killed run can resume exactly.

A checkpoint is one safetensors file: the module's state, the optimizer's
tensors, the random generators' states, the early-stopping best state, plus JSON
(epoch, history, optimizer scalars, early-stopping counters). Restoring all of
it makes the resumed run draw the same permutations and take the same steps, so
it ends with the same parameters as a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mfrec.errors import ModelFileError, OutputError


class Checkpoint:
    """Reads and writes the training state at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(
        self,
        *,
        epoch: int,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        generators: dict[str, torch.Generator],
        stopper,
        history: list,
        finished: bool,
    ) -> None:
        """Write the state after ``epoch``; ``finished`` marks the last epoch (stopped early or at the end)."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        for key, value in module.state_dict().items():
            tensors[f"module.{key}"] = value.detach().cpu().contiguous()
        scalars: dict[str, Any] = {}
        groups = None
        if optimizer is not None:
            state = optimizer.state_dict()
            groups = state["param_groups"]
            for pid, entries in state["state"].items():
                for key, value in entries.items():
                    if isinstance(value, torch.Tensor):
                        tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
                    else:
                        scalars[f"{pid}.{key}"] = value
        for name, generator in generators.items():
            tensors[f"generator.{name}"] = generator.get_state().cpu()
        if stopper.best_state is not None:
            for key, value in stopper.best_state.items():
                tensors[f"best.{key}"] = value.detach().cpu().contiguous()
        meta = {
            "epoch": epoch,
            "finished": finished,
            "history": [r.to_dict() for r in history],
            "optimizer_groups": groups,
            "optimizer_scalars": scalars,
            "stopper": {"best_score": stopper.best_score, "best_epoch": stopper.best_epoch, "stale": stopper.stale},
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            os.close(fd)
            try:
                save_file(tensors, tmp, metadata={"mfrec.checkpoint": json.dumps(meta)})
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:
            raise OutputError(f"cannot write the checkpoint {self.path}: {exc.strerror or exc}") from None

    def exists(self) -> bool:
        return self.path.is_file()

    def restore(
        self,
        *,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        generators: dict[str, torch.Generator],
        stopper,
    ) -> tuple[int, list, bool]:
        """Load the state into the given objects; returns ``(last epoch run, history, finished)``."""
        from safetensors import safe_open

        from mfrec.training.loop import EpochRecord

        try:
            with safe_open(str(self.path), framework="pt") as handle:
                meta = json.loads(handle.metadata()["mfrec.checkpoint"])
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except Exception as exc:  # safetensors raises its own error type
            raise ModelFileError(f"{self.path}: unreadable checkpoint ({exc})") from None
        device = next(iter(module.state_dict().values())).device
        module.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("module.")})
        if optimizer is not None and meta["optimizer_groups"] is not None:
            state: dict[int, dict[str, Any]] = {}
            for key, value in tensors.items():
                if key.startswith("optimizer."):
                    _, pid, name = key.split(".", 2)
                    state.setdefault(int(pid), {})[name] = value.to(device) if name != "step" else value
            for key, value in meta["optimizer_scalars"].items():
                pid, name = key.split(".", 1)
                state.setdefault(int(pid), {})[name] = value
            optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer_groups"]})
        for name, generator in generators.items():
            generator.set_state(tensors[f"generator.{name}"])  # states are CPU byte tensors on every device
        best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
        stopper.best_state = best or None
        stopper.best_score = meta["stopper"]["best_score"]
        stopper.best_epoch = meta["stopper"]["best_epoch"]
        stopper.stale = meta["stopper"]["stale"]
        return meta["epoch"], [EpochRecord(**r) for r in meta["history"]], bool(meta.get("finished"))
