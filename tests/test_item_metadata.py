"""Item metadata (titles, genres, years), the candidate filters built from it, and explanations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfrec import MatrixFactorization, load_model, read_ratings
from mfrec.cli import main
from mfrec.data.items import ItemFilter, parse_year_range, years_from_titles
from mfrec.data.readers import read_items
from mfrec.errors import ConfigError, DataError
from tests.contract import block_ratings, quick

GENRES = ["Action", "Comedy", "Drama", "Sci-Fi"]


def items_frame(n: int = 32, first: int = 1000) -> pd.DataFrame:
    """Item ``first + k``: genre ``GENRES[k % 4]`` (and Drama for every third), year ``1980 + k``, a titled name."""
    ids = np.arange(first, first + n)
    genres = [GENRES[k % 4] + ("|Drama" if k % 3 == 0 and GENRES[k % 4] != "Drama" else "") for k in range(n)]
    return pd.DataFrame({"item": ids, "title": [f"Film {k} ({1980 + k})" for k in range(n)], "genres": genres})


@pytest.fixture(scope="module")
def model() -> MatrixFactorization:
    data = block_ratings(False).with_items(read_items(items_frame()))
    return quick("implicit_als").fit(data)


# ------------------------------------------------------------------ the items table
def test_years_come_from_titles_when_no_year_column():
    titles = pd.Series(["Heat (1995)", "Cosmos (1980-1981)", "No year", None, "Odd (95)", "Trailing (2001) "])
    np.testing.assert_array_equal(years_from_titles(titles).to_numpy(), [1995, 1980, np.nan, np.nan, np.nan, 2001])


def test_read_items_from_a_file_with_a_year_column(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("id,name,tags,released\n7,Seven,Crime|Thriller,1995\n8,Eight,(no genres listed),\n9,Nine,,2001\n")
    table = read_items(path, item="id", title="name", genres="tags", year="released")
    assert table.loc[7].tolist() == ["Seven", "Crime|Thriller", 1995.0]
    assert table.loc[8, "genres"] is None and np.isnan(table.loc[8, "year"])  # "(no genres listed)" is unknown
    assert table.loc[9, "genres"] is None and table.loc[9, "year"] == 2001


@pytest.mark.parametrize(("text", "message"), [
    ("item,title\n1,A\n1,B\n", "row 3: item 1 is listed twice"),
    ("item,title\n1,A\n,B\n", "row 3: the item id is missing"),
    ("item,year\n1,19x5\n", "row 2: year '19x5' is not a whole number"),
    ("item,year\n1,1995.5\n", "row 2: year '1995.5' is not a whole number"),
    ("movie,title\n1,A\n", "missing item id column 'item'; found 'movie', 'title'"),
    ("item,year\n1,99999999999999999999\n", "row 2: year '99999999999999999999' is not a year"),
    ("item,year\n1,1995\n2,-10000\n", "row 3: year '-10000' is not a year"),
    ("item,name\n1,A\n", "no 'title', 'genres' or 'year' column (found 'item', 'name')"),
    ("user,item,rating\n1,2,4\n", "no 'title', 'genres' or 'year' column (found 'user', 'item', 'rating')"),
])  # fmt: skip
def test_a_bad_items_file_names_the_row_and_value(tmp_path, text, message):
    path = tmp_path / "items.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_items(path)


@pytest.mark.parametrize("sep", ["\t", ";", "|"])
def test_an_items_file_takes_the_separator_its_header_uses(tmp_path, sep):
    """An items file has no ``--sep``: one read as a single column is read again with its header's separator."""
    path = tmp_path / "items.csv"
    path.write_text(sep.join(["item", "title", "genres"]) + "\n" + sep.join(["7", "Seven, the film (1995)", "Crime"])
                    + "\n")  # fmt: skip
    table = read_items(path)
    assert table.loc[7].tolist() == ["Seven, the film (1995)", "Crime", 1995.0]
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,item,rating\n1,7,4\n")
    assert read_ratings(ratings, items=path).titles.tolist() == ["Seven, the film (1995)"]


def test_items_that_match_no_rated_item_are_refused(tmp_path):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,item,rating\n1,10,4\n2,11,3\n")
    items = tmp_path / "items.csv"
    items.write_text("item,title\n99,Other\n")
    with pytest.raises(DataError, match="none of its 1 item ids is an item of the ratings"):
        read_ratings(ratings, items=items)


def test_read_ratings_attaches_titles_genres_and_years_by_id(tmp_path):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,sku,rating\nu1,b,4\nu2,a,3\nu2,c,5\n")
    items = pd.DataFrame({"sku": ["a", "b"], "title": ["Alpha (1999)", "Beta"], "genres": ["X|Y", "Y"]})
    from mfrec.data import Columns

    data = read_ratings(ratings, columns=Columns(item="sku"), items=items)
    by_id = dict(zip(data.item_map.ids, zip(data.titles, data.genres, data.years, strict=True), strict=True))
    assert by_id["a"][:2] == ("Alpha (1999)", "X|Y") and by_id["a"][2] == 1999
    assert by_id["b"][:2] == ("Beta", "Y") and np.isnan(by_id["b"][2])
    assert pd.isna(by_id["c"][0]) and pd.isna(by_id["c"][1])  # an item the table does not list is unknown


def test_movielens_genres_and_years(ml_small):
    data = ml_small
    first = data.item_map.index(np.array([1], dtype=object))[0]
    assert data.genres[first] == "Adventure|Animation|Children|Comedy|Fantasy" and data.years[first] == 1995
    assert np.isnan(data.years).mean() < 0.01 and (data.genres != None).mean() > 0.99  # noqa: E711


# ------------------------------------------------------------------ filters
def test_filters_keep_only_matching_items_and_rank_as_before(model):
    users = [100, 108, 116, 124]
    everything = model.recommend(users, 32, exclude_seen=True)
    catalog = model.catalog().set_index("item")
    filtered = model.recommend(users, 3, genres=["comedy", "Sci-Fi"], years=(1990, None), min_ratings=1)
    for row in range(len(users)):
        wanted = [i for i, s in zip(everything.items[row], everything.scores[row], strict=True)
                  if np.isfinite(s) and catalog.loc[i, "year"] >= 1990 and catalog.loc[i, "ratings"] >= 1
                  and {"Comedy", "Sci-Fi"} & set(catalog.loc[i, "genres"].split("|"))][:3]  # fmt: skip
        got = [i for i, s in zip(filtered.items[row], filtered.scores[row], strict=True) if np.isfinite(s)]
        assert got == wanted


def test_similar_items_and_fold_in_take_the_same_filters(model):
    sims = model.similar_items(1000, 5, genres="Drama")
    assert all("Drama" in g for g in model.catalog().set_index("item").loc[sims.items[0], "genres"])
    recs = model.recommend_for_ratings({1000: 5.0, 1001: 5.0}, 5, years=(1985, 1990))
    years = model.catalog().set_index("item").loc[recs.items[0][np.isfinite(recs.scores[0])], "year"]
    assert len(years) and years.between(1985, 1990).all()


@pytest.mark.parametrize(("filters", "message"), [
    ({"genres": "Western"}, "unknown genre 'Western'; known genres: Action, Comedy, Drama, Sci-Fi"),
    ({"genres": []}, "genres must be one or more genre names"),
    ({"genres": [3]}, "genres must be one or more genre names"),
    ({"years": (2000, 1990)}, "the first year is after the last"),
    ({"years": 1995}, "years must be a"),
    ({"years": ("a", None)}, "a year bound must be a number"),
    ({"min_ratings": -1}, "min_ratings must be a whole number >= 0"),
    ({"min_ratings": 2.5}, "min_ratings must be a whole number >= 0"),
])  # fmt: skip
def test_bad_filters_are_typed_errors_naming_the_value(model, filters, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.recommend(100, 3, **filters)


def test_a_model_without_years_says_so():
    bare = quick("implicit_als").fit(block_ratings(False))
    assert bare.genres() == []
    with pytest.raises(ConfigError, match="this model has none"):
        bare.recommend(100, 3, years=(1990, 2000))
    with pytest.raises(ConfigError, match="this model has no genre data"):
        bare.recommend(100, 3, genres="Drama")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flags=st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=1, max_size=30),
    years=st.data(),
    wanted=st.lists(st.sampled_from(["a", "B", "c"]), min_size=1, max_size=3),
    bounds=st.tuples(st.one_of(st.none(), st.integers(1900, 2020)), st.one_of(st.none(), st.integers(1900, 2020))),
    least=st.one_of(st.none(), st.integers(0, 5)),
)
def test_the_filter_mask_is_the_item_by_item_rule(flags, years, wanted, bounds, least):
    names = np.array(["A", "B", "C"])
    n = len(flags)
    genres = np.array(["|".join(names[np.array(f)]) or None for f in flags], dtype=object)
    if all(g is None for g in genres):
        genres[0] = "A"
        flags[0] = [True, False, False]
    item_years = np.array(years.draw(st.lists(st.one_of(st.just(np.nan), st.integers(1900, 2020).map(float)),
                                              min_size=n, max_size=n)))  # fmt: skip
    counts = np.array(years.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        bounds = (bounds[1], bounds[0])
    known = {g.lower() for row in genres if row for g in row.split("|")}
    if not all(w.lower() in known for w in wanted):
        with pytest.raises(ConfigError, match="unknown genre"):
            ItemFilter(genres, item_years, counts).mask(wanted, bounds, least)
        return
    mask = ItemFilter(genres, item_years, counts).mask(wanted, bounds, least)
    for k in range(n):
        has = set((genres[k] or "").lower().split("|")) & {w.lower() for w in wanted}
        in_years = not np.isnan(item_years[k]) and (bounds[0] is None or item_years[k] >= bounds[0]) and (
            bounds[1] is None or item_years[k] <= bounds[1])  # fmt: skip
        assert mask[k] == (bool(has) and in_years and (least is None or counts[k] >= least))


@given(st.integers(0, 9999), st.integers(0, 9999))
def test_year_ranges_parse(first, last):
    if first > last:
        first, last = last, first
    assert parse_year_range(f"{first}-{last}") == (first, last)
    assert parse_year_range(f" {first} - ") == (first, None)
    assert parse_year_range(f"-{last}") == (None, last)
    assert parse_year_range(str(first)) == (first, first)


@pytest.mark.parametrize("text", ["", "-", "abc", "1990-2000-2010", "1990 2000", "2000-1990", "12345"])
def test_bad_year_ranges_are_refused(text):
    with pytest.raises(ConfigError):
        parse_year_range(text)


# ------------------------------------------------------------------ storage
def test_metadata_survives_save_and_load(model, tmp_path):
    loaded = load_model(model.save(tmp_path / "m.safetensors"))
    pd.testing.assert_frame_equal(loaded.catalog(), model.catalog())
    assert loaded.genres() == GENRES
    a = model.recommend([100], 3, genres="Action", explain=True)
    b = loaded.recommend([100], 3, genres="Action", explain=True)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.because.items, b.because.items)


# ------------------------------------------------------------------ explanations
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.integers(1000, 1031), st.floats(0.5, 5.0), min_size=1, max_size=12),
       st.lists(st.integers(1000, 1031), min_size=1, max_size=8, unique=True))
def test_implicit_als_explanations_sum_to_the_score(model, history, targets):
    """For implicit ALS, the base (0) and the contributions add up to the folded-in user's score, exactly."""
    frame = model.explain(ratings=history, items=targets)
    items = torch.as_tensor(model.item_map_.index(np.array(list(history), dtype=object)))
    values = torch.tensor(list(history.values()), dtype=torch.float32)
    scores = model.module_.score_history(items, values, model.config.params)[0].double().numpy()
    for target, part in frame.groupby("item", sort=False):
        assert (part["base"] == 0).all() and len(part) == len(history)
        index = model.item_map_.index(np.array([target], dtype=object))[0]
        assert part["contribution"].sum() == pytest.approx(scores[index], rel=1e-5, abs=1e-6)
        assert part["share"].abs().sum() == pytest.approx(1.0) and part["contribution"].is_monotonic_decreasing


def test_a_known_users_explanations_use_their_rated_items(model):
    recs = model.recommend([100, 120], 4, explain=True)
    for row, user in enumerate([100, 120]):
        rated = set(model.seen_items(user).tolist())
        listed = [i for i in recs.because.items[row].ravel() if i is not None]
        assert listed and set(listed) <= rated
    assert (np.diff(recs.because.contributions, axis=2) <= 1e-12).all()  # best contributor first
    assert recs.to_frame()["because"].str.contains(r"Film \d+ \(\d{4}\) \(-?\d+%\)").all()


def test_the_explanation_check_catches_a_wrong_decomposition(model):
    """A test of the tests: an explain whose contributions are 10% short breaks the sum."""
    from tests import contract

    module = model.module_
    real = module.explain
    module.explain = lambda *a, real=real: (real(*a)[0], real(*a)[1] * 0.9)
    try:
        with pytest.raises(AssertionError):
            contract.check_explanations_add_up_to_the_fold_in_score(contract.Case("implicit_als", model, None, None,
                                                                                  None))  # fmt: skip
    finally:
        del module.explain


@pytest.mark.parametrize("bad", [-1, "yes", 2.5])
def test_bad_explain_values_are_refused(model, bad):
    with pytest.raises(ConfigError, match="explain must be True or a number of items"):
        model.recommend(100, 3, explain=bad)


def test_explain_needs_exactly_one_history(model):
    with pytest.raises(ConfigError, match="exactly one of a user id or ratings"):
        model.explain(items=[1000])
    with pytest.raises(ConfigError, match="exactly one of a user id or ratings"):
        model.explain(100, [1000], ratings={1000: 5})


# ------------------------------------------------------------------ CLI and HTTP
@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("m") / "model.safetensors")


def test_cli_filters_and_explanations(model_file, capsys):
    assert main(["recommend", "--model", str(model_file), "--user", "100", "-n", "2", "--genre", "Comedy",
                 "--years", "1990-", "--explain", "--format", "json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(r["title"].startswith("Film") and r["because"] for r in rows)
    assert main(["similar", "--model", str(model_file), "--item", "1000", "-n", "3", "--genre", "action"]) == 0
    assert "Film" in capsys.readouterr().out
    assert main(["recommend", "--model", str(model_file), "--user", "100", "--genre", "Nope"]) == 1
    assert "unknown genre 'Nope'" in capsys.readouterr().err
    assert main(["recommend", "--model", str(model_file), "--user", "100", "--years", "late"]) == 1
    assert main(["recommend", "--model", str(model_file), "--user", "100", "--years", "2030-"]) == 0
    assert "nothing passes the filters" in capsys.readouterr().err


def test_cli_train_with_an_items_file(tmp_path, capsys):
    ratings = block_ratings(False).to_frame()
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    items_frame().to_csv(tmp_path / "items.csv", index=False)
    out = tmp_path / "run"
    assert main(["train", "--ratings", str(tmp_path / "ratings.csv"), "--items", str(tmp_path / "items.csv"),
                 "--model", "implicit_als", "--epochs", "2", "--out", str(out), "--split", "none"]) == 0  # fmt: skip
    loaded = load_model(out)
    assert loaded.genres() == GENRES and loaded.title(1003) == "Film 3 (1983)"


def test_http_filters_and_explanations(model):
    from fastapi.testclient import TestClient

    from mfrec.serve.app import create_app

    client = TestClient(create_app(model))
    assert client.get("/v1/genres").json() == {"genres": GENRES}
    body = client.get("/v1/users/100/recommendations?n=2&genre=Comedy&genre=Sci-Fi&explain=true").json()
    assert len(body["items"]) == 2 and all(len(i["because"]) == 3 for i in body["items"])
    catalog = model.catalog().set_index("item")
    assert all({"Comedy", "Sci-Fi"} & set(catalog.loc[i["item"], "genres"].split("|")) for i in body["items"])
    reply = client.get("/v1/users/100/recommendations?genre=Nope")
    assert reply.status_code == 422 and "unknown genre 'Nope'" in reply.json()["message"]
    assert client.get("/v1/users/100/recommendations?years=soon").status_code == 422
    sims = client.get("/v1/items/1000/similar?n=2&years=1990-2000&min_ratings=1").json()["items"]
    assert sims and all(1990 <= catalog.loc[s["item"], "year"] <= 2000 for s in sims)
    new = client.post("/v1/recommendations", json={"ratings": [{"item": 1000, "rating": 5}], "n": 2,
                                                   "genres": ["Drama"], "explain": True}).json()  # fmt: skip
    assert [b["item"] for i in new["items"] for b in i["because"]] == [1000, 1000]
    assert new["items"][0]["because"][0]["share"] == pytest.approx(1.0)
