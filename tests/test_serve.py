"""The HTTP API: every endpoint's success case and each error code (404, 413, 422), never a 500."""

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from mfrec import MatrixFactorization
from mfrec.data import Ratings, split_ratings
from mfrec.serve import create_app


@pytest.fixture(scope="module")
def model():
    from tests.conftest import low_rank_ratings

    data = low_rank_ratings()
    titles = {raw: f"Movie {raw} ({1990 + raw % 30})" for raw in data.item_map.to_list()}
    import pandas as pd

    data = Ratings.from_arrays(
        data.user_map.raw(data.users), data.item_map.raw(data.items), np.round(data.ratings * 2) / 2,
        titles=pd.Series(titles), name="lowrank",
    )  # fmt: skip
    split = split_ratings(data, "random", seed=0)
    return MatrixFactorization(epochs=5, patience=0, device="cpu", embedding_dim=4).fit(split.train, split.val)


@pytest.fixture(scope="module")
def client(model):
    return TestClient(create_app(model, max_body_bytes=2000), raise_server_exceptions=False)


def test_health_model_and_openapi(client):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["kind"] == "biased" and info["embedding_dim"] == 4 and info["n_items"] == 40
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/users/{user_id}/recommendations", "/v1/items/{item_id}/similar", "/v1/predict",
            "/v1/recommendations", "/v1/items", "/v1/model", "/health"} <= set(paths)  # fmt: skip


def test_user_recommendations(client, model):
    body = client.get("/v1/users/100/recommendations?n=5").json()
    assert body["user"] == 100 and len(body["items"]) == 5
    assert [i["item"] for i in body["items"]] == model.recommend(100, 5).items[0].tolist()
    assert body["items"][0]["title"].startswith("Movie ")
    seen = set(model.seen_items(100).tolist())
    assert not seen & {i["item"] for i in body["items"]}
    everything = client.get("/v1/users/100/recommendations?n=40&exclude_seen=false").json()
    assert seen & {i["item"] for i in everything["items"]}


def test_user_ratings_and_user_list(client):
    body = client.get("/v1/users/100/ratings?n=3").json()
    ratings = [i["rating"] for i in body["items"]]
    assert len(ratings) == 3 and ratings == sorted(ratings, reverse=True)
    users = client.get("/v1/users?limit=5&offset=2").json()
    assert users["total"] == 60 and len(users["users"]) == 5


@pytest.mark.parametrize("query", ["1", "15", "159", "2", "x", "１"])
def test_the_user_list_searches_every_user_by_the_start_of_the_id(client, model, query):
    everyone = [str(u) for u in model.trained_users()]  # users 100..159
    expected = [u for u in everyone if u.startswith(query)]
    body = client.get("/v1/users", params={"query": query, "limit": 100}).json()
    assert body["total"] == len(expected) and [str(u) for u in body["users"]] == expected
    first = client.get("/v1/users", params={"query": query, "limit": 3, "offset": 1}).json()
    assert [str(u) for u in first["users"]] == expected[1:4]


def test_similar_items(client, model):
    body = client.get("/v1/items/1000/similar?n=3").json()
    assert body["item"] == 1000 and len(body["items"]) == 3 and body["title"].startswith("Movie 1000")
    assert all(-1 <= i["similarity"] <= 1 for i in body["items"])
    for similar in ("auto", "ratings", "factors", "cooccurrence"):  # the same answer as the library's
        items = [i["item"] for i in client.get(f"/v1/items/1000/similar?n=3&similar={similar}").json()["items"]]
        assert items == model.similar_items(1000, 3, similar=similar).items[0].tolist()
    refused = client.get("/v1/items/1000/similar?similar=pearson")
    assert refused.status_code == 422 and "ratings" in refused.json()["message"]


def test_predict(client, model):
    body = client.post("/v1/predict", json={"pairs": [{"user": 100, "item": 1000}, {"user": "101", "item": 1001}]})
    assert body.status_code == 200
    values = [p["rating"] for p in body.json()["predictions"]]
    np.testing.assert_allclose(values, model.predict([100, 101], [1000, 1001]), rtol=1e-6)


def test_new_user_recommendations(client):
    body = client.post("/v1/recommendations", json={"ratings": [{"item": 1000, "rating": 5}], "n": 4})
    assert body.status_code == 200
    items = [i["item"] for i in body.json()["items"]]
    assert len(items) == 4 and 1000 not in items


def test_title_search_with_pagination(client):
    first = client.get("/v1/items?query=movie 101&limit=2").json()
    assert first["total"] == 10  # Movie 1010 .. Movie 1019
    second = client.get("/v1/items?query=MOVIE 101&limit=2&offset=2").json()
    assert {i["item"] for i in first["items"]}.isdisjoint({i["item"] for i in second["items"]})
    assert client.get("/v1/items?query=zzz").json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "pattern"),
    [
        ("get", "/v1/users/999/recommendations", None, 404, "unknown user 999"),
        ("get", "/v1/users/abc/recommendations", None, 404, "unknown user 'abc'"),
        ("get", "/v1/users/999/ratings", None, 404, "unknown user"),
        ("get", "/v1/items/5/similar", None, 404, "unknown item 5"),
        ("post", "/v1/predict", {"pairs": [{"user": 999, "item": 1000}]}, 404, "unknown user 999"),
        ("post", "/v1/predict", {"pairs": [{"user": 100, "item": 5}]}, 404, "unknown item 5"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 5, "rating": 4}]}, 404, "unknown item 5"),
        ("get", "/v1/users/100/recommendations?n=0", None, 422, "n"),
        ("get", "/v1/users/100/recommendations?n=1001", None, 422, "n"),
        ("get", "/v1/users/100/recommendations?n=ten", None, 422, "n"),
        ("get", "/v1/items/1000/similar?n=-3", None, 422, "n"),
        ("get", "/v1/items?limit=0", None, 422, "limit"),
        ("post", "/v1/predict", {"pairs": []}, 422, "pairs"),
        ("post", "/v1/predict", {"wrong": 1}, 422, "pairs"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": 9}]}, 422, "outside"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": 4}], "n": 5000}, 422, "n"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 1000}]}, 422, "rating"),
        # bodies are read strictly: no bool as an id or a number, no text as a rating, no 1.0 as an id
        ("post", "/v1/predict", {"pairs": [{"user": True, "item": 1000}]}, 422, "body.pairs.0.user"),
        ("post", "/v1/predict", {"pairs": [{"user": 100, "item": 1000.0}]}, 422, "body.pairs.0.item"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": "4"}]}, 422, "rating"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": True}]}, 422, "rating"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": 4}], "n": True}, 422, "body.n"),
        ("get", "/v1/items/1000/similar?shrinkage=nan", None, 422, "finite"),
        ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": 4}, {"item": 1000, "rating": 2}]}, 422,
         "item 1000 is rated 2 times; give each item once"),
    ],
)
def test_errors_are_json_with_a_message(client, method, path, body, status, pattern):
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["status"] == status and pattern in payload["message"]


@pytest.mark.parametrize(("method", "path", "body", "named"), [
    ("get", "/v1/items?q=Movie", None, "'q' for /v1/items; it takes limit, offset, query"),
    ("get", "/v1/users/100/recommendations?genres=Drama", None, "'genres'"),
    ("get", "/v1/users/100/recommendations?n=3&year=1999", None, "'year'"),
    ("get", "/v1/items/1000/similar?min_rating=5", None, "'min_rating'"),
    ("get", "/v1/genres?x=1", None, "'x' for /v1/genres; it takes none"),
    ("get", "/v1/items?" + "&".join(f"k{i}=1" for i in range(9)), None, "and 4 more"),
    ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": 4}], "genre": ["Drama"]}, "body.genre"),
    ("post", "/v1/recommendations", {"ratings": [{"item": 1000, "rating": 4, "weight": 2}]}, "body.ratings.0.weight"),
    ("post", "/v1/predict", {"pairs": [{"user": 100, "item": 1000}], "explain": True}, "body.explain"),
])  # fmt: skip
def test_a_parameter_or_field_the_endpoint_does_not_take_is_named(client, method, path, body, named):
    """A misspelt filter would otherwise be dropped without a word and the answer would look filtered."""
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == 422, response.text
    assert named in response.json()["message"]
    assert client.get("/?utm_source=newsletter").status_code == 200  # the page takes what a browser adds


@pytest.mark.parametrize(("path", "body", "named"), [
    ("/v1/users/100/recommendations?n=3&n=5", None, "'n' given 2 times"),
    ("/v1/items?query=a&limit=2&query=b", None, "'query' given 2 times"),
    ("/v1/predict", '{"pairs": [{"user": 100, "item": 1000}], "pairs": []}', "'pairs' given twice"),
    ("/v1/recommendations", '{"ratings": [{"item": 1000, "rating": 4, "rating": 1}]}', "'rating' given twice"),
])  # fmt: skip
def test_a_parameter_or_field_given_twice_is_named_not_resolved_by_order(client, path, body, named):
    """One of two values would be used without a word (the last JSON key, one of two query values)."""
    if body is None:
        response = client.get(path)
    else:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert named in response.json()["message"]
    genres = client.get("/v1/users/100/recommendations?n=3&genre=Drama&genre=Comedy")  # a list may repeat
    assert "unknown genre 'Drama'" in genres.json()["message"]  # (this model has no genres), not "given 2 times"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_rating_that_is_not_a_finite_number_is_refused_by_name(client, value):
    body = '{"ratings": [{"item": 1000, "rating": VALUE}]}'.replace("VALUE", value)
    response = client.post("/v1/recommendations", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "finite number" in response.json()["message"], response.text


def test_malformed_json_and_oversized_bodies(client):
    response = client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["message"] == "body: Expecting property name enclosed in double quotes (at character 1)"
    deep = client.post("/v1/predict", content=b"[" * 1500, headers={"content-type": "application/json"})
    assert deep.status_code == 422 and "nested deeper than" in deep.json()["message"]  # was a bare 400
    big = {"pairs": [{"user": 100, "item": 1000}] * 200}
    response = client.post("/v1/predict", json=big)
    assert response.status_code == 413 and "over 2,000 bytes" in response.json()["message"]

    def chunks():
        for _ in range(10):
            yield b" " * 500

    response = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_ranking_model_predict_is_a_client_error(model):
    from tests.conftest import low_rank_ratings

    data = low_rank_ratings()
    ranker = MatrixFactorization(model="implicit_als", embedding_dim=4, epochs=2, device="cpu").fit(data)
    client = TestClient(create_app(ranker), raise_server_exceptions=False)
    response = client.post("/v1/predict", json={"pairs": [{"user": 100, "item": 1000}]})
    assert response.status_code == 422 and "needs a rating model" in response.json()["message"]
    assert client.get("/v1/users/100/recommendations").status_code == 200


def test_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>mfrec</title>" in page.text and "/v1/recommendations" in page.text


def test_oversized_new_user_body_is_413(client):
    ratings = [{"item": 1000, "rating": 4}] * 100
    response = client.post("/v1/recommendations", json={"ratings": ratings, "n": 5})
    assert response.status_code == 413 and response.json()["status"] == 413


def test_unknown_path_is_a_json_404(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404


def test_model_facts_report_the_stored_factor_width_of_a_bayesian_model(lowrank):
    # 3 samples of dim 4 side by side, stored at rank 6: the served width is what the file holds
    bayes = MatrixFactorization(model="bayesian", embedding_dim=4, epochs=6, burn_in=2, samples=3, posterior_rank=6,
                                device="cpu").fit(lowrank)  # fmt: skip
    info = TestClient(create_app(bayes)).get("/v1/model").json()
    assert info["kind"] == "bayesian" and info["embedding_dim"] == 6 and info["config"]["embedding_dim"] == 4


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_every_asset_from_the_server_itself(client, page):
    import re

    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", response.text)
    assert urls, "the page loads no assets at all"
    external = [u for u in urls if re.match(r"(?i)^(https?:)?//", u)]
    assert external == [], f"{page} would fetch {external} from the network"
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_the_page_has_an_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.content.startswith(b"<svg")
    assert 'rel="icon"' in client.get("/").text


def test_the_page_names_its_inputs_and_announces_its_lists(client):
    import re

    page = client.get("/").text
    for field in ("search", "user"):
        assert re.search(rf'<label for="{field}"[^>]*>[^<]+</label>', page), field
    for listing in ("recs", "similar", "user-recs"):
        assert re.search(rf'<ol id="{listing}" aria-live="polite">', page), listing
    assert 'createElement("button");\n  name.type = "button";\n  name.className = "title"' in page  # focusable titles
    assert 'role", "radiogroup"' in page and "aria-checked" in page and "min-height:44px" in page


def test_concurrent_requests_are_scored_in_micro_batches_each_as_alone(model):
    """Requests that arrive together share one matrix product; each gets its own answer, and one
    request's error (an unknown item) fails only that request."""
    import asyncio

    import httpx

    app = create_app(model)
    histories = [{int(i): 4.5, int(i) + 1: 2.0} for i in model.trained_items()[:24]]
    users = [int(u) for u in model.trained_users()[:24]]

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mfrec") as http:
            folds = [http.post("/v1/recommendations", json={"ratings": [{"item": i, "rating": r} for i, r in h.items()],
                                                             "n": 4}) for h in histories]  # fmt: skip
            known = [http.get(f"/v1/users/{u}/recommendations", params={"n": 3, "min_ratings": 1}) for u in users]
            bad = http.post("/v1/recommendations", json={"ratings": [{"item": 999999, "rating": 4}]})
            return await asyncio.gather(*folds, *known, bad)

    answers = asyncio.run(burst())
    assert answers[-1].status_code == 404 and "999999" in answers[-1].json()["message"]
    for answer, history in zip(answers[:24], histories, strict=True):
        alone = model.recommend_for_ratings(history, n=4).to_frame()
        assert [row["item"] for row in answer.json()["items"]] == alone["item"].tolist()
    for answer, user in zip(answers[24:48], users, strict=True):
        alone = model.recommend(user, 3, min_ratings=1).to_frame()
        assert [row["item"] for row in answer.json()["items"]] == alone["item"].tolist()
    batcher = app.state.batcher
    assert batcher.requests == 48 and batcher.batches < 48  # some requests shared a product


def test_the_top_k_table_and_live_scoring_give_the_same_answers(model):
    """A request the table answers (no filter, n <= k) equals the live answer (a no-op filter)."""
    client = TestClient(create_app(model, top_k=10))
    assert client.get("/v1/model").json()["serving"]["top_k"] == 10
    for user in model.trained_users()[:15]:
        for n in (1, 10, 11):
            table = client.get(f"/v1/users/{user}/recommendations", params={"n": n}).json()
            live = client.get(f"/v1/users/{user}/recommendations", params={"n": n, "min_ratings": 0}).json()
            assert [r["item"] for r in table["items"]] == [r["item"] for r in live["items"]]
            assert np.allclose([r["score"] for r in table["items"]], [r["score"] for r in live["items"]])
            assert [r["title"] for r in table["items"]] == [r["title"] for r in live["items"]]
            assert table["user"] == live["user"] == int(user)


def test_every_list_says_what_its_numbers_are(model, client):
    """Every list came as "score", stars or not; the CLI's json said "stars". Each list now carries its unit,
    from the table lookup and the live path alike."""
    user = model.user_map_.ids[0]
    item = model.item_map_.ids[0]
    cached = TestClient(create_app(model, top_k=20))
    for answer in (client.get(f"/v1/users/{user}/recommendations?n=3").json(),
                   cached.get(f"/v1/users/{user}/recommendations?n=3").json(),
                   client.post("/v1/recommendations", json={"ratings": [{"item": int(item), "rating": 5}]}).json()):
        assert answer["unit"] == "stars" and answer["items"], answer
    assert client.get(f"/v1/items/{item}/similar?n=3").json()["unit"] == "similarity"
    ranker = MatrixFactorization(model="implicit_als", embedding_dim=4, epochs=2, device="cpu").fit(
        split_ratings(model_data(), "random", seed=0).train)
    assert TestClient(create_app(ranker)).get(f"/v1/users/{user}/recommendations?n=3").json()["unit"] == "score"


def model_data():
    from tests.conftest import low_rank_ratings

    return low_rank_ratings()
