"""``mfrec serve``: the HTTP API and the web page over a saved model, reloaded when it changes.

One process by default. With ``--workers N`` a supervisor binds the port, verifies the model
and copies it into a private folder that N worker processes memory-map (one copy of the model
in memory), computes the top-K table and what similar items read once for all of them to map,
and keeps them running; a new model reaches every worker through that folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import click

from mfrec.cli.options import FiniteFloat, LocalPath, StrictCommand, model_input, option_given

#: The variables that carry secrets to workers (never on a command line, which other local users can read).
ADMIN_ENV, DB_ENV = "MFREC_ADMIN_TOKEN", "MFREC_DB"


@click.command(cls=StrictCommand)
@model_input
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (loopback unless told)")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--threads", default=1, type=click.IntRange(1, 1024), show_default=True,
              help="torch threads per worker")  # fmt: skip
@click.option("--workers", default=1, type=click.IntRange(1, 64), show_default=True,
              help="server processes sharing the port and one memory-mapped copy of the model")  # fmt: skip
@click.option("--db", "db_url", default=None, metavar="URL", envvar=DB_ENV,
              help="where profiles keep their ratings: sqlite:///PATH or postgresql+psycopg://... "
                   f"(or ${DB_ENV}) [MODEL.profiles.sqlite beside the model]")  # fmt: skip
@click.option("--max-ratings", default=5000, type=click.IntRange(1, 10_000_000), show_default=True,
              help="the most ratings one profile may hold")  # fmt: skip
@click.option("--top-k", default=100, type=click.IntRange(0, 10_000), show_default=True,
              help="precompute each known user's top K when a model loads (0: score every request live)")  # fmt: skip
@click.option("--top-k-memory", default=256, type=click.IntRange(0, 1_000_000), show_default=True, metavar="MB",
              help="memory for the precomputed lists, per worker; the most active users first")  # fmt: skip
@click.option("--watch", "watch_interval", default=1.0, type=FiniteFloat(0, 3600), show_default=True,
              metavar="SECONDS", help="how often to look for a new model file (0: only on SIGHUP or the admin "
                                      "endpoint)")  # fmt: skip
@click.option("--admin-token", default=None, envvar=ADMIN_ENV, metavar="TOKEN",
              help=f"enable POST /v1/admin/reload for this bearer token (prefer ${ADMIN_ENV}: a command line "
                   "is visible to other local users)")  # fmt: skip
@click.option("--listen-fd", type=int, default=None, hidden=True)
@click.option("--original", type=LocalPath(), default=None, hidden=True)
def serve(model_path: Path, host: str, port: int, threads: int, workers: int, db_url: str | None,
          max_ratings: int, top_k: int, top_k_memory: int, watch_interval: float, admin_token: str | None,
          listen_fd: int | None, original: Path | None) -> None:  # fmt: skip
    """Serve MODEL over HTTP: the API under /v1 (OpenAPI at /docs) and a web page at /.

    A new model file (written in place of MODEL) is picked up while serving: when the file
    changes, on SIGHUP, or on POST /v1/admin/reload with --admin-token. It is verified first; a
    file that fails is refused and the old model keeps serving. Requests in flight finish on
    the model they started with.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise click.ClickException("serving needs the serve extra: pip install 'mfrec[serve]'") from None
    from mfrec.data.profiles import ProfileStore, database_url
    from mfrec.store import resolve_model_path

    if not host.strip():  # an empty address would listen on every interface
        raise click.BadParameter("give an address: 127.0.0.1 (this machine), or 0.0.0.0 for every interface",
                                 param_hint="--host")  # fmt: skip
    if db_url is not None:  # checked before the model is read: an option's error is not a model's
        from mfrec.data.profiles import DATABASES, check_database_url, is_memory_url

        if not db_url.strip():  # an unset variable, say: not the default database
            raise click.BadParameter(f"give a database URL ({DATABASES}), or leave --db out for a SQLite file "
                                     "beside the model", param_hint="--db")  # fmt: skip
        check_database_url(db_url)
        if is_memory_url(db_url):  # every worker its own, all gone at exit
            raise click.BadParameter("an in-memory database keeps no profile past a restart (and each worker "
                                     "would hold its own); give a file: sqlite:///profiles.sqlite",
                                     param_hint="--db")  # fmt: skip
    if listen_fd is None and top_k == 0 and option_given("top_k_memory"):
        raise click.UsageError("--top-k-memory does not apply to --top-k 0: no lists are precomputed; leave it out")
    if admin_token is not None and len(admin_token) < 16:
        raise click.BadParameter("the admin token needs at least 16 characters", param_hint="--admin-token")
    if admin_token is not None and any(c.isspace() or not c.isprintable() for c in admin_token):
        # a space, a newline (a file read into the variable) or a control byte: no Bearer header could match it
        raise click.BadParameter("the admin token must be printable, with no spaces or line breaks",
                                 param_hint="--admin-token")  # fmt: skip
    path = resolve_model_path(model_path)
    url = database_url(db_url, original or model_path)
    options = {"top_k": top_k, "top_memory": top_k_memory * 2**20, "admin_token": admin_token}
    if listen_fd is not None:  # a worker started by the supervisor below
        listener = socket.socket(fileno=listen_fd)
        _run_worker(path, original, listener, url, max_ratings, threads, watch_interval, options)
        return
    store = ProfileStore(url, max_ratings=max_ratings)  # creates or upgrades the schema once, before any worker
    where = store.engine.url.render_as_string(hide_password=True)
    listener = _bind(host, port)
    banner = (f"serving {path} on http://{host}:{port}/ (API docs at /docs) with {workers} worker(s); "
              f"profiles in {where}")  # fmt: skip
    if workers == 1:
        _run_worker(path, None, listener, url, max_ratings, threads, watch_interval, options, store=store,
                    banner=banner)  # fmt: skip
        return
    click.echo(banner, err=True)
    store.close()
    _supervise(path, listener, workers, url, admin_token, watch_interval, [
        "--threads", str(threads), "--max-ratings", str(max_ratings), "--top-k", str(top_k),
        "--top-k-memory", str(top_k_memory), "--watch", "0.5",  # workers always follow their private copy
    ], threads, top_k, options["top_memory"])  # fmt: skip


def _run_worker(path: Path, original: Path | None, listener: socket.socket, url: str, max_ratings: int,
                threads: int, watch_interval: float, options: dict, store=None, banner: str = "") -> None:  # fmt: skip
    """One server process: load ``path`` (memory-mapped when it is a supervisor's copy), serve, reload."""
    import torch
    import uvicorn

    from mfrec.data.profiles import ProfileStore
    from mfrec.serve import create_app
    from mfrec.serve.state import ModelSlot, publish, settle, write_table

    torch.set_num_threads(threads)
    supervisor = os.getppid() if original is not None else None
    republish = tables = None
    if original is not None:  # the supervisor's private folder holds the model copy and its top-K table
        tables = path.parent

        def republish() -> bool:
            table = partial(write_table, folder=tables, k=options["top_k"], max_bytes=options["top_memory"])
            return publish(original, path, before_swap=table)

    slot = ModelSlot.load(path, mmap=original is not None, publish=republish, tables=tables, **options)
    if banner:
        click.echo(banner, err=True)
    slot.precompute_later()
    if watch_interval > 0:
        slot.watch(watch_interval)
    if supervisor is not None:  # a worker whose supervisor died (kill -9) stops too
        threading.Thread(target=_follow, args=(supervisor,), daemon=True, name="mfrec-parent").start()
    hup = partial(slot.reload, "SIGHUP", publish=True)
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=hup, daemon=True).start())
    store = store or ProfileStore(url, max_ratings=max_ratings)
    app = create_app(slot, profiles=store)
    settle()  # the model, the app and the libraries stay out of the collector's full scans
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
    finally:
        slot.stop()


def _follow(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _supervise(path: Path, listener: socket.socket, workers: int, url: str, admin_token: str | None,
               watch_interval: float, worker_options: list[str], threads: int, top_k: int,
               top_memory: int) -> None:  # fmt: skip
    """Keep ``workers`` processes serving on ``listener`` from a private, verified copy of ``path``.

    The copy is refreshed (:func:`~mfrec.serve.state.publish`) when ``path`` changes or on
    SIGHUP; each worker notices its copy changed and reloads. The top-K table and the
    similar-items arrays are computed here, once, and published beside the copy (before it, on
    a reload) for every worker to map (:func:`~mfrec.serve.state.write_table`). A
    worker that dies is started again. SIGINT or SIGTERM stops the workers gracefully
    (in-flight requests finish).
    """
    import shutil
    import tempfile

    import torch

    from mfrec.errors import MfrecError
    from mfrec.serve.state import file_signature, publish, stderr_line, write_table

    torch.set_num_threads(threads)
    folder = Path(tempfile.mkdtemp(prefix="mfrec-serve-"))
    current = folder / "model.safetensors"
    table = partial(write_table, folder=folder, k=top_k, max_bytes=top_memory)
    try:
        publish(path, current)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    env = {**os.environ, DB_ENV: url, "PYTHONUNBUFFERED": "1"}
    env.pop(ADMIN_ENV, None)
    if admin_token:
        env[ADMIN_ENV] = admin_token
    command = [sys.executable, "-m", "mfrec.cli", "serve", str(current), "--listen-fd", str(listener.fileno()),
               "--original", str(path), *worker_options]  # fmt: skip

    def start() -> subprocess.Popen:  # its own session: a terminal's Ctrl-C reaches the supervisor only
        return subprocess.Popen(command, pass_fds=[listener.fileno()], env=env, start_new_session=True)

    def background(work) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except MfrecError as exc:
                stderr_line(f"new model refused, the workers keep the old one: {exc}")

        thread = threading.Thread(target=run, daemon=True, name="mfrec-publish")
        thread.start()
        return thread

    def republish() -> None:
        if publish(path, current, before_swap=table):
            stderr_line(f"published a new model from {path} to the workers")

    flags = {"hup": False, "stop": False}

    def on_signal(signum, _frame) -> None:
        flags["hup" if signum == signal.SIGHUP else "stop"] = True

    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    children = [start() for _ in range(workers)]
    started = [time.monotonic()] * workers
    early_exits = 0
    publishing = background(lambda: table(current))  # the first table, while the workers serve live
    seen, last_check = file_signature(path), time.monotonic()
    try:
        while not flags["stop"]:
            time.sleep(0.1)
            due = watch_interval > 0 and time.monotonic() - last_check >= watch_interval
            if (flags["hup"] or due) and not publishing.is_alive():  # one publication at a time
                last_check = time.monotonic()
                signature = file_signature(path)
                if flags["hup"] or (signature != seen and signature is not None):
                    flags["hup"], seen = False, signature
                    publishing = background(republish)
            for i, child in enumerate(children):
                if child.poll() is not None and not flags["stop"]:
                    early_exits += time.monotonic() - started[i] < 10
                    if early_exits > 2 * workers:
                        raise click.ClickException("the workers keep exiting at start; see the lines above")
                    stderr_line(f"worker {child.pid} exited ({child.returncode}); starting another")
                    children[i], started[i] = start(), time.monotonic()
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or one clear error (the port is taken, the address is not ours)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listener
