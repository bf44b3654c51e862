"""Model files: one safetensors file, tensors plus a JSON header. No pickle, ever.

Layout of ``model.safetensors``:

* tensors ``module.<name>`` (the ``nn.Module`` state), ``seen_indptr``,
  ``seen_items`` and ``seen_ratings`` (CSR of what each user rated), and ``user_ids`` /
  ``item_ids`` when ids are integers;
* metadata key ``mfrec``: JSON with the format version, mfrec version, model
  kind, the full training config, rating scale, string ids (when ids are
  strings), item titles, genres and years, dataset name, history, metrics, and the SHA-256 of
  the tensors and of this JSON (all but the digest itself), checked at load.

Loading parses JSON and raw tensor bytes only (``safetensors`` never unpickles).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfrec._io import as_path, atomic_write, content_digest, finite, parse_json, verify_manifest
from mfrec._version import __version__
from mfrec.config import TrainConfig
from mfrec.data.idmap import IdMap
from mfrec.errors import MfrecError, ModelFileError
from mfrec.fitted import FittedState
from mfrec.training.trainer import EpochRecord

FORMAT = "mfrec-model"
#: 2: the config holds only the options of its model (format 1 held one flat set for every model)
FORMAT_VERSION = 2
MODEL_FILE = "model.safetensors"


def resolve_model_path(path: str | Path) -> Path:
    """Accept a model file or a run folder that holds ``model.safetensors``."""
    path = as_path(path, "the model path")
    if path.is_dir():
        verify_manifest(path, error=ModelFileError)  # every file of a run folder, when it lists them
        path = path / MODEL_FILE
    if not path.is_file():
        what = "not a regular file (a pipe or device): a model is read by parts, so give its file" if path.exists() \
            else "no such model file"  # fmt: skip
        raise ModelFileError(f"{path}: {what}")
    return path


def save_model(model, path: str | Path, *, metrics: dict | None = None) -> Path:
    """Write ``model`` (a fitted :class:`~mfrec.MatrixFactorization`) atomically, through its public state."""
    from safetensors.torch import save_file

    path = as_path(path, "the model path")
    state = model.state()
    tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in state.module.state_dict().items()}
    indptr, items, ratings = state.seen
    tensors["seen_indptr"] = torch.from_numpy(np.ascontiguousarray(indptr))
    tensors["seen_items"] = torch.from_numpy(np.ascontiguousarray(items))
    tensors["seen_ratings"] = torch.from_numpy(np.ascontiguousarray(ratings))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mfrec_version": __version__,
        "kind": model.kind,
        "config": model.config.to_dict(),
        "scale": list(state.scale),
        "n_users": len(state.user_map),
        "n_items": len(state.item_map),
        "dataset": state.dataset,
        "data_kind": state.data_kind,
        "best_epoch": state.best_epoch,
        "history": [_without_timing(r.to_dict()) for r in state.history],
        "metrics": finite(_without_timing(metrics if metrics is not None else state.metrics or {})),
    }
    for side, idmap in (("user", state.user_map), ("item", state.item_map)):
        if idmap.is_integer:
            tensors[f"{side}_ids"] = torch.from_numpy(idmap.ids.astype(np.int64))
        else:
            meta[f"{side}_ids"] = [str(x) for x in idmap.ids]
    if state.titles is not None:
        meta["titles"] = [None if t is None or t != t else str(t) for t in state.titles]
    if state.genres is not None:
        meta["genres"] = [None if g is None or g != g else str(g) for g in state.genres]
    if state.years is not None:
        meta["years"] = [None if y != y else int(y) for y in state.years]
    meta["sha256"] = content_digest(tensors, meta)  # tensors and header alike
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"mfrec": json.dumps(meta)}),
                        what="the model to")  # fmt: skip


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
    return _parse_meta(raw, path)


def _parse_meta(raw: str | None, path: Path) -> dict[str, Any]:
    if raw is None:
        raise ModelFileError(f"{path}: a safetensors file, but not an mfrec model (no 'mfrec' metadata)")
    try:
        meta = parse_json(raw)
    except ValueError:
        raise ModelFileError(f"{path}: the model metadata is not valid JSON") from None
    if json.dumps(meta) != raw:  # the digest covers the parsed value: a digit past a float's precision would hide
        raise ModelFileError(f"{path}: checksum mismatch; the model metadata was modified or damaged after saving")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an mfrec model file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by mfrec {meta.get('mfrec_version', '?')} in model format {version}; "
            f"this mfrec ({__version__}) reads format {FORMAT_VERSION} and older: upgrade mfrec"
        )
    return meta


#: Buffers a module gained after files were written without them; their default keeps the file's meaning.
LEGACY_BUFFERS = frozenset({"weight_scale", "confidence_offset"})


#: safetensors dtype names -> torch dtypes (what :func:`mapped_tensors` reads)
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}  # fmt: skip


def mapped_tensors(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The tensors of a safetensors file as views of one copy-on-write memory map, and its mfrec metadata.

    Processes that map the same file share its pages (the page cache) until one writes, so
    ``mfrec serve --workers N`` holds one copy of the model. Header and tensors come from one
    open file, so a file replaced meanwhile cannot mix two versions.
    """
    import mmap

    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < 8:
            raise ModelFileError(f"{path}: not a readable model file (only {size} bytes)")
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    try:
        length = int.from_bytes(mapping[:8], "little")
        if not 0 < length <= size - 8:
            raise ValueError(f"header length {length}")
        header = parse_json(bytes(mapping[8 : 8 + length]))
        start = 8 + length
        tensors = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype = _DTYPES[entry["dtype"]]
            first, last = (int(v) for v in entry["data_offsets"])
            shape = [int(v) for v in entry["shape"]]
            count = int(np.prod(shape, dtype=np.int64))
            if not 0 <= first <= last <= size - start or last - first != count * dtype.itemsize:
                raise ValueError(f"tensor {name} lies outside the file")
            flat = torch.frombuffer(mapping, dtype=dtype, count=count, offset=start + first) if count else \
                torch.empty(0, dtype=dtype)  # fmt: skip
            tensors[name] = flat.reshape(shape)
        meta = (header.get("__metadata__") or {}).get("mfrec")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a header that is not a JSON object, too
        raise ModelFileError(f"{path}: not a readable model file ({_short(exc)})") from None
    return tensors, meta


def read_model(path: str | Path, *, mmap: bool = False) -> tuple[TrainConfig, FittedState]:
    """The config and fitted state in a model file written by :func:`save_model`, hash and version checked.

    ``mmap``: the module's tensors stay views of a copy-on-write map of the file
    (:func:`mapped_tensors`) instead of being read into private memory.
    """
    from safetensors.torch import load_file

    path = resolve_model_path(path)
    if mmap:
        tensors, raw = mapped_tensors(path)
        meta = _parse_meta(raw, path)
    else:
        meta = read_header(path)
        try:
            tensors = load_file(str(path))
        except Exception as exc:
            raise ModelFileError(f"{path}: tensor data unreadable, the file may be truncated ({_short(exc)})") from None
    covered = meta if meta.get("format_version", 1) >= 2 else None  # format 1 hashed the tensors only
    if content_digest(tensors, covered) != meta.get("sha256"):
        raise ModelFileError(f"{path}: checksum mismatch; the file was modified or damaged after saving")
    try:
        config = TrainConfig.from_dict(meta["config"], saved=True).replace(device="cpu")
        module = config.spec.module.from_config(int(meta["n_users"]), int(meta["n_items"]), config.params)
        state = {k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")}
        for name, default in module.state_dict().items():
            if name in LEGACY_BUFFERS and name not in state:  # buffers newer than the file: their old meaning
                state[name] = default
            elif name in state and state[name].dtype != default.dtype:  # assign=True would keep the file's dtype
                raise ValueError(f"{name} is {state[name].dtype}, not {default.dtype}")
        module.load_state_dict(state, strict=True, assign=mmap)
        titles = np.array(meta["titles"], dtype=object) if meta.get("titles") is not None else None
        seen_items = tensors["seen_items"].numpy()
        # files written before seen ratings were stored: every seen item counts as rated 1
        seen_ratings = (
            tensors["seen_ratings"].numpy() if "seen_ratings" in tensors else np.ones(len(seen_items), np.float32)
        )
        fitted = FittedState(
            module, _idmap(tensors, meta, "user"), _idmap(tensors, meta, "item"),
            (float(meta["scale"][0]), float(meta["scale"][1])), titles,
            (tensors["seen_indptr"].numpy(), seen_items, seen_ratings), meta.get("dataset", ""),
            meta.get("data_kind", "explicit"),
            tuple(EpochRecord(**{"seconds": 0.0, **r}) for r in meta.get("history", [])),
            int(meta.get("best_epoch", 0)), meta.get("metrics") or {},
            np.array(meta["genres"], dtype=object) if meta.get("genres") is not None else None,
            np.array([np.nan if y is None else y for y in meta["years"]], dtype=np.float64)
            if meta.get("years") is not None else None,
            str(meta["sha256"]),
        )  # fmt: skip
    except MfrecError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise ModelFileError(f"{path}: inconsistent model file ({_short(exc)})") from None
    return config, fitted


def _idmap(tensors: dict[str, torch.Tensor], meta: dict, side: str) -> IdMap:
    if f"{side}_ids" in tensors:
        return IdMap(tensors[f"{side}_ids"].numpy(), side)
    return IdMap(np.array(meta[f"{side}_ids"], dtype=object), side)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] or type(exc).__name__
