"""A property test over the whole HTTP API, beside the schema-driven fuzzing.

Hypothesis builds requests for every endpoint: ids of any size and any JSON type
in paths and bodies, hostile query values, bodies that are not JSON, JSON with
``NaN``, wrong shapes. Whatever the request, the answer is never a 5xx, every
error is a JSON object with ``status`` and ``message``, and every success is
valid JSON (no ``NaN``).
"""

from __future__ import annotations

import json
import math
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")

ids = st.one_of(
    st.integers(),  # any size
    st.integers(-(2**70), 2**70),
    st.sampled_from([100, 1000, 1002, 2**63, -(2**63) - 1, 0, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["100", "1000", "1_0", "1e3", " 100", "+100", "0100", "99999999999999999999", "", "\u0661"]),
    st.lists(st.integers(0, 2000), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
path_ids = st.one_of(
    ids.map(lambda value: quote(str(value), safe="")),  # what a client sends for any text
    st.sampled_from(["%00", "%2F", "..", "%FF", "a%20b", "%E2%80%8B", "100%00"]),
)
query_numbers = st.one_of(
    st.integers().map(str),
    st.sampled_from(["", "nan", "inf", "-inf", "1e308", "-0", "x", "10", "0", "1.5", "true"]),
)
numbers = st.one_of(st.floats(), st.integers(), st.sampled_from([4, 4.5, 0.5, 5]), st.text(max_size=3), st.none())


@st.composite
def bodies(draw) -> bytes:
    """A request body: well-shaped with hostile values, wrongly shaped, not JSON at all."""
    shape = draw(st.sampled_from(["pairs", "ratings", "json", "bytes", "nan"]))
    if shape == "pairs":
        pairs = draw(st.lists(st.fixed_dictionaries({"user": ids, "item": ids}), max_size=4))
        return json.dumps({"pairs": pairs}).encode()
    if shape == "ratings":
        ratings = draw(st.lists(st.fixed_dictionaries({"item": ids, "rating": numbers}), max_size=4))
        body = {"ratings": ratings, "n": draw(st.one_of(st.integers(), numbers))}
        return json.dumps(body, allow_nan=True).encode()  # NaN and Infinity literals included
    if shape == "json":
        value = draw(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4)),
                                  lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                              inner, max_size=3),
                                  max_leaves=8))  # fmt: skip
        return json.dumps(value).encode()
    if shape == "nan":
        return b'{"ratings": [{"item": 1000, "rating": NaN}], "n": 3}'
    return draw(st.binary(max_size=40))


@st.composite
def requests(draw) -> tuple[str, str, dict[str, str], bytes | None]:
    endpoint = draw(st.sampled_from(["recommendations", "ratings", "similar", "users", "items", "predict",
                                     "new_user", "model", "health"]))  # fmt: skip
    query: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(["n", "offset", "limit", "shrinkage", "exclude_seen", "query"]),
                              max_size=3, unique=True)):  # fmt: skip
        query[name] = draw(query_numbers if name != "query" else st.text(max_size=250))
    if endpoint in ("recommendations", "ratings", "similar"):
        where = {"recommendations": "users/{}/recommendations", "ratings": "users/{}/ratings",
                 "similar": "items/{}/similar"}[endpoint]  # fmt: skip
        return "GET", "/v1/" + where.format(draw(path_ids)), query, None
    if endpoint in ("predict", "new_user"):
        return "POST", "/v1/predict" if endpoint == "predict" else "/v1/recommendations", query, draw(bodies())
    plain = {"users": "/v1/users", "items": "/v1/items", "model": "/v1/model"}.get(endpoint, "/health")
    return "GET", plain, query, None


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from mfrec import MatrixFactorization
    from mfrec.serve import create_app
    from tests.conftest import low_rank_ratings

    model = MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=4).fit(low_rank_ratings())
    return TestClient(create_app(model), raise_server_exceptions=False)


def strict_json(text: str):
    """Parse JSON as the standard says: ``NaN`` and ``Infinity`` are not JSON."""

    def refuse(word):
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=refuse)


def answer_is_sound(client, method, path, query, body) -> tuple[int, object]:
    headers = {"content-type": "application/json"} if body is not None else {}
    response = client.request(method, path, params=query, content=body, headers=headers)
    assert response.status_code < 500, (method, path, query, body, response.status_code, response.text[:300])
    payload = strict_json(response.text)
    if response.status_code >= 400:
        assert isinstance(payload, dict) and payload["status"] == response.status_code, response.text
        assert isinstance(payload["message"], str) and payload["message"], response.text
    return response.status_code, payload


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(request=requests())
def test_no_request_gets_a_server_error_or_a_non_json_answer(client, request):
    answer_is_sound(client, *request)


@pytest.mark.parametrize("user", [10**30, -(10**30), 2**63, 2.5, True, None, [100], {"id": 100}, "1e2", "1_00"])
def test_ids_of_any_size_and_type_are_json_errors_in_bodies(client, user):
    status, payload = answer_is_sound(client, "POST", "/v1/predict", {},
                                      json.dumps({"pairs": [{"user": user, "item": 1000}]}).encode())  # fmt: skip
    assert status in (404, 422), payload


def test_a_nan_rating_in_a_body_is_refused(client):
    status, payload = answer_is_sound(client, "POST", "/v1/recommendations", {},
                                      b'{"ratings": [{"item": 1000, "rating": NaN}], "n": 3}')  # fmt: skip
    assert status == 422 and "rating" in payload["message"], payload


def test_a_good_request_still_answers(client):
    status, payload = answer_is_sound(client, "POST", "/v1/predict", {},
                                      json.dumps({"pairs": [{"user": 100, "item": 1000}]}).encode())  # fmt: skip
    assert status == 200 and math.isfinite(payload["predictions"][0]["rating"])


def test_the_property_catches_a_server_error(client, monkeypatch):
    from mfrec.estimator import MatrixFactorization

    monkeypatch.setattr(MatrixFactorization, "similar_items", lambda *a, **k: 1 / 0)
    with pytest.raises(AssertionError):
        answer_is_sound(client, "GET", "/v1/items/1000/similar", {}, None)
