"""``mfrec serve``: the HTTP API and the web page over a saved model."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (loopback unless told)")
@click.option("--port", default=8000, type=int, show_default=True)
@click.option("--threads", default=1, type=int, show_default=True, help="torch threads per request")
def serve(model_path: Path, host: str, port: int, threads: int) -> None:
    """Serve MODEL over HTTP: the API under /v1 (OpenAPI at /docs) and a web page at /."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise click.ClickException("serving needs the serve extra: pip install 'mfrec[serve]'") from None
    import torch

    from mfrec.estimator import load_model
    from mfrec.serve import create_app

    torch.set_num_threads(max(1, threads))
    app = create_app(load_model(model_path))
    click.echo(f"serving {model_path} on http://{host}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
