"""The contract every registered model passes, as plain checks (so a test of the tests can run them).

Each check takes a :class:`Case` (a model fitted once on tiny data with known
answers) and raises ``AssertionError`` when the model breaks the contract.
:func:`scoring_checks` are the checks a broken scorer must fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfrec import MatrixFactorization, load_model
from mfrec.data import Ratings, Split, split_ratings
from mfrec.models import registry
from mfrec.options import SIMILARITIES
from tests.conftest import low_rank_ratings

BLOCKS, PER_BLOCK = 4, 8


def block_ratings(with_ratings: bool, seed: int = 0) -> Ratings:
    """Users and items in 4 blocks: users like their own block's items.

    Each user has 6 of its block's 8 items (rated 5), and for rating models also 3
    12 of the 24 items of other blocks rated 1. The oracle: a user's best unseen item is one of
    the 2 left in its own block, and an item's nearest item is in its own block.
    """
    rng = np.random.default_rng(seed)
    users, items, values = [], [], []
    n = BLOCKS * PER_BLOCK
    for u in range(n):
        block = u // PER_BLOCK
        own = rng.choice(PER_BLOCK, 6, replace=False) + block * PER_BLOCK
        users += [u] * 6
        items += own.tolist()
        values += [5.0] * 6
        if with_ratings:
            other = rng.choice([i for i in range(n) if i // PER_BLOCK != block], 12, replace=False)
            users += [u] * 12
            items += other.tolist()
            values += [1.0] * 12
    return Ratings.from_arrays(np.array(users) + 100, np.array(items) + 1000, np.array(values), name="blocks")


def quick(name: str, **changes) -> MatrixFactorization:
    """The registered model with its small test settings, on the CPU, no early stopping."""
    spec = registry.get(name)
    return MatrixFactorization(model=name, device="cpu", patience=0, **{**spec.quick, **changes})


@dataclass
class Case:
    name: str
    model: MatrixFactorization  # fitted on the low-rank data
    split: Split
    oracle: MatrixFactorization  # fitted on the block data
    blocks: Ratings


def make_case(name: str) -> Case:
    spec = registry.get(name)
    split = split_ratings(low_rank_ratings(), "random", seed=0)
    blocks = block_ratings(spec.predicts_ratings)
    return Case(name, quick(name).fit(split.train, split.val), split, quick(name).fit(blocks), blocks)


# --------------------------------------------------------------------- checks
def check_recommend_shapes_masks_and_order(case: Case) -> None:
    model = case.model
    users = [100, 101, 102]
    recs = model.recommend(users, n=7)
    assert recs.items.shape == recs.scores.shape == recs.titles.shape == (3, 7)
    assert (np.diff(recs.scores, axis=1) <= 0).all()
    for row, user in enumerate(users):
        assert not set(model.seen_items(user).tolist()) & set(recs.items[row].tolist())
    only = model.recommend(100, n=3, items=recs.items[0, :5][::-1], exclude=[recs.items[0, 0]])
    assert set(only.items[0].tolist()) <= set(recs.items[0, 1:5].tolist())
    assert recs.items[0, 0] not in only.items[0]


def check_oracle_top1_is_in_the_users_block(case: Case) -> None:
    model = case.oracle
    users = np.arange(BLOCKS * PER_BLOCK) + 100
    top = model.recommend(users, n=1).items[:, 0] - 1000
    wrong = np.flatnonzero(top // PER_BLOCK != (users - 100) // PER_BLOCK)
    assert len(wrong) == 0, f"{case.name}: users {(users[wrong]).tolist()} got items outside their block"


def check_oracle_nearest_item_is_in_its_block(case: Case) -> None:
    items = np.arange(BLOCKS * PER_BLOCK) + 1000
    near = case.oracle.similar_items(items, n=1, similar="factors").items[:, 0] - 1000  # the model's own
    wrong = np.flatnonzero(near // PER_BLOCK != (items - 1000) // PER_BLOCK)
    assert len(wrong) <= 2, f"{case.name}: items {(items[wrong]).tolist()} are nearest to another block"


def check_rating_models_recover_the_low_rank_matrix(case: Case) -> None:
    """A rating model beats the global mean clearly on noise-free rank-2 data (RMSE <= 0.8 x its error)."""
    if not case.model.predicts_ratings:
        return
    test = case.split.test
    baseline = float(np.sqrt(np.mean((test.ratings - case.split.train.ratings.mean()) ** 2)))
    rmse = case.model.evaluate(test)["rmse"]
    assert rmse <= 0.8 * baseline, f"{case.name}: test RMSE {rmse:.3f} against the global mean's {baseline:.3f}"


def check_recommend_scores_equal_predictions(case: Case) -> None:
    """Rating models: the ranking path (``score``) and the pair path (``forward``) agree."""
    model = case.model
    if not model.predicts_ratings:
        return
    recs = model.recommend(100, n=5, exclude_seen=False)
    predicted = model.predict(np.full(5, 100), recs.items[0], unknown="error")
    np.testing.assert_allclose(recs.scores[0], np.clip(predicted, -np.inf, np.inf), rtol=1e-5, atol=1e-5)


def check_fold_in_scores_equal_recommend_scores(case: Case) -> None:
    """Folding in a trained user's own representation scores exactly as :meth:`recommend` does."""
    model = case.model
    user = 100
    seen = model.user_ratings(user)
    ratings = dict(zip(seen["item"].tolist(), seen["rating"].tolist(), strict=True))
    module = model.module_
    own = module.represent(torch.tensor([model.user_indices([user])[0]]))
    module.fold_in = lambda items, values, config: own  # the folded-in user is the trained one
    try:
        folded = model.recommend_for_ratings(ratings, n=10)
    finally:
        del module.fold_in
    trained = model.recommend(user, n=10)
    np.testing.assert_array_equal(folded.items, trained.items)
    np.testing.assert_allclose(folded.scores, trained.scores, rtol=1e-6)


def check_a_batch_answers_each_request_as_alone(case: Case) -> None:
    """recommend_batch (serving's micro-batches): trained users and new users, different n and filters,
    scored in one product, each answer equal to the single call's."""
    from mfrec.recommend import TopRequest

    model = case.model
    requests = [TopRequest(user=100, n=5), TopRequest(ratings={1000: 5.0, 1001: 4.0}, n=3),
                TopRequest(user=101, n=7, exclude_seen=False), TopRequest(user=102, n=4, exclude=[1000, 1001]),
                TopRequest(ratings={1002: 1.0, 1009: 5.0, 1017: 3.5}, n=6, items=list(range(1000, 1020)))]  # fmt: skip
    wanted = list(range(1000, 1020))
    alone = [model.recommend(100, 5), model.recommend_for_ratings({1000: 5.0, 1001: 4.0}, n=3),
             model.recommend(101, 7, exclude_seen=False), model.recommend(102, 4, exclude=[1000, 1001]),
             model.recommend_for_ratings({1002: 1.0, 1009: 5.0, 1017: 3.5}, n=6, items=wanted)]  # fmt: skip
    for batched, single in zip(model.recommend_batch(requests), alone, strict=True):
        assert batched.items.shape == single.items.shape
        np.testing.assert_allclose(batched.scores, single.scores, rtol=1e-5, atol=1e-6)
        close = np.isclose(np.diff(single.scores[0]), 0, atol=1e-6)  # near-ties may swap
        same = batched.items[0] == single.items[0]
        assert same.all() or close.any(), (batched.items, single.items)
        assert list(batched.users) == list(single.users)


def check_fold_in_and_similar_items_shapes(case: Case) -> None:
    model = case.model
    recs = model.recommend_for_ratings({1000: 5.0, 1001: 4.0}, n=5)
    assert recs.items.shape == (1, 5) and not {1000, 1001} & set(recs.items[0].tolist())
    for similar in SIMILARITIES:
        sims = model.similar_items(1000, n=3, similar=similar)
        assert sims.items.shape == (1, 3) and 1000 not in sims.items[0].tolist(), similar
        assert np.all(np.abs(sims.scores) <= 1 + 1e-9), similar


def check_explanations_add_up_to_the_fold_in_score(case: Case) -> None:
    """Base plus every rated item's contribution is the folded-in user's score of each recommendation."""
    model = case.model
    ratings = {1000: 5.0, 1001: 4.0, 1005: 3.0, 1010: 1.0}
    recs = model.recommend_for_ratings(ratings, n=5, explain=2)
    frame = model.explain(ratings=ratings, items=recs.items[0])
    totals = frame.groupby("item", sort=False).apply(lambda g: g["base"].iloc[0] + g["contribution"].sum())
    np.testing.assert_allclose(frame.groupby("item", sort=False)["score"].first(), totals, rtol=1e-9)
    low, high = model.scale_ if model.predicts_ratings else (-np.inf, np.inf)
    unclipped = (recs.scores[0] > low) & (recs.scores[0] < high)
    np.testing.assert_allclose(totals.to_numpy()[unclipped], recs.scores[0][unclipped], rtol=1e-4, atol=1e-5)
    assert set(frame["rated"]) <= set(ratings) and recs.because.items.shape == (1, 5, 2)
    best = frame.groupby("item", sort=False)["contribution"].max().to_numpy()
    np.testing.assert_allclose(recs.because.contributions[0, :, 0], best, rtol=1e-9)


def check_save_load_round_trip(case: Case, tmp_path) -> None:
    model, split = case.model, case.split
    loaded = load_model(model.save(tmp_path / f"{case.name}.safetensors"))
    a, b = model.recommend([100, 101], 5), loaded.recommend([100, 101], 5)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.scores, b.scores)
    assert loaded.evaluate_ranking(split.test, train=split.train) == model.evaluate_ranking(
        split.test, train=split.train
    )
    assert loaded.info() == model.info()


def scoring_checks() -> list:
    """The checks that read scores: a scorer returning zeros, a constant or shuffled scores fails one."""
    return [check_oracle_top1_is_in_the_users_block, check_recommend_scores_equal_predictions,
            check_recommend_shapes_masks_and_order]  # fmt: skip
