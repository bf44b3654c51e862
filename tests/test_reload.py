"""Hot reload: a new model file is swapped in whole (file change, SIGHUP, admin endpoint), a damaged
one is refused while the old keeps serving, and no request fails across a swap, with real processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pytest

from mfrec import MatrixFactorization
from tests.conftest import low_rank_ratings

pytest.importorskip("fastapi")
ADMIN = "an-admin-token-of-some-length"


@pytest.fixture(autouse=True)
def _thawed():
    """A reload freezes what is alive out of the cyclic collector (serving's pauses); not for the test run."""
    import gc

    yield
    gc.unfreeze()


@pytest.fixture(scope="module")
def models():
    """Two models of the same data that recommend differently."""
    data = low_rank_ratings()
    first = MatrixFactorization.from_preset("default", epochs=5, device="cpu", seed=1).fit(data)
    second = MatrixFactorization.from_preset("default", epochs=8, device="cpu", seed=2).fit(data)
    return first, second


def _replace(model, path) -> None:
    """Write ``model`` beside ``path`` and rename it over ``path`` (what ``mfrec train`` does)."""
    tmp = path.with_name("incoming.safetensors")
    model.save(tmp)
    os.replace(tmp, path)


def _damage(path) -> None:
    """Replace ``path`` with a copy whose last tensor byte is flipped (the header, and its digest, unchanged)."""
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    tmp = path.with_name("damaged.safetensors")
    tmp.write_bytes(bytes(raw))
    os.replace(tmp, path)


def _digest(path) -> str:
    from mfrec.store import read_header

    return read_header(path)["sha256"]


# --------------------------------------------------------------------------- in one process
def test_a_reload_swaps_the_state_whole_and_a_damaged_file_is_refused(models, tmp_path):
    from mfrec.serve.state import ModelSlot

    first, second = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    slot = ModelSlot.load(path, top_k=5, log=lambda line: None)
    before = slot.state
    assert slot.reload("nothing new") == {"reloaded": False, "reason": "unchanged", "generation": 1,
                                          "sha256": before.digest}  # fmt: skip
    _replace(second, path)
    import gc

    gc.unfreeze()
    result = slot.reload("test")
    assert result["reloaded"] and result["generation"] == 2 and slot.state is not before
    assert gc.get_freeze_count() > 0  # the new model's objects are out of the full collections
    assert slot.state.digest == _digest(path) != before.digest
    assert slot.state.top is not None and slot.state.top.k == 5  # the new state came with its table
    # a request that took the old state finishes on it, unchanged
    assert before.model.recommend(100, 5).to_frame().equals(first.recommend(100, 5).to_frame())
    _damage(path)
    refused = slot.reload("damaged")
    assert not refused["reloaded"] and "checksum" in refused["reason"]
    assert slot.refused == 1 and slot.generation == 2 and slot.state.digest == result["sha256"]
    path.write_bytes(b"not a model")
    assert not slot.reload("garbage")["reloaded"] and slot.refused == 2
    path.unlink()
    assert not slot.reload("missing")["reloaded"] and slot.state.digest == result["sha256"]


def test_what_a_replaced_model_left_in_reference_cycles_is_freed_by_the_reload(models, tmp_path):
    import gc

    from mfrec.serve.state import ModelSlot

    first, second = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    slot = ModelSlot.load(path, top_k=0, log=lambda line: None)

    class Cyclic:  # garbage only the cyclic collector can free
        def __init__(self):
            self.me = self

    left = Cyclic()
    slot.state.leftover, gone = left, weakref.ref(left)
    del left
    gc.freeze()  # as serving froze the first model after loading it
    _replace(second, path)
    assert slot.reload("test")["reloaded"]
    assert gone() is None  # collected at the reload, not kept frozen for the life of the server
    assert gc.get_freeze_count() > 0


def test_the_watcher_reloads_when_the_file_changes(models, tmp_path):
    from mfrec.serve.state import ModelSlot

    first, second = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    slot = ModelSlot.load(path, log=lambda line: None)
    slot.watch(0.05)
    try:
        _replace(second, path)
        deadline = time.time() + 20
        while slot.generation < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert slot.generation == 2
        _damage(path)
        while slot.refused < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert slot.refused == 1 and slot.generation == 2  # tried once, not again until the file changes
        time.sleep(0.3)
        assert slot.refused == 1
    finally:
        slot.stop()


@pytest.mark.parametrize("kind", ["default", "implicit"])
def test_the_top_k_table_answers_what_recommend_does(kind):
    from mfrec.serve.state import ServingState

    data = low_rank_ratings()
    model = MatrixFactorization.from_preset(kind, epochs=4, device="cpu").fit(data)
    state = ServingState(model)
    state.precompute(12, 10**9)
    for user in model.trained_users()[:25]:
        for n in (1, 5, 12):
            rows = state.cached_top(model.user_map_.index_one(user), n)
            expected = model.recommend(user, n).to_frame()
            assert [r["item"] for r in rows] == expected["item"].tolist()
            assert np.allclose([r["score"] for r in rows], expected.iloc[:, -2].to_numpy(), atol=1e-5)
    assert state.cached_top(0, 13) is None  # longer lists are scored live


def test_the_table_keeps_to_its_memory_and_the_most_active_users(models):
    from mfrec.serve.state import TopTable

    model = models[0]
    n_users = len(model.user_map_)
    table = TopTable.compute(model, k=10, max_bytes=4 * n_users + 10 * 8 * 7)
    assert int((table.row >= 0).sum()) == 7 and table.nbytes <= 4 * n_users + 10 * 8 * 7
    activity = np.diff(model.seen_indptr_)
    assert activity[table.row >= 0].min() >= np.sort(activity)[-7]


def test_the_admin_endpoint_needs_its_token(models, tmp_path):
    from fastapi.testclient import TestClient

    from mfrec.serve import create_app
    from mfrec.serve.state import ModelSlot

    first, second = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    closed = TestClient(create_app(ModelSlot.load(path, log=lambda line: None)))
    assert closed.post("/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404
    slot = ModelSlot.load(path, admin_token=ADMIN, log=lambda line: None)
    client = TestClient(create_app(slot))
    missing = client.post("/v1/admin/reload")  # no credentials: 401 and how to send them, as for a profile
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    good = {"Authorization": f"Bearer {ADMIN}"}
    assert client.post("/v1/admin/reload", headers=good).json()["reason"] == "unchanged"
    _replace(second, path)
    answer = client.post("/v1/admin/reload", headers=good)
    assert answer.status_code == 200 and answer.json()["reloaded"] is True
    assert client.get("/v1/model").json()["serving"]["generation"] == 2
    user = second.trained_users()[0]
    served = client.get(f"/v1/users/{user}/recommendations", params={"n": 5}).json()["items"]
    assert [r["item"] for r in served] == second.recommend(user, 5).to_frame()["item"].tolist()
    _damage(path)
    refused = client.post("/v1/admin/reload", headers=good)
    assert refused.status_code == 409 and "checksum" in refused.json()["message"]
    assert client.get("/v1/model").json()["serving"]["generation"] == 2


def test_a_published_table_is_mapped_verified_and_tied_to_its_model(models, tmp_path):
    from mfrec.errors import ModelFileError
    from mfrec.serve.state import ServingState, TopTable, similar_path, table_path, write_table

    first, second = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    written = write_table(path, tmp_path, 7, 10**9)
    assert written == table_path(tmp_path, _digest(path))
    mapped = TopTable.load(written, _digest(path))
    fresh = ServingState(first)
    fresh.precompute(7, 10**9)
    for name in ("row", "items", "scores"):
        assert np.array_equal(getattr(mapped, name), getattr(fresh.top, name))
    with pytest.raises(ModelFileError, match="another model"):
        TopTable.load(written, "0" * 64)
    raw = bytearray(written.read_bytes())
    raw[-1] ^= 0xFF
    written.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="not an intact"):
        TopTable.load(written, _digest(path))
    _replace(second, path)
    again = write_table(path, tmp_path, 7, 10**9)
    assert again != written and not written.exists()  # the other model's table is gone
    assert [p.name for p in tmp_path.glob("similar-*")] == [similar_path(tmp_path, _digest(path)).name]


def test_workers_map_the_similar_items_arrays_their_supervisor_publishes(models, tmp_path):
    """A worker's slot (``tables``) maps the published arrays instead of building its own; a damaged
    file is said in one line and the worker builds them itself; the answers are the same."""
    from mfrec.errors import ModelFileError
    from mfrec.serve.state import SIMILAR_FORMAT, ModelSlot, load_arrays, similar_path, write_table

    first, _ = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    write_table(path, tmp_path, 0, 0)  # no top-K table: the similar-items file still
    published = similar_path(tmp_path, _digest(path))
    assert not list(tmp_path.glob("top-*")) and published.exists()
    with pytest.raises(ModelFileError, match="another model"):
        load_arrays(published, SIMILAR_FORMAT, "0" * 64, "similar-items file")
    items = first.item_map_.raw(np.arange(6))
    expected = first.similar_items(items, 5)
    for damaged in (False, True):
        if damaged:
            raw = bytearray(published.read_bytes())
            raw[-3] ^= 0xFF
            published.write_bytes(bytes(raw))
        lines: list[str] = []
        slot = ModelSlot.load(path, mmap=True, tables=tmp_path, log=lines.append)
        model = slot.state.model
        built = []
        model.prepare_similar = lambda m=model, b=built: b.append(1) or type(m).prepare_similar(m)
        slot.precompute_later().join(30)
        assert slot.state.similar_ready and bool(built) == damaged  # mapped, unless the file is damaged
        assert lines[-1].startswith("similar items ready (built)" if damaged else "similar items ready (mapped)")
        assert (len(lines) == 2) == damaged and (not damaged or "not used" in lines[0])
        found = model.similar_items(items, 5)
        assert np.array_equal(found.items, expected.items) and np.allclose(found.scores, expected.scores)


def test_the_digest_served_is_the_one_of_the_bytes_read_even_when_the_file_is_replaced_meanwhile(
        models, tmp_path, monkeypatch):  # fmt: skip
    """A file replaced between reading its header and its tensors must not tag one model with the
    other's digest (the top-K and similar-items files of a worker are matched by it)."""
    import mfrec.estimator
    from mfrec.errors import ModelFileError
    from mfrec.serve.state import ModelSlot, write_table

    first, second = models
    path, elsewhere = tmp_path / "model.safetensors", tmp_path / "other" / "model.safetensors"
    elsewhere.parent.mkdir()
    first.save(path)
    second.save(elsewhere)
    slot = ModelSlot.load(path)
    served = slot.state.digest
    assert served == _digest(path)
    real = mfrec.estimator.load_model
    monkeypatch.setattr(mfrec.estimator, "load_model", lambda _path, **kw: real(elsewhere, **kw))  # swapped mid-read
    _replace(first, path)  # the same model saved again: a new file, the same content
    assert slot.reload("test")["sha256"] == _digest(elsewhere) == slot.state.digest
    user = second.trained_users()[0]
    assert slot.state.model.recommend(user, 5).to_frame().equals(second.recommend(user, 5).to_frame())
    with pytest.raises(ModelFileError, match="replaced while"):
        write_table(path, tmp_path, 5, 10**9)
    assert not list(tmp_path.glob("similar-*")) and not list(tmp_path.glob("top-*"))


# --------------------------------------------------------------------------- real server processes
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``mfrec serve`` in a child process on loopback, its output collected line by line."""

    def __init__(self, path, tmp_path, *args: str) -> None:
        import httpx

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        env = {**os.environ, "MFREC_ADMIN_TOKEN": ADMIN}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mfrec.cli", "serve", str(path), "--port", str(self.port),
             "--db", f"sqlite:///{tmp_path / 'profiles.sqlite'}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
            if self.process.poll() is not None:
                break
        self.stop()
        pytest.fail("the server did not start: " + "\n".join(self.lines[-20:]))

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, count: int = 1, seconds: float = 30) -> list[str]:
        deadline = time.time() + seconds
        while time.time() < deadline:
            found = [line for line in list(self.lines) if re.search(pattern, line)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        pytest.fail(f"no {count} line(s) matching {pattern!r} in: " + "\n".join(self.lines[-20:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Load:
    """Clients asking for recommendations back to back, each on its own keep-alive connection."""

    def __init__(self, base: str, users, clients: int = 6) -> None:
        self.base, self.users = base, list(users)
        self.ok, self.failures = 0, []
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]
        for thread in self.threads:
            thread.start()

    def _run(self, seed: int) -> None:
        import httpx

        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.done.is_set():
                user = self.users[int(rng.integers(len(self.users)))]
                try:
                    answer = http.get(f"/v1/users/{user}/recommendations", params={"n": 5})
                    if answer.status_code == 200 and len(answer.json()["items"]) == 5:
                        self.ok += 1
                    else:
                        self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=60)


def _served(base: str) -> str:
    import httpx

    return httpx.get(base + "/v1/model", timeout=10).json()["serving"]["sha256"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_new_file_reaches_every_worker_under_load_and_no_request_fails(models, tmp_path, workers):
    first, second = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    original = path.read_bytes()
    server = Server(path, tmp_path, "--workers", str(workers), "--watch", "0.2", "--top-k", "20")
    load = Load(server.base, first.trained_users())
    try:
        how = "computed" if workers == 1 else "mapped"  # workers map the one table their supervisor computes
        server.wait_for(rf"top-20 table ready \({how}\)", count=workers)
        shared = "built" if workers == 1 else "mapped"  # and the similar-items arrays their supervisor builds
        server.wait_for(rf"similar items ready \({shared}\)", count=workers)
        time.sleep(0.5)
        _replace(second, path)
        new = _digest(path)[:12]
        server.wait_for(rf"reloaded .*now serving {new}", count=workers)  # every worker, each once
        time.sleep(0.5)
        _damage(path)
        server.wait_for(r"refused")
        time.sleep(1.0)
        path.write_bytes(original)  # in place, not renamed (as cp does): a half-written file is refused
        server.wait_for(rf"now serving {_digest(path)[:12]}", count=workers)
        time.sleep(0.5)
    finally:
        load.stop()
        server.stop()
    assert load.failures == [] and load.ok > 50
    assert len([line for line in server.lines if "now serving" in line]) == 2 * workers  # the damaged file never
    assert not [line for line in server.lines if "not used" in line or "Traceback" in line]


def test_sighup_and_the_admin_endpoint_reload_under_load(models, tmp_path):
    import httpx

    first, second = models
    path = tmp_path / "model.safetensors"
    first.save(path)
    server = Server(path, tmp_path, "--watch", "0", "--workers", "2")
    load = Load(server.base, first.trained_users())
    good = {"Authorization": f"Bearer {ADMIN}"}
    try:
        _replace(second, path)
        time.sleep(0.5)
        assert _served(server.base) != _digest(path)  # no watcher: nothing changes until told
        server.process.send_signal(signal.SIGHUP)
        server.wait_for(rf"now serving {_digest(path)[:12]}", count=2)
        assert _served(server.base) == _digest(path)
        _damage(path)
        answer = httpx.post(server.base + "/v1/admin/reload", headers=good, timeout=60)
        assert answer.status_code == 409 and "checksum" in answer.json()["message"]
        _replace(first, path)
        answer = httpx.post(server.base + "/v1/admin/reload", headers=good, timeout=60)
        assert answer.status_code == 200 and answer.json()["reloaded"] is True
        server.wait_for(rf"now serving {_digest(path)[:12]}", count=2)  # the other worker too
        assert httpx.post(server.base + "/v1/admin/reload", timeout=10).status_code == 401
    finally:
        load.stop()
        server.stop()
    assert load.failures == [] and load.ok > 50
    assert ADMIN not in "\n".join(server.lines)
