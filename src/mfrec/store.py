"""Model files: one safetensors file, tensors plus a JSON header. No pickle, ever.

Layout of ``model.safetensors``:

* tensors ``module.<name>`` (the ``nn.Module`` state), ``seen_indptr``,
  ``seen_items`` and ``seen_ratings`` (CSR of what each user rated), and ``user_ids`` /
  ``item_ids`` when ids are integers;
* metadata key ``mfrec``: JSON with the format version, mfrec version, model
  kind, the full training config, rating scale, string ids (when ids are
  strings), item titles, dataset name, history, metrics, and the SHA-256 of
  the tensor payload, checked at load.

Loading parses JSON and raw tensor bytes only (``safetensors`` never unpickles).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mfrec._version import __version__
from mfrec.config import train_config_from_dict
from mfrec.data.idmap import IdMap
from mfrec.errors import MfrecError, ModelFileError, OutputError

if TYPE_CHECKING:
    from mfrec.estimator import MatrixFactorization

FORMAT = "mfrec-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"


def resolve_model_path(path: str | Path) -> Path:
    """Accept a model file or a run folder that holds ``model.safetensors``."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    return path


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_model(model: MatrixFactorization, path: str | Path, *, metrics: dict | None = None) -> Path:
    """Write ``model`` atomically (temporary file in the same folder, then rename)."""
    from dataclasses import asdict

    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in model.module_.state_dict().items()}
    tensors["seen_indptr"] = torch.from_numpy(np.ascontiguousarray(model.seen_indptr_))
    tensors["seen_items"] = torch.from_numpy(np.ascontiguousarray(model.seen_items_))
    tensors["seen_ratings"] = torch.from_numpy(np.ascontiguousarray(model.seen_ratings_))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mfrec_version": __version__,
        "kind": model.config.model,
        "config": asdict(model.config),
        "scale": list(model.scale_),
        "n_users": len(model.user_map_),
        "n_items": len(model.item_map_),
        "dataset": model.dataset_,
        "data_kind": model.data_kind_,
        "best_epoch": model.best_epoch_,
        "history": [_without_timing(r.to_dict()) for r in model.history_],
        "metrics": _without_timing(metrics if metrics is not None else getattr(model, "metrics_", {})),
    }
    for side, idmap in (("user", model.user_map_), ("item", model.item_map_)):
        if idmap.is_integer:
            tensors[f"{side}_ids"] = torch.from_numpy(idmap.ids.astype(np.int64))
        else:
            meta[f"{side}_ids"] = [str(x) for x in idmap.ids]
    if model.titles_ is not None:
        meta["titles"] = [None if t is None or t != t else str(t) for t in model.titles_]
    meta["sha256"] = _digest(tensors)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"mfrec": json.dumps(meta)})
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; a model file is meant to be shared
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write the model to {path}: {exc.strerror or exc}") from None
    return path


def _without_timing(values: dict) -> dict:
    """Drop wall-clock fields (``seconds``, ``*_seconds``) so one seed gives one byte-identical file."""
    return {k: v for k, v in values.items() if k != "seconds" and not k.endswith("_seconds")}


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a model file, validated for format and version."""
    from safetensors import safe_open

    path = resolve_model_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("mfrec")
    except Exception as exc:  # safetensors raises its own error type for bad headers
        raise ModelFileError(f"{path}: not a readable model file ({_short(exc)})") from None
    if raw is None:
        raise ModelFileError(f"{path}: a safetensors file, but not an mfrec model (no 'mfrec' metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: the model metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an mfrec model file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by mfrec {meta.get('mfrec_version', '?')} in model format {version}; "
            f"this mfrec ({__version__}) reads format {FORMAT_VERSION} and older: upgrade mfrec"
        )
    return meta


def load_model(path: str | Path) -> MatrixFactorization:
    """Read a model file written by :func:`save_model`, checking its hash and version."""
    from safetensors.torch import load_file

    from mfrec.estimator import MatrixFactorization

    path = resolve_model_path(path)
    meta = read_header(path)
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: tensor data unreadable, the file may be truncated ({_short(exc)})") from None
    if _digest(tensors) != meta.get("sha256"):
        raise ModelFileError(f"{path}: checksum mismatch; the file was modified or damaged after saving")
    try:
        config = train_config_from_dict(meta["config"])
        model = MatrixFactorization(config.replace(device="cpu"))
        module = model._build(int(meta["n_users"]), int(meta["n_items"]), None)
        state = {k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")}
        module.load_state_dict(state, strict=True)
        user_map = _idmap(tensors, meta, "user")
        item_map = _idmap(tensors, meta, "item")
        titles = np.array(meta["titles"], dtype=object) if meta.get("titles") is not None else None
        seen_items = tensors["seen_items"].numpy()
        # files written before seen ratings were stored: every seen item counts as rated 1
        seen_ratings = (
            tensors["seen_ratings"].numpy() if "seen_ratings" in tensors else np.ones(len(seen_items), np.float32)
        )
        seen = (tensors["seen_indptr"].numpy(), seen_items, seen_ratings)
        scale = (float(meta["scale"][0]), float(meta["scale"][1]))
    except MfrecError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: inconsistent model file ({_short(exc)})") from None
    model._restore(module, user_map, item_map, scale, titles, seen, meta)
    return model


def _idmap(tensors: dict[str, torch.Tensor], meta: dict, side: str) -> IdMap:
    if f"{side}_ids" in tensors:
        return IdMap(tensors[f"{side}_ids"].numpy(), side)
    return IdMap(np.array(meta[f"{side}_ids"], dtype=object), side)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] or type(exc).__name__
