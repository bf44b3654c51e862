"""One contract every model kind passes: fit, recommend, similar, fold-in, save/load, determinism."""

import numpy as np
import pytest
import torch

from mfrec import MatrixFactorization, load_model
from mfrec.data import split_ratings
from mfrec.errors import ConfigError

KINDS = {
    "dot": {"embedding_dim": 4},
    "biased": {"embedding_dim": 4},
    "als": {"embedding_dim": 4, "regularization": 0.05, "bias_regularization": 2.0},
    "bayesian": {"embedding_dim": 4, "burn_in": 2, "samples": 3},
    "implicit_als": {"embedding_dim": 4, "regularization": 1.0},
    "bpr": {"embedding_dim": 4, "batch_size": 128},
}


@pytest.fixture(params=list(KINDS))
def fitted(request, lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    model = MatrixFactorization(model=request.param, device="cpu", epochs=8, patience=0, **KINDS[request.param])
    return model.fit(split.train, split.val), split


def test_recommend_shapes_masks_and_order(fitted):
    model, _ = fitted
    users = [100, 101, 102]
    recs = model.recommend(users, n=7)
    assert recs.items.shape == recs.scores.shape == recs.titles.shape == (3, 7)
    assert (np.diff(recs.scores, axis=1) <= 0).all()
    for row, user in enumerate(users):
        assert not set(model.seen_items(user).tolist()) & set(recs.items[row].tolist())
    only = model.recommend(100, n=3, items=recs.items[0, :5][::-1], exclude=[recs.items[0, 0]])
    assert set(only.items[0].tolist()) <= set(recs.items[0, 1:5].tolist())
    assert recs.items[0, 0] not in only.items[0]


def test_scores_equal_score_users(fitted):
    model, _ = fitted
    recs = model.recommend(100, n=5, exclude_seen=False)
    u = model.user_map_.index_one(100)
    full = model.module_.score_users(torch.tensor([u])).detach().double()[0]
    if model.predicts_ratings:
        full = full * model.config.rating_divisor
    positions = model.item_map_.index(recs.items[0])
    np.testing.assert_allclose(recs.scores[0], full.numpy()[positions], rtol=1e-6)


def test_save_load_round_trip(fitted, tmp_path):
    model, split = fitted
    loaded = load_model(model.save(tmp_path / "m.safetensors"))
    a, b = model.recommend([100, 101], 5), loaded.recommend([100, 101], 5)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.scores, b.scores)
    assert loaded.evaluate_ranking(split.test, train=split.train) == model.evaluate_ranking(
        split.test, train=split.train
    )


def test_same_seed_same_parameters(fitted):
    model, split = fitted
    again = MatrixFactorization(model.config).fit(split.train, split.val)
    for key, value in model.module_.state_dict().items():
        assert torch.equal(value, again.module_.state_dict()[key]), key


def test_fold_in_and_similar_items(fitted):
    model, _ = fitted
    recs = model.recommend_for_ratings({1000: 5.0, 1001: 4.0}, n=5)
    assert recs.items.shape == (1, 5) and not {1000, 1001} & set(recs.items[0].tolist())
    sims = model.similar_items(1000, n=3)
    assert sims.items.shape == (1, 3) and 1000 not in sims.items[0].tolist()
    assert np.all(np.abs(sims.scores) <= 1 + 1e-9)


def test_rating_only_methods_refuse_ranking_models(fitted):
    model, split = fitted
    if model.predicts_ratings:
        assert model.evaluate(split.test)["rmse"] > 0
    else:
        with pytest.raises(ConfigError, match="needs a rating model"):
            model.evaluate(split.test)
