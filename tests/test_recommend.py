"""Recommendations from a fitted model: masks, scores, similar items, unknown ids, fold-in of new users."""

import numpy as np
import pytest
import torch

from mfrec import MatrixFactorization
from mfrec.data import split_ratings
from mfrec.errors import ConfigError, UnknownIdError


@pytest.fixture
def fitted(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    return MatrixFactorization(epochs=5, patience=0, device="cpu").fit(split.train, split.val), split


def test_recommend_excludes_seen_and_untrained_items(fitted):
    model, _ = fitted
    user = 100
    recs = model.recommend(user, n=50).to_frame()
    seen = set(model.seen_items(user).tolist())
    assert seen and not seen & set(recs["item"].tolist())
    assert all(model.knows_item(i) for i in recs["item"])
    assert recs["rank"].tolist() == list(range(1, len(recs) + 1))
    assert (np.diff(recs["stars"].to_numpy()) <= 0).all()
    everything = model.recommend(user, n=50, exclude_seen=False).to_frame()
    assert set(everything["item"]) & seen
    # batch of users equals one at a time
    both = model.recommend([100, 101], n=5)
    assert both.items.shape == (2, 5) and both.scores.shape == (2, 5)
    frame = both.to_frame()
    assert frame[frame.user == 101].reset_index(drop=True).equals(model.recommend(101, n=5).to_frame())


def test_recommend_scores_match_predict(fitted):
    model, _ = fitted
    recs = model.recommend(100, n=5).to_frame()
    pred = model.predict(np.full(5, 100), recs["item"].to_numpy())
    np.testing.assert_allclose(recs["stars"], pred, rtol=1e-5)  # stars on the scale, as predict gives them


def test_a_rating_models_stars_stay_on_the_scale_and_keep_their_order(fitted):
    model, _ = fitted
    items = model.trained_items()[:5]
    recs = model.recommend_for_ratings({item: 5.0 for item in items}, n=30)
    assert recs.unit == "stars" and recs.to_frame().columns.tolist() == ["rank", "item", "stars", "title"]
    valid = recs.scores[recs.valid]
    assert valid.min() >= 0.5 and valid.max() <= 5.0
    raw = model.module_.score(*model.fold_in({item: 5.0 for item in items}))[0].detach().double()
    top = raw.numpy()[model.item_map_.index(recs.items[0])]
    assert (np.diff(top) <= 1e-9).all()  # ranked by the unclipped prediction


def test_similar_items_by_cosine(fitted):
    model, _ = fitted
    sims = model.similar_items(1000, n=5, shrinkage=0, similar="factors").to_frame(score="similarity")
    factors = model.module_.item_factors().detach().numpy()
    i = model.item_map_.index_one(1000)
    j = model.item_map_.index_one(sims["item"].iloc[0])
    cosine = factors[i] @ factors[j] / np.linalg.norm(factors[i]) / np.linalg.norm(factors[j])
    assert sims["similarity"].iloc[0] == pytest.approx(cosine, rel=1e-6)
    assert 1000 not in sims["item"].tolist()
    both = model.similar_items([1000, 1001], n=5, shrinkage=0, similar="factors")
    assert both.items.shape == (2, 5) and np.array_equal(both.items[0], sims["item"].to_numpy())


def test_the_factor_cosine_follows_factors_changed_in_place(fitted):
    model, _ = fitted
    first = model.similar_items(1000, n=5, shrinkage=0, similar="factors")  # the unit factors are kept now
    with torch.no_grad():
        model.module_.item_embedding.weight[:, 0] *= 5.0  # in place: the same tensor, a new version
    again = model.similar_items(1000, n=5, shrinkage=0, similar="factors")
    factors = model.module_.item_factors().detach().numpy()
    i, j = model.item_map_.index_one(1000), model.item_map_.index_one(again.items[0, 0])
    cosine = factors[i] @ factors[j] / np.linalg.norm(factors[i]) / np.linalg.norm(factors[j])
    assert again.scores[0, 0] == pytest.approx(cosine, rel=1e-6)
    assert not np.allclose(first.scores, again.scores)


def test_unknown_ids_and_bad_n(fitted):
    model, _ = fitted
    with pytest.raises(UnknownIdError, match="unknown user 5"):
        model.recommend(5)
    with pytest.raises(UnknownIdError, match="unknown item 7"):
        model.similar_items(7)
    with pytest.raises(UnknownIdError, match="unknown user"):
        model.predict([5], [1000], unknown="error")
    assert np.isfinite(model.predict([5], [1000])[0])  # fallback to what was learned
    for n in (0, -1, 10**9, 2.5):
        with pytest.raises(ConfigError, match="n must be an integer"):
            model.recommend(100, n=n)


def test_fold_in_of_a_trained_user_reproduces_their_recommendations(lowrank):
    from scipy.stats import spearmanr

    split = split_ratings(lowrank, "random", seed=0)
    model = MatrixFactorization(
        embedding_dim=4,
        epochs=150,
        patience=0,
        device="cpu",
        learning_rate=0.02,
        batch_size=128,
        regularization=0.01,
        bias_regularization=0.01,
    ).fit(split.train)
    train = split.train
    for user in (100, 105, 110):
        u = model.user_map_.index_one(user)
        mine = train.users == u
        rated = dict(zip(model.item_map_.raw(train.items[mine]).tolist(), train.ratings[mine].tolist(), strict=True))
        trained = model.recommend(user, n=20).to_frame().set_index("item")["stars"]
        folded = model.recommend_for_ratings(rated, n=20).to_frame().set_index("item")["stars"]
        common = trained.index.intersection(folded.index)
        assert len(common) >= 15
        assert spearmanr(trained[common], folded[common]).statistic > 0.8
        assert not set(rated) & set(folded.index)


def test_fold_in_errors(fitted):
    model, _ = fitted
    with pytest.raises(UnknownIdError, match="unknown item 7"):
        model.recommend_for_ratings({7: 4.0})
    with pytest.raises(ConfigError, match="outside"):
        model.recommend_for_ratings({1000: 9.0})
    with pytest.raises(ConfigError, match="at least one"):
        model.recommend_for_ratings({})
    with pytest.raises(ConfigError, match="rating nan for item 1000 is not a finite number"):
        model.recommend_for_ratings({1000: float("nan")})
    for bad, pattern in [([1000, 1001], "not list"), (4.0, "not float"), (np.array([1000]), "not ndarray"),
                         ({1000: True}, "must be a number, not True"), ({1000: "good"}, "not 'good'"),
                         ({1000: None}, "not None"), ({1000: "4"}, "must be a number, not '4'"),
                         ({1000: 10**400}, "rating inf for item 1000 is not a finite number")]:  # fmt: skip
        with pytest.raises(ConfigError, match=pattern):
            model.recommend_for_ratings(bad)
    # one item twice is refused, not silently the last: pairs, a Series, or keys that name one item
    import pandas as pd

    for twice in ([(1000, 5.0), (1001, 3.0), (1000, 1.0)], pd.Series([5.0, 1.0], index=[1000, 1000]),
                  {1000: 5.0, "1000": 1.0}):  # fmt: skip
        with pytest.raises(ConfigError, match=r"^item 1000 is rated 2 times; give each item once$"):
            model.recommend_for_ratings(twice)


def test_a_new_users_ratings_come_as_a_mapping_a_series_or_pairs_alike(fitted):
    import pandas as pd

    model, split = fitted
    items = split.train.item_map.raw(np.unique(split.train.items)[:3]).tolist()
    given = dict(zip(items, [5.0, 3.5, 4], strict=True))
    expected = model.recommend_for_ratings(given, n=5)
    for form in (pd.Series(given), list(given.items()), tuple(given.items())):
        got = model.recommend_for_ratings(form, n=5)
        assert np.array_equal(got.items, expected.items) and np.allclose(got.scores, expected.scores)


def test_fit_names_what_it_was_given_when_it_is_not_ratings(fitted):
    import pandas as pd

    _, split = fitted
    for bad in ([1, 2, 3], None, pd.DataFrame({"user": [1], "item": [1], "rating": [4.0]})):
        with pytest.raises(ConfigError, match=f"train must be Ratings .*not {type(bad).__name__}"):
            MatrixFactorization(epochs=1).fit(bad)
    with pytest.raises(ConfigError, match="val must be Ratings"):
        MatrixFactorization(epochs=1).fit(split.train, split.val.to_frame())


def test_stars_are_clipped_where_the_raw_prediction_passes_the_scale(fitted):
    model, _ = fitted
    user = model.trained_users()[0]
    u = model.user_map_.index_one(user)
    with torch.no_grad():  # push one item's bias so its raw prediction is far past 5 stars
        model.module_.item_bias.weight[model.item_map_.index_one(model.trained_items()[-1])] += 50.0
    recs = model.recommend(user, n=3, exclude_seen=False)
    assert recs.items[0][0] == model.trained_items()[-1]
    assert recs.scores[0][0] == 5.0 and float(model.module_.score_users(torch.tensor([u]))[0].max()) > 50


def test_ids_come_one_at_a_time_or_as_one_dimensional_lists(fitted):
    """A set, a generator or a nested list of ids is named, never read as one strange id or flattened."""
    model, _ = fitted
    user = model.trained_users()[0]
    for bad, pattern in [({user}, "users must be one id or a list or array of ids, not set"),
                         ((u for u in [user]), "not generator"),
                         ([[user, user]], r"one-dimensional list of ids, not an array of shape \(1, 2\)")]:  # fmt: skip
        with pytest.raises(ConfigError, match=pattern):
            model.recommend(bad)
    with pytest.raises(ConfigError, match="items must be one id or a one-dimensional"):
        model.similar_items([[1000]])
    with pytest.raises(ConfigError, match="exclude must be one id or a list or array of ids, not dict"):
        model.recommend(user, exclude={1000: 1})
    with pytest.raises(ConfigError, match="unknown must be 'fallback' or 'error', not 'zero'"):
        model.predict([user], [1000], unknown="zero")
    with pytest.raises(ConfigError, match="genres must be one or more genre names, not 3"):
        model.recommend(user, genres=3)
    assert model.recommend(np.array([user, user])).items.shape[0] == 2  # a 1-d array of repeats is fine
