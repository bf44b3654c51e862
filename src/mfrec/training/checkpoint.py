"""Per-epoch training checkpoints, written atomically, so a killed run can resume exactly.

A checkpoint is one safetensors file: the module's state (``module.*``), the
trainer's own state (``trainer.*``: optimizer moments, generator states, a
sampler's running sums), the early-stopping best state (``best.*``), plus JSON
(epoch, history, the trainer's scalars, early-stopping counters) and the
SHA-256 of all of it, checked on restore. Restoring all of it makes the
resumed run draw the same random numbers and take the same steps, so it ends
with the same parameters as a run that was never interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mfrec._io import as_path, atomic_write, content_digest, exact_json
from mfrec.errors import ModelFileError
from mfrec.training.trainer import EarlyStopping, EpochRecord, Trainer


class Checkpoint:
    """Reads and writes the training state at ``path``."""

    def __init__(self, path: str | Path, engine: str | None = None) -> None:
        self.path = as_path(path, "checkpoint")
        self.engine = engine  # the engine that trains, recorded so a resume with another one is refused

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, epoch: int, trainer: Trainer, stopper: EarlyStopping, history: list[EpochRecord], *,
             finished: bool) -> None:  # fmt: skip
        """Write the state after ``epoch``; ``finished`` marks the last epoch (stopped early or at the end)."""
        from safetensors.torch import save_file

        tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in trainer.module.state_dict().items()}
        extra, scalars = trainer.state()
        tensors.update({f"trainer.{k}": v.detach().cpu().contiguous() for k, v in extra.items()})
        if stopper.best_state is not None:
            tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in stopper.best_state.items()})
        meta = {
            "epoch": epoch,
            "finished": finished,
            "history": [r.to_dict() for r in history],
            "trainer": scalars,
            "stopper": {"best_score": stopper.best_score, "best_epoch": stopper.best_epoch, "stale": stopper.stale},
            "engine": self.engine,
        }
        meta["sha256"] = content_digest(tensors, meta)
        atomic_write(self.path, lambda tmp: save_file(tensors, tmp, metadata={"mfrec.checkpoint": json.dumps(meta)}),
                     mode=0o600, what="the checkpoint")  # fmt: skip

    def restore(self, trainer: Trainer, stopper: EarlyStopping) -> tuple[int, list[EpochRecord], bool]:
        """Load the state into ``trainer`` and ``stopper``; returns ``(last epoch run, history, finished)``."""
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as handle:
                meta = exact_json(handle.metadata()["mfrec.checkpoint"])
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            if meta.get("sha256") != content_digest(tensors, meta):
                raise ValueError("checksum mismatch")
            written = meta.get("engine")
            if written and self.engine and written != self.engine:
                raise ModelFileError(
                    f"{self.path}: the run trained with the {written} engine, and here it would go on with the "
                    f"{self.engine} engine (engine auto picks by device); resume it on the kind of device it started on"
                )
            history = [EpochRecord(**r) for r in meta["history"]]
            device = next(iter(trainer.module.state_dict().values())).device
            trainer.module.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("module.")})
            trainer.load_state({k[8:]: v for k, v in tensors.items() if k.startswith("trainer.")}, meta["trainer"])
            best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
            stopper.best_state = best or None
            counters: dict[str, Any] = meta["stopper"]
            stopper.best_score = float(counters["best_score"])
            stopper.best_epoch = int(counters["best_epoch"])
            stopper.stale = int(counters["stale"])
            return int(meta["epoch"]), history, bool(meta["finished"])
        except ModelFileError:
            raise
        except Exception as exc:  # safetensors raises its own type; a damaged file can fail anywhere here
            raise ModelFileError(
                f"{self.path}: damaged checkpoint ({' '.join(str(exc).split())[:160] or type(exc).__name__}); "
                "start over with --overwrite"
            ) from None
