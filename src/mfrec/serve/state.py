"""What a server serves: one snapshot of a model and everything derived from it, swapped whole on reload.

A request takes :attr:`ModelSlot.state` once and works on that snapshot to the end, so a
request in flight during a reload finishes on the model it started with, and no request
sees half of two models.
"""

from __future__ import annotations

import hmac
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mfrec.errors import ConfigError, MfrecError

#: Default length of each precomputed list (requests for more are scored live).
TOP_K = 100
TABLE_FORMAT = "mfrec-top-k"
TABLE_TENSORS = {"row", "items", "scores"}
SIMILAR_FORMAT = "mfrec-similar-items"
#: Default memory for the precomputed lists, in bytes (8 bytes per entry: an int32 item and a float32 score).
TOP_MEMORY = 256 * 2**20


def save_arrays(path: Path, arrays: dict[str, np.ndarray], kind: str, model_digest: str, what: str) -> Path:
    """Write ``arrays`` atomically as one safetensors file for workers to map (:func:`load_arrays`),
    with its ``kind``, the digest of the model it was derived from, and the digest of its whole content."""
    import json

    import torch
    from safetensors.torch import save_file

    from mfrec._io import atomic_write, content_digest

    tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in arrays.items()}
    meta = {"format": kind, "model_sha256": model_digest}
    meta["sha256"] = content_digest(tensors, meta)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"mfrec": json.dumps(meta)}),
                 mode=0o600, what=what)  # fmt: skip
    return path


def load_arrays(path: Path, kind: str, model_digest: str, what: str,
                names: set[str] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """The arrays :func:`save_arrays` wrote at ``path``, memory-mapped (every process that maps the file
    shares its pages) and verified whole: :class:`~mfrec.errors.ModelFileError` when the file is
    damaged, of another kind, without exactly ``names`` (when given), or of another model."""
    from mfrec._io import content_digest, parse_json
    from mfrec.errors import ModelFileError
    from mfrec.store import mapped_tensors

    tensors, raw = mapped_tensors(path)
    try:
        meta = parse_json(raw or "null")
        ok = isinstance(meta, dict) and meta.get("format") == kind and (names is None or set(tensors) == names)
    except ValueError:
        ok = False
    if not ok or content_digest(tensors, meta) != meta.get("sha256"):
        raise ModelFileError(f"{path}: not an intact {what}")
    if meta.get("model_sha256") != model_digest:
        raise ModelFileError(f"{path}: a {what} of another model")
    return {name: tensor.numpy() for name, tensor in tensors.items()}


@dataclass(frozen=True, eq=False)
class TopTable:
    """Each cached user's ``k`` best unseen items, computed once by the model's own scoring path.

    ``row[u]`` is user index ``u``'s row in ``items``/``scores`` (``-1``: not cached). ``items``
    are item positions (int32), ``scores`` the unclipped scores (float32; ``-inf`` pads a user
    with fewer than ``k`` candidates). Exactly what :meth:`~mfrec.MatrixFactorization.recommend`
    returns for ``exclude_seen=True`` and no filters, before packaging.
    """

    row: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    @property
    def k(self) -> int:
        return self.items.shape[1]

    @property
    def nbytes(self) -> int:
        return self.row.nbytes + self.items.nbytes + self.scores.nbytes

    def lookup(self, user: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(positions, scores)`` of user index ``user``'s top ``n``, or None when not cached or ``n > k``."""
        at = int(self.row[user])
        if at < 0 or n > self.k:
            return None
        return self.items[at, :n], self.scores[at, :n]

    def save(self, path: Path, model_digest: str) -> Path:
        """Write the table atomically as safetensors, with the digest of the model it belongs to and
        of its own content (checked by :meth:`load`)."""
        arrays = {"row": self.row, "items": self.items, "scores": self.scores}
        return save_arrays(path, arrays, TABLE_FORMAT, model_digest, "top-K table")

    @classmethod
    def load(cls, path: Path, model_digest: str) -> TopTable:
        """The table at ``path``, memory-mapped (shared by every process that maps it), verified whole;
        :class:`~mfrec.errors.ModelFileError` when it is damaged or belongs to another model."""
        arrays = load_arrays(path, TABLE_FORMAT, model_digest, "top-K table", TABLE_TENSORS)
        return cls(arrays["row"], arrays["items"], arrays["scores"])

    @classmethod
    def compute(cls, model, k: int = TOP_K, max_bytes: int = TOP_MEMORY, chunk_size: int = 1024) -> TopTable:
        """The table for the most active trained users that fit in ``max_bytes`` (at ``k * 8`` bytes each)."""
        if k < 1 or max_bytes < 0:
            raise ConfigError(f"top-k table needs k >= 1 and memory >= 0, not k={k}, memory={max_bytes}")
        n_users = len(model.user_map_)
        width = min(k, len(model.item_map_))
        trained = model.user_indices(model.trained_users())
        activity = np.diff(model.seen_indptr_)[trained]
        fits = max(0, (max_bytes - 4 * n_users) // max(1, width * 8))
        chosen = np.sort(trained[np.argsort(-activity, kind="stable")[:fits]])
        items = np.empty((len(chosen), width), np.int32)
        scores = np.empty((len(chosen), width), np.float32)
        for start in range(0, len(chosen), chunk_size):
            part = chosen[start : start + chunk_size]
            positions, values = model.top_positions(part, width, chunk_size=chunk_size)
            items[start : start + len(part)] = positions
            scores[start : start + len(part)] = values
        row = np.full(n_users, -1, np.int32)
        row[chosen] = np.arange(len(chosen), dtype=np.int32)
        return cls(row, items, scores)


@dataclass(eq=False)
class ServingState:
    """A loaded model and the lookups the endpoints need, built once per model."""

    model: Any
    source: str = ""  # the file it came from ('' for a model handed over in memory)
    digest: str = ""  # the file's content digest, as its header records it
    loaded_at: float = field(default_factory=time.time)
    top: TopTable | None = None  # attached once computed; None means every request is scored live
    similar_ready: bool = False  # what similar items read is built or mapped (else the first request builds it)

    def __post_init__(self) -> None:
        model = self.model
        catalog = model.catalog()
        self.titles = catalog["title"].astype(object)
        self.title_array = self.titles.to_numpy()
        self.searchable = self.titles.fillna("").str.lower()
        self.trained_items = np.flatnonzero(catalog["trained"].to_numpy())
        self.trained_users = model.trained_users()
        self.user_names = pd.Series(self.trained_users, dtype=object).astype(str)
        self.popularity = catalog["ratings"].to_numpy()
        self.item_ids = catalog["item"].to_numpy()
        self.item_id_list = self.item_ids.tolist()  # plain Python ids for the JSON encoder
        self.facts = model.info()
        self.low, self.high = (float(v) for v in model.scale_)
        self.clip = bool(model.predicts_ratings)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.digest, "loaded_at": self.loaded_at, "pid": os.getpid(),
                "top_k": self.top.k if self.top is not None else 0,
                "top_k_users": int((self.top.row >= 0).sum()) if self.top is not None else 0}  # fmt: skip

    def cached_top(self, user: int, n: int) -> list[dict[str, Any]] | None:
        """User index ``user``'s top ``n`` (unseen, unfiltered) from the table, as the API's rows, or None."""
        top = self.top
        found = top.lookup(user, n) if top is not None else None
        if found is None:
            return None
        positions, scores = found
        valid = np.isfinite(scores)
        positions, scores = positions[valid], scores[valid].astype(np.float64)
        if self.clip:
            scores = np.clip(scores, self.low, self.high)
        ids, titles = self.item_id_list, self.title_array
        pairs = zip(positions.tolist(), scores.tolist(), strict=True)
        return [{"item": ids[p], "score": s, "title": titles[p]} for p, s in pairs]

    def precompute(self, k: int, max_bytes: int) -> None:
        """Attach the top-``k`` table (see :class:`TopTable`); with ``k == 0`` nothing is cached."""
        if k > 0:
            self.top = TopTable.compute(self.model, k, max_bytes)


def header_digest(path: Path) -> str:
    """The content digest a model file's header records (cheap: the header only)."""
    from mfrec.store import read_header

    return str(read_header(path).get("sha256", ""))


def table_path(folder: Path, digest: str) -> Path:
    """Where a supervisor publishes the top-K table of the model with ``digest``."""
    return folder / f"top-{digest[:32]}.safetensors"


def similar_path(folder: Path, digest: str) -> Path:
    """Where a supervisor publishes what similar items read for the model with ``digest``."""
    return folder / f"similar-{digest[:32]}.safetensors"


def write_table(model_path: Path, folder: Path, k: int, max_bytes: int) -> Path | None:
    """Compute once, and publish in ``folder`` for every worker to map, what the model file at
    ``model_path`` serves from: the arrays its similar items read
    (:meth:`~mfrec.MatrixFactorization.similar_arrays`; none for ``factors``), then its top-``k``
    table (none for ``k == 0``), replacing the files of other models. Returns the table's path.
    :class:`~mfrec.errors.ModelFileError` when the file is replaced meanwhile (nothing is tagged
    with a digest it does not have)."""
    from mfrec.errors import ModelFileError
    from mfrec.estimator import load_model

    digest = header_digest(model_path)

    def model():  # loaded for each part, so the arrays are freed before the table; never of another file
        loaded = load_model(model_path, mmap=True)
        if loaded.file_sha256_ != digest:
            raise ModelFileError(f"{model_path} was replaced while its tables were computed")
        return loaded

    target = table_path(folder, digest) if k > 0 else None
    similar = similar_path(folder, digest)
    if not similar.exists():
        save_arrays(similar, model().similar_arrays(), SIMILAR_FORMAT, digest, "similar-items file")
    if target is not None and not target.exists():
        TopTable.compute(model(), k, max_bytes).save(target, digest)
    for stale in [*folder.glob("top-*.safetensors"), *folder.glob("similar-*.safetensors")]:
        if stale not in (target, similar):  # a worker still mapping it keeps its pages until it lets go
            stale.unlink(missing_ok=True)
    return target


def publish(original: Path, current: Path, before_swap: Callable[[Path], object] | None = None) -> bool:
    """Copy the model file ``original`` to ``current`` for the workers, only once the copy verifies.

    The copy is checked in full (:func:`mfrec.store.read_model`) before it is renamed over
    ``current``, so a file caught mid-write, or damaged, never reaches a worker; that raises
    :class:`~mfrec.errors.ModelFileError`. Workers map ``current``, a private copy nobody
    rewrites in place, so a model file overwritten where it lies cannot pull pages from under
    them. Returns False when ``current`` already holds the same model.
    """
    import shutil

    from mfrec._io import atomic_write
    from mfrec.store import read_model

    serving = header_digest(current) if current.exists() else None

    def copy(tmp: Path) -> None:
        shutil.copyfile(original, tmp)
        read_model(tmp, mmap=True)  # the copy verified whole: a damaged file fails even with an intact header
        if header_digest(tmp) == serving:
            raise _Unchanged
        if before_swap is not None:  # e.g. the new model's top-K table, ready before any worker loads it
            before_swap(tmp)

    try:
        atomic_write(current, copy, mode=0o600, what="model copy")
    except _Unchanged:
        return False
    return True


class _Unchanged(Exception):
    """The verified copy is the model the workers already have (nothing to publish)."""


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten: inode, size, modification time (None: missing)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def settle(*, collect: bool = False) -> None:
    """Move every object alive now (a loaded model and its lookups: ~200,000 for a 25M-sized catalog)
    out of the cyclic garbage collector's reach (:func:`gc.freeze`). A full collection over them
    takes about 150 ms with the GIL held, a pause every request in flight would wait through;
    what is frozen is still freed by reference counting.

    ``collect`` (after a reload): thaw, collect once and freeze again, so that what the replaced
    model left in reference cycles is freed: one such pause per reload instead of memory kept
    for the life of the server."""
    import gc

    if collect:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def stderr_line(message: str) -> None:
    """One log line, written whole: ``print`` writes the text and its newline apart, so the lines of two
    workers could merge into one (``...now serving abcmfrec serve[12]: ...``)."""
    sys.stderr.write(f"mfrec serve[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


class ModelSlot:
    """The state being served and how to replace it: from the model file, whole, one reload at a time.

    A reload loads and verifies the file (:func:`mfrec.load_model`), builds the new state and its
    top-K table, and only then swaps the reference. A file that fails verification is refused
    with one logged line and the old model keeps serving. A file whose digest is the one being
    served is not reloaded.
    """

    def __init__(self, state: ServingState, *, path: Path | None = None, top_k: int = 0,
                 top_memory: int = TOP_MEMORY, mmap: bool = False, admin_token: str | None = None,
                 log: Callable[[str], None] = stderr_line, publish: Callable[[], object] | None = None,
                 tables: Path | None = None) -> None:  # fmt: skip
        self.state = state
        self.path = path
        self.top_k, self.top_memory, self.mmap = top_k, top_memory, mmap
        self.admin_token = admin_token
        self.log = log
        self.publish = publish  # a worker's admin reload first publishes the original file for all workers
        self.tables = tables  # where a supervisor publishes top-K tables: mapped, never computed here
        self.generation = 1
        self.refused = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seen = file_signature(path) if path is not None else None

    @classmethod
    def load(cls, path: Path, **options: Any) -> ModelSlot:
        """A slot serving the model file at ``path`` (its top-K table is left to :meth:`precompute_later`)."""
        from mfrec.estimator import load_model

        signature = file_signature(path)  # before reading: a change from here on is seen by the watcher
        model = load_model(path, mmap=options.get("mmap", False))
        slot = cls(ServingState(model, str(path), model.file_sha256_), path=path, **options)
        slot._seen = signature
        return slot

    def precompute_later(self) -> threading.Thread:
        """Give the served state its top-K table in a background thread; requests are scored live meanwhile.
        The same thread first prepares what similar items read (:meth:`~mfrec.MatrixFactorization.prepare_similar`).

        The table is computed here, or, in a worker (``tables``), mapped from the file the supervisor
        publishes once it appears.
        """
        state = self.state

        def work() -> None:
            started = time.perf_counter()
            try:
                how = self._prepare_similar(state, wait=True)  # what similar items read, before a request needs it
                if how:
                    self.log(f"similar items ready ({how}): {time.perf_counter() - started:.0f} s")
            except (MfrecError, MemoryError) as exc:  # then the first request builds it
                self.log(f"similar items not prepared: {exc}")
            if self.top_k <= 0:
                return
            try:
                if self.tables is None:
                    state.precompute(self.top_k, self.top_memory)
                elif self._published(table_path(self.tables, state.digest), state):
                    self._attach(state)  # once: a damaged table stays damaged until the next publication
                top = state.top
                if top is not None:
                    how = "computed" if self.tables is None else "mapped"
                    self.log(f"top-{top.k} table ready ({how}): {int((top.row >= 0).sum()):,} users, "
                             f"{top.nbytes / 2**20:.0f} MB, {time.perf_counter() - started:.0f} s")  # fmt: skip
            except MfrecError as exc:  # a table is an optimisation: without one, requests are scored live
                self.log(f"top-{self.top_k} table not built: {exc}")

        thread = threading.Thread(target=work, name="mfrec-top-k", daemon=True)
        thread.start()
        return thread

    def _prepare_similar(self, state: ServingState, *, wait: bool) -> str:
        """Give ``state``'s model what similar items read: in a worker (``tables``), mapped from the file its
        supervisor publishes (waiting for it with ``wait``), so that every worker shares one copy;
        otherwise, or when that file is missing or damaged, built here. Returns ``"mapped"``,
        ``"built"``, or ``""`` when it was ready already or is no longer needed."""
        if state.similar_ready:
            return ""
        if self.tables is not None:
            path = similar_path(self.tables, state.digest)
            if wait and not self._published(path, state):
                return ""  # stopped, or another state is served by now: nothing to prepare for this one
            if path.exists():
                try:
                    arrays = load_arrays(path, SIMILAR_FORMAT, state.digest, "similar-items file")
                    if arrays:  # none: the default similarity reads the model alone
                        state.model.use_similar_arrays(arrays)
                    state.similar_ready = True
                    return "mapped"
                except (MfrecError, OSError) as exc:
                    self.log(f"similar-items file {path} not used: {exc}")
        state.model.prepare_similar()
        state.similar_ready = True
        return "built"

    def _published(self, path: Path, state: ServingState) -> bool:
        """Wait until the supervisor has published ``path`` for ``state``; False when the slot stops or
        serves another state first."""
        while not path.exists():
            if self.state is not state or self._stop.wait(0.2):
                return False
        return True

    def _attach(self, state: ServingState) -> bool:
        """Map the published table of ``state``'s model, when it is there (a damaged one is skipped)."""
        path = table_path(self.tables, state.digest)
        if not path.exists():
            return False
        try:
            state.top = TopTable.load(path, state.digest)
        except (MfrecError, OSError) as exc:
            self.log(f"top-K table {path} not used: {exc}")
            return False
        return True

    def reload(self, reason: str, *, publish: bool = False) -> dict[str, Any]:
        """Load the file again and swap it in; ``{"reloaded": bool, ...}`` with why not when it was not.

        ``publish``: a worker first publishes its supervisor's original file (an admin request or a
        SIGHUP sent to the worker itself), so the other workers follow; a reload because the
        worker's copy changed does not.
        """
        if self.path is None:
            return {"reloaded": False, "reason": "this server was given a model in memory, not a file"}
        if publish and self.publish is not None:
            try:
                self.publish()
            except MfrecError as exc:
                return self._refuse(reason, exc)
        with self._lock:
            from mfrec.estimator import load_model

            signature = file_signature(self.path)
            try:
                started = time.perf_counter()
                model = load_model(self.path, mmap=self.mmap)  # verified whole, even when the digest is the same
                digest = model.file_sha256_  # of what was read: the file may be replaced while it is
                if digest == self.state.digest:
                    self._seen = signature
                    return {"reloaded": False, "reason": "unchanged", "generation": self.generation,
                            "sha256": digest}  # fmt: skip
                state = ServingState(model, str(self.path), digest)
                self._prepare_similar(state, wait=False)
                if self.tables is None:
                    state.precompute(self.top_k, self.top_memory)
                attached = self.tables is None or self.top_k <= 0 or self._attach(state)
            except MfrecError as exc:
                self._seen = signature  # not retried until the file changes again
                return self._refuse(reason, exc)
            self.state = state  # the swap: one reference assignment
            del state, model
            settle(collect=True)
            if not attached:
                self.precompute_later()  # published after the model (a first start): mapped once it appears
            self._seen = signature
            self.generation += 1
            self.last_error = None
            seconds = time.perf_counter() - started
            self.log(f"reloaded {self.path} ({reason}, {seconds:.1f} s): now serving {digest[:12]}")
            return {"reloaded": True, "generation": self.generation, "sha256": digest, "seconds": seconds}

    def _refuse(self, reason: str, exc: MfrecError) -> dict[str, Any]:
        """Count and log a refused reload; the model being served stays."""
        self.refused += 1
        self.last_error = str(exc)
        self.log(f"reload ({reason}) refused, still serving {self.state.digest[:12]}: {exc}")
        return {"reloaded": False, "reason": str(exc), "generation": self.generation, "sha256": self.state.digest}

    def check_admin(self, authorization: str | None) -> bool:
        """True when ``authorization`` is ``Bearer <the admin token>`` (constant-time comparison)."""
        if not self.admin_token or not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.admin_token.encode())

    def watch(self, interval: float = 1.0) -> threading.Thread | None:
        """Reload whenever the file's inode, size or modification time changes (polled every ``interval`` s)."""
        if self.path is None:
            return None

        def poll() -> None:
            while not self._stop.wait(interval):
                if file_signature(self.path) not in (self._seen, None):
                    self.reload("file changed")

        thread = threading.Thread(target=poll, name="mfrec-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
