"""``mfrec serve``: the HTTP API and the web page over a saved model."""

from __future__ import annotations

import socket
from pathlib import Path

import click


@click.command()
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (loopback unless told)")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--threads", default=1, type=click.IntRange(1, 1024), show_default=True,
              help="torch threads per request")  # fmt: skip
@click.option("--db", "db_url", default=None, metavar="URL",
              help="where profiles keep their ratings: sqlite:///PATH or postgresql+psycopg://... "
                   "[MODEL.profiles.sqlite beside the model]")  # fmt: skip
@click.option("--max-ratings", default=5000, type=click.IntRange(1, 10_000_000), show_default=True,
              help="the most ratings one profile may hold")  # fmt: skip
def serve(model_path: Path, host: str, port: int, threads: int, db_url: str | None, max_ratings: int) -> None:
    """Serve MODEL over HTTP: the API under /v1 (OpenAPI at /docs) and a web page at /."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise click.ClickException("serving needs the serve extra: pip install 'mfrec[serve]'") from None
    import torch

    from mfrec.data.profiles import ProfileStore, database_url
    from mfrec.estimator import load_model
    from mfrec.serve import create_app

    torch.set_num_threads(threads)
    model = load_model(model_path)
    url = database_url(db_url, model_path)
    store = ProfileStore(url, max_ratings=max_ratings)
    app = create_app(model, profiles=store)
    listener = _bind(host, port)
    click.echo(f"serving {model_path} on http://{host}:{port}/ (API docs at /docs); "
               f"profiles in {store.engine.url.render_as_string(hide_password=True)}", err=True)  # fmt: skip
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


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
