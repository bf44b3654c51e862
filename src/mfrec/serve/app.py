"""The HTTP API and page over one loaded model, built by a factory (no module-level app or model).

Raw ids in and out; titles attached where the dataset has them. Every error is
JSON ``{"status": code, "message": "..."}``: unknown user or item 404, invalid
input 422 (FastAPI's ``detail`` list is kept beside the message), bodies over
``max_body_bytes`` 413. A client cannot cause a 500.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mfrec._repr import listed
from mfrec._version import __version__
from mfrec.data.profiles import Profile, ProfileError, ProfileFull, ProfileNotFound, stored_number
from mfrec.errors import ConfigError, DataError, MfrecError, UnknownIdError
from mfrec.options import SIMILARITIES
from mfrec.recommend import TopRequest
from mfrec.serve.batching import MicroBatcher
from mfrec.serve.state import TOP_MEMORY, ModelSlot, ServingState

#: The page's icon: a five-pointed star in the page's accent colour (SVG, served as /favicon.ico).
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="#c2410c" '
           b'd="M12 2l2.9 6.6 7.1.6-5.4 4.7 1.6 7.1L12 17.3 5.8 21l1.6-7.1L2 9.2l7.1-.6z"/></svg>')
MAX_BODY_BYTES = 1_000_000
MAX_N = 1000
RawId = int | str


class Body(BaseModel):
    """A request body, read strictly: ``true`` is not user 1, ``"4"`` is not a rating, 1.5 is not an id, and a
    field the endpoint does not take (``"genre"`` for ``"genres"``) is refused by name."""

    model_config = ConfigDict(strict=True, extra="forbid")  # a misspelt field is an error, not ignored


class Pair(Body):
    user: RawId
    item: RawId


class PredictRequest(Body):
    pairs: list[Pair] = Field(min_length=1, max_length=10_000)


class ItemRating(Body):
    item: RawId
    rating: float = Field(allow_inf_nan=False)


class NewUserRequest(Body):
    ratings: list[ItemRating] = Field(min_length=1, max_length=10_000)
    n: int = Field(10, ge=1, le=MAX_N)
    genres: list[str] | None = Field(None, max_length=100, description="only items of any of these genres")
    years: str | None = Field(None, max_length=20, description="only items of these years: FIRST-LAST, FIRST-, -LAST")
    min_ratings: int | None = Field(None, ge=0, description="only items with at least this many ratings")
    explain: bool = Field(False, description="add the rated items that added most to each score")


class RatingBody(Body):
    rating: float = Field(allow_inf_nan=False)


#: The page's profile cookie: ``<profile id>:<token>``, HttpOnly, same-site only.
PROFILE_COOKIE = "mfrec_profile"


class Filters:
    """The candidate filters of the GET endpoints, from the query string (a FastAPI dependency)."""

    def __init__(
        self,
        genre: list[str] | None = Query(None, max_length=100, description="only items of this genre (repeatable)"),
        years: str | None = Query(None, max_length=20, description="only items of these years: FIRST-LAST"),
        min_ratings: int | None = Query(None, ge=0, description="only items with at least this many ratings"),
    ) -> None:
        self.values = _filters(genre, years, min_ratings)
        self.active = any(value is not None for value in self.values.values())


def _filters(genres: list[str] | None, years: str | None, min_ratings: int | None) -> dict[str, Any]:
    from mfrec.data.items import parse_year_range

    return {"genres": genres or None, "years": parse_year_range(years) if years else None, "min_ratings": min_ratings}


class FastJSON(Response):
    """JSON encoded by orjson (numpy arrays and scalars included; NaN and infinities become null)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        import orjson

        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _query_names(dependant) -> dict[str, bool]:
    """The query parameters an endpoint takes, its dependencies' included (``Filters``): name -> whether it is a
    list (``genre``), which a query string may repeat."""
    names = {param.alias: _is_list(param.field_info.annotation) for param in dependant.query_params}
    for sub in dependant.dependencies:
        names.update(_query_names(sub))
    return names


def _is_list(annotation: Any) -> bool:
    """Whether a parameter annotated ``annotation`` holds several values (``list[str] | None`` does)."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return (origin or annotation) in (list, tuple, set, frozenset)


async def known_query(request: Request) -> None:
    """Every endpoint's dependency: a query parameter it does not take (``q`` for ``query``, ``genres`` for
    ``genre``) is a 422 naming it and the ones it takes, not a filter silently left out."""
    route = request.scope.get("route")
    if route is None or not request.query_params or not request.url.path.startswith("/v1/"):
        return  # the page and its icon take what a browser adds (?utm_source=...)
    taken = _query_names(route.dependant)  # a walk over a handful of parameters: microseconds
    unknown = sorted(set(request.query_params) - set(taken))
    if unknown:
        names = listed((repr(name[:40]) for name in unknown), 5)
        offered = f"it takes {', '.join(sorted(taken))}" if taken else "it takes none"
        raise ConfigError(f"unknown query parameter(s) {names} for {request.url.path[:100]}; {offered}")
    for name in sorted(set(request.query_params)):  # one value of two would be used without a word
        count = len(request.query_params.getlist(name))
        if count > 1 and not taken[name]:
            raise ConfigError(f"query parameter {name!r} given {count} times; give it once")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members, refusing a key given twice (``json`` would keep the last without a word)."""
    import json

    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise json.JSONDecodeError(f"key {twice[:40]!r} given twice in one object; give it once", "", 0)
    return obj


class _StrictJSONRequest(Request):
    """A request whose JSON body refuses repeated keys (see :func:`_unique_keys`) and nesting too deep to parse,
    each a 422 that says so."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            import json

            body = await self.body()
            try:
                self._json = json.loads(body, object_pairs_hook=_unique_keys)
            except RecursionError:  # FastAPI answers any error but a JSONDecodeError with a bare 400
                raise json.JSONDecodeError("nested deeper than Python's JSON parser goes", "", 0) from None
        return self._json


class _StrictJSONRoute(APIRoute):
    """Every route reads its body through :class:`_StrictJSONRequest` (FastAPI's custom route class)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict


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


def _unit(model) -> str:
    """What a list's ``score`` is: ``stars`` (a rating model's predicted rating, clipped to the scale) or ``score``
    (a ranking model's: only the order means something), as :attr:`~mfrec.recommend.Recommendations.unit`."""
    return "stars" if model.predicts_ratings else "score"


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


def create_app(model, *, profiles=None, max_body_bytes: int = MAX_BODY_BYTES, top_k: int = 0,
               top_memory: int = TOP_MEMORY) -> FastAPI:  # fmt: skip
    """A FastAPI app serving ``model``: a fitted or loaded :class:`~mfrec.MatrixFactorization`, or a
    :class:`~mfrec.serve.state.ModelSlot` (a model file that can be reloaded while serving).

    ``profiles`` (a :class:`~mfrec.data.profiles.ProfileStore`) keeps what people rate; without
    it the profile endpoints answer 404. ``top_k``: for a model given in memory, precompute each
    user's top ``top_k`` in at most ``top_memory`` bytes (:class:`~mfrec.serve.state.TopTable`).
    """
    from fastapi_offline import FastAPIOffline  # Swagger UI and ReDoc from local assets: /docs works offline

    if isinstance(model, ModelSlot):
        slot = model
    else:
        slot = ModelSlot(ServingState(model))
        slot.state.precompute(top_k, top_memory)
    app = FastAPIOffline(
        title="mfrec",
        version=__version__,
        description="Recommendations from a matrix-factorization model. Raw ids in and out.",
        dependencies=[Depends(known_query)],
    )
    app.router.route_class = _StrictJSONRoute  # before any route is added
    app.state.slot = slot
    batcher = app.state.batcher = MicroBatcher()

    @app.exception_handler(ProfileNotFound)
    async def no_profile(request: Request, exc: ProfileNotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ProfileError)
    async def profile_error(request: Request, exc: ProfileError) -> JSONResponse:
        return _error(409 if isinstance(exc, ProfileFull) else 503, str(exc))

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
        if first.get("type") == "json_invalid":  # the parser's reason, and where, not "JSON decode error"
            at = first.get("loc", ("body", 0))[-1]
            where = f" (at character {at})" if isinstance(at, int) and at > 0 else ""
            return _error(422, f"body: {first.get('ctx', {}).get('error', 'not JSON')}{where}", detail=jsonable(errors))
        where = ".".join(str(part) for part in first.get("loc", ()))
        extra = first.get("type") == "extra_forbidden"
        text = "not a field this request takes (misspelt?)" if extra else first.get("msg", "invalid input")
        message = f"{where}: {text}" if where else "invalid input"
        return _error(422, message, detail=jsonable(errors))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    def model_info() -> dict[str, Any]:
        """Facts about the served model, and which file (by digest) and reload generation serves them."""
        state = slot.state
        serving = {**state.describe(), "generation": slot.generation, "refused_reloads": slot.refused,
                   "batched_requests": batcher.requests, "batches": batcher.batches,
                   "profiles": profiles is not None}  # fmt: skip
        return {**jsonable(state.facts), "mfrec_version": __version__, "serving": jsonable(serving)}

    @app.post("/v1/admin/reload", include_in_schema=False)
    def admin_reload(authorization: str | None = Header(None)) -> dict[str, Any]:
        """Reload the model file now (only with ``--admin-token``; 404 otherwise; 401 without a token, as for a
        profile, and 403 for a wrong one). A file that fails verification is refused (409) and the old model
        keeps serving."""
        if not slot.admin_token:
            raise StarletteHTTPException(404, "Not Found")
        if authorization is None:
            raise StarletteHTTPException(401, "reloading needs the admin token: Authorization: Bearer <token>",
                                         headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        if not slot.check_admin(authorization):
            raise StarletteHTTPException(403, "reloading needs the admin token: Authorization: Bearer <token>")
        result = slot.reload("admin request", publish=True)
        if not result["reloaded"] and result["reason"] != "unchanged":
            return FastJSON({"status": 409, "message": f"model refused: {result['reason']}", **result},
                                  status_code=409)  # fmt: skip
        return result

    @app.get("/v1/users")
    def users(
        offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=MAX_N),
        query: str | None = Query(None, max_length=200, description="only users whose id starts with this"),
    ) -> dict[str, Any]:
        state = slot.state
        found = state.trained_users
        if query:
            found = found[state.user_names.str.startswith(query).to_numpy()]
        page = found[offset : offset + limit]
        return {"total": len(found), "offset": offset, "limit": limit, "users": [_plain(u) for u in page]}

    @app.get("/v1/users/{user_id}/recommendations", response_model=None)
    async def recommendations(
        user_id: str, n: int = Query(10, ge=1, le=MAX_N), exclude_seen: bool = True,
        explain: bool = Query(False, description="add the rated items that added most to each score"),
        filters: Filters = Depends(),
    ) -> Response:
        # async: a table lookup, or about a millisecond of torch work, cheaper inline than a thread-pool hop
        state = slot.state
        model = state.model
        user = model.user_id(user_id)
        if exclude_seen and not explain and not filters.active:
            rows = state.cached_top(model.user_map_.index_one(user), n)
            if rows is not None:
                return FastJSON({"user": _plain(user), "unit": _unit(model), "items": rows})
        if explain:
            recs = model.recommend(user, n, exclude_seen=exclude_seen, explain=explain, **filters.values)
        else:
            recs = await batcher.recommend(model, TopRequest(user=user, n=n, exclude_seen=exclude_seen,
                                                             **filters.values))  # fmt: skip
        return FastJSON({"user": _plain(user), "unit": recs.unit, "items": _top(recs)})

    @app.get("/v1/genres")
    def genres() -> dict[str, Any]:
        """The genre names the ``genre`` filter takes (empty when the model has no genre data)."""
        return {"genres": slot.state.model.genres()}

    @app.get("/v1/users/{user_id}/ratings")
    def user_ratings(user_id: str, n: int = Query(10, ge=1, le=MAX_N)) -> dict[str, Any]:
        model = slot.state.model
        user = model.user_id(user_id)
        return {"user": _plain(user), "items": _items(model.user_ratings(user, n), "rating")}

    @app.get("/v1/items/{item_id}/similar")
    def similar(
        item_id: str,
        n: int = Query(10, ge=1, le=MAX_N),
        shrinkage: float = Query(20.0, ge=0, le=1e6, allow_inf_nan=False),
        similar: Literal[SIMILARITIES] = SIMILARITIES[0],  # type: ignore[valid-type]
        filters: Filters = Depends(),
    ) -> dict[str, Any]:
        model = slot.state.model
        item = model.item_id(item_id)
        recs = model.similar_items(item, n, shrinkage=shrinkage, similar=similar, **filters.values)
        return {"item": _plain(item), "title": model.title(item), "unit": recs.unit, "items": _top(recs, "similarity")}

    @app.get("/v1/items")
    def search(
        query: str = Query("", max_length=200),
        offset: int = Query(0, ge=0),
        limit: int = Query(20, ge=1, le=MAX_N),
    ) -> dict[str, Any]:
        """Items with training data whose title contains ``query`` (case-insensitive), most rated first."""
        state = slot.state
        needle = query.strip().lower()
        candidates = state.trained_items
        if needle:
            hits = state.searchable.iloc[candidates].str.contains(needle, regex=False).to_numpy()
            candidates = candidates[hits]
        counts = state.popularity
        ordered = candidates[np.argsort(-counts[candidates], kind="stable")]
        page = ordered[offset : offset + limit]
        return {
            "total": len(ordered),
            "offset": offset,
            "limit": limit,
            "items": [
                {"item": _plain(i), "title": t, "ratings": int(c)}
                for i, t, c in zip(state.item_ids[page], state.titles.iloc[page], counts[page], strict=True)
            ],
        }

    @app.post("/v1/predict")
    def predict(body: PredictRequest) -> dict[str, Any]:
        model = slot.state.model
        users = np.array([model.user_id(p.user) for p in body.pairs], dtype=object)
        items = np.array([model.item_id(p.item) for p in body.pairs], dtype=object)
        values = model.predict(users, items, unknown="error")
        return {
            "predictions": [
                {"user": _plain(u), "item": _plain(i), "rating": float(v)}
                for u, i, v in zip(users, items, values, strict=True)
            ]
        }

    @app.post("/v1/recommendations", response_model=None)
    async def new_user(body: NewUserRequest) -> Response:
        model = slot.state.model
        ratings = [(model.item_id(r.item), r.rating) for r in body.ratings]  # a repeated item is refused
        chosen = _filters(body.genres, body.years, body.min_ratings)
        if body.explain:
            recs = await asyncio.to_thread(model.recommend_for_ratings, ratings, body.n, explain=True, **chosen)
        else:
            recs = await batcher.recommend(model, TopRequest(ratings=ratings, n=body.n, **chosen))
        return FastJSON({"unit": recs.unit, "items": _top(recs)})

    _profile_routes(app, slot, profiles)
    page = resources.files("mfrec.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


def _profile_routes(app: FastAPI, slot: ModelSlot, store) -> None:
    """Profiles: create one, then add, change, remove and list its ratings and get its recommendations.

    A client proves a profile with ``Authorization: Bearer <token>`` or the page's HttpOnly
    cookie. No token: 401. A token that is not this profile's: 404, as for a profile that
    does not exist, so ids cannot be probed.
    """

    def stored() -> Any:
        if store is None:  # not a server fault: this app was made without a store
            raise ProfileNotFound("this server keeps no profiles: start it with --db (SQLite or PostgreSQL)")
        return store

    def cookie_parts(request: Request) -> tuple[str, str] | None:
        value = request.cookies.get(PROFILE_COOKIE, "")
        profile_id, sep, token = value.partition(":")
        return (profile_id, token) if sep and profile_id and token else None

    def owner(profile_id: str, request: Request, authorization: str | None = Header(None)) -> Profile:
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if token is None and (cookie := cookie_parts(request)) and cookie[0] == profile_id:
            token = cookie[1]
        if token is None:
            raise StarletteHTTPException(401, "this profile needs its token: Authorization: Bearer <token>",
                                         headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return stored().authenticate(profile_id, token)

    def rated(model, profile: Profile) -> dict[Any, float]:
        """The profile's ratings this model can take. Left out, with a logged line, and kept in the store: an item
        the model does not know or a rating off its scale (a model swapped since), and a stored value that is not
        a finite number (a row edited by hand). None of these is the client's error."""
        state = slot.state
        ratings, skipped = {}, []
        for item, value in stored().ratings_of(profile):
            try:
                key = model.item_id(item)
                model.item_map_.index_one(key)
            except UnknownIdError:
                skipped.append(f"item {str(item)[:40]!r} unknown to the model")
                continue
            stars = stored_number(value)
            if stars is None or not state.low <= stars <= state.high:
                why = "not a finite number" if stars is None else f"off the {state.low:g}-{state.high:g} scale"
                skipped.append(f"item {str(item)[:40]!r} rated {str(value)[:40]!r}, {why}")
                continue
            ratings[key] = stars
        if skipped:
            slot.log(f"profile {profile.id}: {len(skipped)} stored rating(s) left out ({'; '.join(skipped[:3])})")
        return ratings

    @app.post("/v1/profiles", status_code=201)
    def create_profile(response: Response) -> dict[str, Any]:
        """A new profile and its secret token (shown this once; the page keeps it in an HttpOnly cookie)."""
        profile_id, token = stored().create()
        response.set_cookie(PROFILE_COOKIE, f"{profile_id}:{token}", max_age=400 * 86400, httponly=True,
                            samesite="strict", path="/")  # fmt: skip
        return {"profile": profile_id, "token": token}

    @app.get("/v1/me")
    def me(request: Request) -> dict[str, Any]:
        """The profile of the page's cookie (401 without one, 404 when it no longer opens a profile)."""
        cookie = cookie_parts(request)
        if cookie is None:
            raise StarletteHTTPException(401, "no profile cookie")
        return {"profile": stored().authenticate(*cookie).id}

    @app.get("/v1/profiles/{profile_id}/ratings")
    def profile_ratings(profile: Profile = Depends(owner)) -> dict[str, Any]:
        model = slot.state.model
        items = [{"item": _plain(item), "rating": value, "title": model.title(item)}
                 for item, value in rated(model, profile).items()]  # fmt: skip
        return {"profile": profile.id, "items": items}

    @app.put("/v1/profiles/{profile_id}/ratings/{item_id}")
    def set_rating(item_id: str, body: RatingBody, profile: Profile = Depends(owner)) -> dict[str, Any]:
        """Add or change a rating; answered once it is committed."""
        state = slot.state
        model, low, high = state.model, state.low, state.high
        item = model.item_id(item_id)
        model.item_map_.index_one(item)  # an item the model does not know: 404
        if not (low <= body.rating <= high):
            raise ConfigError(f"rating must be between {low:g} and {high:g} stars, not {body.rating!r}")
        stored().set_rating(profile, str(item), body.rating)
        return {"profile": profile.id, "item": _plain(item), "rating": body.rating}

    @app.delete("/v1/profiles/{profile_id}/ratings/{item_id}", status_code=204, response_model=None)
    def remove_rating(item_id: str, profile: Profile = Depends(owner)) -> Response:
        item = slot.state.model.item_id(item_id)
        if not stored().remove_rating(profile, str(item)):
            raise UnknownIdError(f"profile {profile.id} has not rated item {item_id}")
        return Response(status_code=204)

    @app.get("/v1/profiles/{profile_id}/recommendations")
    def profile_recommendations(
        n: int = Query(10, ge=1, le=MAX_N), filters: Filters = Depends(),
        explain: bool = Query(False, description="add the rated items that added most to each score"),
        profile: Profile = Depends(owner),
    ) -> dict[str, Any]:
        """Recommendations folded in from the profile's stored ratings (empty while it has none)."""
        model = slot.state.model
        ratings = rated(model, profile)
        if not ratings:
            return {"profile": profile.id, "unit": _unit(model), "items": []}
        recs = model.recommend_for_ratings(ratings, n, explain=explain, **filters.values)
        return {"profile": profile.id, "unit": recs.unit, "items": _top(recs)}


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
