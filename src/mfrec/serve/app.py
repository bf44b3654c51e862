"""The HTTP API and page over one loaded model, built by a factory (no module-level app or model).

Raw ids in and out; titles attached where the dataset has them. Every error is
JSON ``{"status": code, "message": "..."}``: unknown user or item 404, invalid
input 422 (FastAPI's ``detail`` list is kept beside the message), bodies over
``max_body_bytes`` 413. A client cannot cause a 500.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mfrec._version import __version__
from mfrec.errors import ConfigError, DataError, MfrecError, UnknownIdError

#: The page's icon: a five-pointed star in the page's accent colour (SVG, served as /favicon.ico).
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="#c2410c" '
           b'd="M12 2l2.9 6.6 7.1.6-5.4 4.7 1.6 7.1L12 17.3 5.8 21l1.6-7.1L2 9.2l7.1-.6z"/></svg>')
MAX_BODY_BYTES = 1_000_000
MAX_N = 1000
RawId = int | str


class Pair(BaseModel):
    user: RawId
    item: RawId


class PredictRequest(BaseModel):
    pairs: list[Pair] = Field(min_length=1, max_length=10_000)


class ItemRating(BaseModel):
    item: RawId
    rating: float


class NewUserRequest(BaseModel):
    ratings: list[ItemRating] = Field(min_length=1, max_length=10_000)
    n: int = Field(10, ge=1, le=MAX_N)
    genres: list[str] | None = Field(None, max_length=100, description="only items of any of these genres")
    years: str | None = Field(None, max_length=20, description="only items of these years: FIRST-LAST, FIRST-, -LAST")
    min_ratings: int | None = Field(None, ge=0, description="only items with at least this many ratings")
    explain: bool = Field(False, description="add the rated items that added most to each score")


class Filters:
    """The candidate filters of the GET endpoints, from the query string (a FastAPI dependency)."""

    def __init__(
        self,
        genre: list[str] | None = Query(None, max_length=100, description="only items of this genre (repeatable)"),
        years: str | None = Query(None, max_length=20, description="only items of these years: FIRST-LAST"),
        min_ratings: int | None = Query(None, ge=0, description="only items with at least this many ratings"),
    ) -> None:
        self.values = _filters(genre, years, min_ratings)


def _filters(genres: list[str] | None, years: str | None, min_ratings: int | None) -> dict[str, Any]:
    from mfrec.data.items import parse_year_range

    return {"genres": genres or None, "years": parse_year_range(years) if years else None, "min_ratings": min_ratings}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, **extra}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _error(413, f"request body over {self.limit:,} bytes")(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read the body up to the limit, then replay it.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                await _error(413, f"request body over {self.limit:,} bytes")(scope, receive, send)
                return
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _top(recs, score: str = "score") -> list[dict[str, Any]]:
    """The first row of a :class:`~mfrec.recommend.Recommendations` as JSON-ready dicts (padding dropped),
    each with ``because`` (rated items with their contribution and share) when explanations were asked for."""
    valid = np.isfinite(recs.scores[0])
    rows = [
        {"item": item, score: value, "title": title}
        for item, value, title in zip(
            recs.items[0][valid].tolist(), recs.scores[0][valid].tolist(), recs.titles[0][valid].tolist(), strict=True
        )
    ]
    if recs.because is not None:
        b = recs.because
        columns = (b.items[0][valid], b.titles[0][valid], b.contributions[0][valid], b.shares[0][valid])
        for row, items, titles, parts, shares in zip(rows, *columns, strict=True):
            row["because"] = [
                {"item": _plain(i), "title": t, "contribution": float(c), "share": float(sh)}
                for i, t, c, sh in zip(items, titles, parts, shares, strict=True) if i is not None
            ]
    return rows


def _items(frame: pd.DataFrame, score: str) -> list[dict[str, Any]]:
    return [
        {"item": _plain(item), score: float(value), "title": title}
        for item, value, title in zip(frame["item"], frame[score], frame["title"], strict=True)
    ]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def create_app(model, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """A FastAPI app serving ``model`` (a fitted or loaded :class:`~mfrec.MatrixFactorization`)."""
    from fastapi_offline import FastAPIOffline  # Swagger UI and ReDoc from local assets: /docs works offline

    app = FastAPIOffline(
        title="mfrec",
        version=__version__,
        description="Recommendations from a matrix-factorization model. Raw ids in and out.",
    )
    catalog = model.catalog()
    titles = catalog["title"].astype(object)
    searchable = titles.fillna("").str.lower()
    trained_items = np.flatnonzero(catalog["trained"].to_numpy())
    trained_users = model.trained_users()
    popularity = catalog["ratings"].to_numpy()  # ratings per item, for search order
    item_ids = catalog["item"].to_numpy()
    facts = model.info()

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, exc: UnknownIdError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(MfrecError)
    async def invalid(request: Request, exc: MfrecError) -> JSONResponse:
        status = 422 if isinstance(exc, ConfigError | DataError) else 500
        return _error(status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own errors (no route, wrong method, an unparsable body) in the same JSON shape
        response = _error(exc.status_code, str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid input')}" if where else "invalid input"
        return _error(422, message, detail=jsonable(errors))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    def model_info() -> dict[str, Any]:
        return {**jsonable(facts), "mfrec_version": __version__}

    user_names = pd.Series(trained_users, dtype=object).astype(str)

    @app.get("/v1/users")
    def users(
        offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=MAX_N),
        query: str | None = Query(None, max_length=200, description="only users whose id starts with this"),
    ) -> dict[str, Any]:
        found = trained_users
        if query:
            found = trained_users[user_names.str.startswith(query).to_numpy()]
        page = found[offset : offset + limit]
        return {"total": len(found), "offset": offset, "limit": limit, "users": [_plain(u) for u in page]}

    @app.get("/v1/users/{user_id}/recommendations")
    async def recommendations(
        user_id: str, n: int = Query(10, ge=1, le=MAX_N), exclude_seen: bool = True,
        explain: bool = Query(False, description="add the rated items that added most to each score"),
        filters: Filters = Depends(),
    ) -> dict[str, Any]:
        # async: about a millisecond of torch work, cheaper inline than a thread-pool hop
        user = model.user_id(user_id)
        recs = model.recommend(user, n, exclude_seen=exclude_seen, explain=explain, **filters.values)
        return {"user": _plain(user), "items": _top(recs)}

    @app.get("/v1/genres")
    def genres() -> dict[str, Any]:
        """The genre names the ``genre`` filter takes (empty when the model has no genre data)."""
        return {"genres": model.genres()}

    @app.get("/v1/users/{user_id}/ratings")
    def user_ratings(user_id: str, n: int = Query(10, ge=1, le=MAX_N)) -> dict[str, Any]:
        user = model.user_id(user_id)
        return {"user": _plain(user), "items": _items(model.user_ratings(user, n), "rating")}

    @app.get("/v1/items/{item_id}/similar")
    def similar(
        item_id: str, n: int = Query(10, ge=1, le=MAX_N), shrinkage: float = Query(20.0, ge=0, le=1e6),
        similar: Literal["factors", "cooccurrence"] = "factors", filters: Filters = Depends(),
    ) -> dict[str, Any]:
        item = model.item_id(item_id)
        recs = model.similar_items(item, n, shrinkage=shrinkage, similar=similar, **filters.values)
        return {"item": _plain(item), "title": model.title(item), "items": _top(recs, "similarity")}

    @app.get("/v1/items")
    def search(
        query: str = Query("", max_length=200),
        offset: int = Query(0, ge=0),
        limit: int = Query(20, ge=1, le=MAX_N),
    ) -> dict[str, Any]:
        """Items with training data whose title contains ``query`` (case-insensitive), most rated first."""
        needle = query.strip().lower()
        candidates = trained_items
        if needle:
            hits = searchable.iloc[trained_items].str.contains(needle, regex=False).to_numpy()
            candidates = trained_items[hits]
        counts = popularity
        ordered = candidates[np.argsort(-counts[candidates], kind="stable")]
        page = ordered[offset : offset + limit]
        return {
            "total": len(ordered),
            "offset": offset,
            "limit": limit,
            "items": [
                {"item": _plain(i), "title": t, "ratings": int(c)}
                for i, t, c in zip(item_ids[page], titles.iloc[page], counts[page], strict=True)
            ],
        }

    @app.post("/v1/predict")
    def predict(body: PredictRequest) -> dict[str, Any]:
        users = np.array([model.user_id(p.user) for p in body.pairs], dtype=object)
        items = np.array([model.item_id(p.item) for p in body.pairs], dtype=object)
        values = model.predict(users, items, unknown="error")
        return {
            "predictions": [
                {"user": _plain(u), "item": _plain(i), "rating": float(v)}
                for u, i, v in zip(users, items, values, strict=True)
            ]
        }

    @app.post("/v1/recommendations")
    def new_user(body: NewUserRequest) -> dict[str, Any]:
        ratings = {model.item_id(r.item): r.rating for r in body.ratings}
        chosen = _filters(body.genres, body.years, body.min_ratings)
        return {"items": _top(model.recommend_for_ratings(ratings, body.n, explain=body.explain, **chosen))}

    page = resources.files("mfrec.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


def jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars and arrays, NaN as None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
