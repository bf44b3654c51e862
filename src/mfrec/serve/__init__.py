"""HTTP serving: a FastAPI app made by :func:`create_app`, and its web page.

Needs the ``serve`` extra: ``pip install "mfrec[serve]"`` (fastapi, uvicorn).
"""

from mfrec.serve.app import create_app

__all__ = ["create_app"]
