"""Top-10 ranking: mfrec against implicit, LensKit and cornac on the same splits, in one run.

Run it with the peers' environment (``bash benchmarks/peers_env.sh`` prints its python):

    $(bash benchmarks/peers_env.sh) benchmarks/peers_ranking.py [--seeds 42 0 1 2]

Every model is scored by the same code (``mfrec.evaluation.ranking``): relevant =
test ratings >= 4 stars, candidates = train items the user did not rate in train,
K = 10. Peers with no published setting for this protocol are tuned once on the
validation NDCG@10 of seed 42 (grids below) and kept fixed for every seed. Prints
a table per seed, the mean over seeds, and each peer's NDCG ratio to mfrec's
implicit preset; JSON goes to results/peers_ranking.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from mfrec import MatrixFactorization, load_dataset, split_ratings
from mfrec.evaluation.ranking import evaluate_ranking, popularity_scores

COLUMNS = ("ndcg", "recall", "precision", "map", "hit_rate", "mrr", "coverage")
MFREC = "mfrec implicit ALS (preset implicit)"


def as_score(matrix: np.ndarray):
    table = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float64))
    return lambda users: table[users]


def implicit_als(train, factors=32, regularization=0.1, alpha=2.0, seed=0):
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = sp.csr_matrix((train.ratings, (train.users, train.items)), shape=(train.n_users, train.n_items))
    model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha, random_state=seed)
    model.fit(matrix, show_progress=False)
    return model.user_factors @ model.item_factors.T


def lenskit_implicit(train, embedding_size=50, regularization=0.1, weight=40.0, use_ratings=False, seed=0):
    from lenskit.als import ImplicitMFScorer
    from lenskit.data import from_interactions_df

    frame = pd.DataFrame({"user_id": train.users, "item_id": train.items, "rating": train.ratings})
    scorer = ImplicitMFScorer(embedding_size=embedding_size, regularization=regularization, weight=weight,
                              use_ratings=use_ratings)  # fmt: skip
    torch.manual_seed(seed)  # LensKit draws its init from torch's global generator; only in this peer script
    scorer.train(from_interactions_df(frame))
    scores = np.full((train.n_users, train.n_items), -np.inf)
    users, items = scorer.users.ids(), scorer.items.ids()
    scores[np.ix_(users, items)] = scorer.user_embeddings @ scorer.item_embeddings.T
    return scores


def cornac_bpr(train, k=10, max_iter=100, learning_rate=0.001, lambda_reg=0.01, seed=0):
    import cornac
    from cornac.data import Dataset

    triples = list(zip(train.users.tolist(), train.items.tolist(), train.ratings.astype(float).tolist(), strict=True))
    data = Dataset.from_uir(triples, seed=seed)
    model = cornac.models.BPR(k=k, max_iter=max_iter, learning_rate=learning_rate, lambda_reg=lambda_reg,
                              seed=seed, verbose=False)  # fmt: skip
    model.fit(data)
    scores = np.full((train.n_users, train.n_items), -np.inf)
    users = np.array([data.uid_map[u] for u in range(train.n_users) if u in data.uid_map])
    raw_users = np.array([u for u in range(train.n_users) if u in data.uid_map])
    raw_items = np.array(list(data.iid_map.keys()))
    inner_items = np.array(list(data.iid_map.values()))
    for raw, inner in zip(raw_users, users, strict=True):
        scores[raw, raw_items] = model.score(int(inner))[inner_items]
    return scores


GRIDS = {
    "LensKit ImplicitMF": (
        lenskit_implicit,
        {
            "embedding_size": [25, 50, 100],
            "regularization": [0.01, 0.1],
            "weight": [2.0, 5.0, 10.0],
            "use_ratings": [False, True],
        },
    ),
    "cornac BPR": (
        cornac_bpr,
        {"k": [32, 64], "learning_rate": [0.01, 0.05], "lambda_reg": [0.001, 0.01], "max_iter": [200]},
    ),
}


def tune(split, fit, grid):
    best, best_ndcg = None, -1.0
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        scores = fit(split.train, **params)
        ndcg = evaluate_ranking(as_score(scores), split.train, split.val)["ndcg"]
        if ndcg > best_ndcg:
            best, best_ndcg = params, ndcg
    return best, best_ndcg


def fitted_models(train, seed: int, tuned: dict):
    """Yield ``(name, score function, fit seconds)`` for every model, fitted on ``train``."""
    makers = [
        ("popularity", lambda: popularity_scores(train)),
        (MFREC, lambda: MatrixFactorization.from_preset("implicit", device="cpu").fit(train).module_.score_users),
        ("implicit ALS (32 factors, alpha 2, reg 0.1)", lambda: as_score(implicit_als(train, seed=seed))),
    ]
    for name, (fit, _) in GRIDS.items():
        makers.append((f"{name} {tuned[name]}", lambda f=fit, n=name: as_score(f(train, seed=seed, **tuned[n]))))
    for name, make in makers:
        started = time.perf_counter()
        score = make()
        yield name, score, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "peers_ranking.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_dataset("ml-latest-small")
    tuned = {}
    tuning_split = split_ratings(data, "stratified", seed=42)
    for name, (fit, grid) in GRIDS.items():
        started = time.perf_counter()
        tuned[name], ndcg = tune(tuning_split, fit, grid)
        print(f"tuned {name} on seed-42 validation: {tuned[name]} (val NDCG@10 {ndcg:.4f}, "
              f"{time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:
        split = split_ratings(data, "stratified", seed=seed)
        train = split.train
        print(f"\nseed {seed}\n| model | " + " | ".join(COLUMNS) + " | fit s |")
        print("|---|" + "---:|" * (len(COLUMNS) + 1))
        for name, score, fit_s in fitted_models(train, seed, tuned):
            r = evaluate_ranking(score, train, split.test, k=10)
            results.setdefault(name, []).append({**r, "seed": seed, "fit_s": fit_s})
            print(f"| {name} | " + " | ".join(f"{r[c]:.4f}" for c in COLUMNS) + f" | {fit_s:.2f} |", flush=True)
    ours = np.mean([r["ndcg"] for r in results[MFREC]])
    print(f"\nmean over seeds {args.seeds}\n| model | NDCG@10 | Recall@10 | P@10 | NDCG ratio mfrec / model |")
    print("|---|---:|---:|---:|---:|")
    for name, rows in results.items():
        ndcg = np.mean([r["ndcg"] for r in rows])
        print(f"| {name} | {ndcg:.4f} | {np.mean([r['recall'] for r in rows]):.4f} | "
              f"{np.mean([r['precision'] for r in rows]):.4f} | {ours / ndcg:.2f} |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"tuned": tuned, "results": results}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
