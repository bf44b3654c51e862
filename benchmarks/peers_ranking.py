"""Top-10 ranking: mfrec against implicit, LensKit and cornac on the same splits and the same input, in one run.

Run it with the peers' environment (``bash benchmarks/peers_env.sh`` prints its python):

    $(bash benchmarks/peers_env.sh) benchmarks/peers_ranking.py [--seeds 42 0 1 2] [--inputs binary rating]

Every model is given the same training pairs in one of two input kinds, and is
compared within that kind:

* ``binary``: every training pair is a 1 (what views, clicks and plays give);
* ``rating``: every pair carries its rating, which models that can use it take as a
  confidence weight (implicit's and LensKit's ALS, mfrec's implicit ALS); BPR models
  cannot use it and get the pairs alone, as with binary input.

Every model is scored by the same code (``mfrec.evaluation.ranking``): relevant =
test ratings >= 4 stars, candidates = train items the user did not rate in train,
K = 10. Each peer is tuned for each input kind on the validation NDCG@10 of seed 42
(grids below) and kept fixed for every seed; mfrec runs its presets unchanged. Prints
a table per input and seed, the means over seeds, and each model's NDCG ratio to
mfrec's implicit preset; JSON goes to results/peers_ranking.json.
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
from mfrec.data import Ratings
from mfrec.evaluation.ranking import evaluate_ranking, popularity_scores

COLUMNS = ("ndcg", "recall", "precision", "map", "hit_rate", "mrr", "coverage")
MFREC = "mfrec implicit ALS (preset implicit)"
INPUTS = ("binary", "rating")


def as_score(matrix: np.ndarray):
    table = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float64))
    return lambda users: table[users]


def as_input(train: Ratings, kind: str) -> Ratings:
    """The training pairs with their ratings (``rating``) or with every value 1 (``binary``)."""
    if kind == "rating":
        return train
    ones = np.ones(len(train), dtype=np.float32)
    return Ratings(train.users, train.items, ones, train.user_map, train.item_map, name=f"{train.name} (binary)",
                   kind="implicit")  # fmt: skip


def implicit_als(train, factors=32, regularization=0.1, alpha=2.0, seed=0):
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = sp.csr_matrix((train.ratings, (train.users, train.items)), shape=(train.n_users, train.n_items))
    model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha, random_state=seed)
    model.fit(matrix, show_progress=False)
    return model.user_factors @ model.item_factors.T


def implicit_bpr(train, factors=64, learning_rate=0.01, regularization=0.01, iterations=100, seed=0):
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    matrix = sp.csr_matrix((np.ones(len(train)), (train.users, train.items)), shape=(train.n_users, train.n_items))
    model = BayesianPersonalizedRanking(factors=factors, learning_rate=learning_rate, regularization=regularization,
                                        iterations=iterations, random_state=seed)  # fmt: skip
    model.fit(matrix, show_progress=False)
    return model.user_factors @ model.item_factors.T


def lenskit_implicit(train, embedding_size=50, regularization=0.1, weight=40.0, seed=0):
    from lenskit.als import ImplicitMFScorer
    from lenskit.data import from_interactions_df

    frame = pd.DataFrame({"user_id": train.users, "item_id": train.items, "rating": train.ratings})
    scorer = ImplicitMFScorer(embedding_size=embedding_size, regularization=regularization, weight=weight,
                              use_ratings=train.kind == "explicit")  # fmt: skip
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
    "implicit ALS": (
        implicit_als,
        {"factors": [64, 128, 256], "regularization": [1.0, 10.0, 30.0, 100.0, 300.0], "alpha": [1.0, 5.0, 20.0, 50.0]},
    ),
    "LensKit ImplicitMF": (
        lenskit_implicit,
        {"embedding_size": [25, 50, 100], "regularization": [0.01, 0.1, 1.0], "weight": [1.0, 2.0, 5.0, 20.0, 40.0]},
    ),
    "implicit BPR": (
        implicit_bpr,
        {"factors": [128, 256], "learning_rate": [0.003, 0.01, 0.03], "regularization": [0.003, 0.01, 0.03],
         "iterations": [300]},
    ),
    "cornac BPR": (
        cornac_bpr,
        {"k": [64, 128, 256], "learning_rate": [0.05, 0.1], "lambda_reg": [0.01, 0.03, 0.1], "max_iter": [200]},
    ),
}
#: Peers that can weigh pairs by their value; the others see the pairs alone in both input kinds.
USES_VALUES = {"implicit ALS", "LensKit ImplicitMF"}


def tune(split, fit, grid, kind: str):
    """The grid point with the best validation NDCG@10 of ``fit`` on ``split.train`` in input ``kind``."""
    best, best_ndcg = None, -1.0
    train = as_input(split.train, kind)
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        scores = fit(train, **params)
        ndcg = evaluate_ranking(as_score(scores), split.train, split.val)["ndcg"]
        if ndcg > best_ndcg:
            best, best_ndcg = params, ndcg
    return best, best_ndcg


def fitted_models(train, val, seed: int, tuned: dict):
    """Yield ``(name, score function, fit seconds)`` for every model, fitted on ``train`` (one input kind)."""
    makers = [
        ("popularity", lambda: popularity_scores(train)),
        (MFREC, lambda: MatrixFactorization.from_preset("implicit", device="cpu").fit(train).module_.score_users),
        ("mfrec BPR (preset bpr)",
         lambda: MatrixFactorization.from_preset("bpr", device="cpu").fit(train, val).module_.score_users),
    ]  # fmt: skip
    for name, (fit, _) in GRIDS.items():
        makers.append((f"{name} {tuned[name]}", lambda f=fit, n=name: as_score(f(train, seed=seed, **tuned[n]))))
    for name, make in makers:
        started = time.perf_counter()
        score = make()
        yield name, score, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 2])
    parser.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "peers_ranking.json")
    parser.add_argument("--reuse-tuning", type=Path, metavar="JSON",
                        help="take each peer's setting from this earlier output instead of tuning again")
    args = parser.parse_args()
    earlier = json.loads(args.reuse_tuning.read_text()) if args.reuse_tuning else {}
    torch.set_num_threads(2)
    data = load_dataset("ml-latest-small")
    tuning_split = split_ratings(data, "stratified", seed=42)
    report: dict[str, dict] = {}
    for kind in args.inputs:
        tuned = {}
        for name, (fit, grid) in GRIDS.items():
            if name in earlier.get(kind, {}).get("tuned", {}):
                tuned[name] = earlier[kind]["tuned"][name]
                print(f"[{kind}] {name}: {tuned[name]}, as tuned in {args.reuse_tuning}", flush=True)
                continue
            if kind != INPUTS[0] and name not in USES_VALUES and name in report.get(INPUTS[0], {}).get("tuned", {}):
                tuned[name] = report[INPUTS[0]]["tuned"][name]  # it sees the pairs alone: the same tuning
                continue
            started = time.perf_counter()
            tuned[name], ndcg = tune(tuning_split, fit, grid, kind)
            edges = [key for key, vals in grid.items() if len(vals) > 1 and tuned[name][key] in (vals[0], vals[-1])]
            print(f"[{kind}] tuned {name} on seed-42 validation: {tuned[name]} (val NDCG@10 {ndcg:.4f}, "
                  f"{time.perf_counter() - started:.0f} s; at the grid's edge: {', '.join(edges) or 'none'})",
                  flush=True)  # fmt: skip
        results: dict[str, list[dict]] = {}
        for seed in args.seeds:
            split = split_ratings(data, "stratified", seed=seed)
            train = as_input(split.train, kind)
            print(f"\n[{kind} input] seed {seed}\n| model | " + " | ".join(COLUMNS) + " | fit s |")
            print("|---|" + "---:|" * (len(COLUMNS) + 1))
            for name, score, fit_s in fitted_models(train, split.val, seed, tuned):
                r = evaluate_ranking(score, split.train, split.test, k=10)
                results.setdefault(name, []).append({**r, "seed": seed, "fit_s": fit_s})
                print(f"| {name} | " + " | ".join(f"{r[c]:.4f}" for c in COLUMNS) + f" | {fit_s:.2f} |", flush=True)
        report[kind] = {"tuned": tuned, "results": results}
        ours = {s: r["ndcg"] for r in results[MFREC] for s in [r["seed"]]}
        print(f"\n[{kind} input] NDCG@10 per seed and mean over seeds 0-2\n| model | "
              + " | ".join(f"seed {s}" for s in args.seeds) + " | mean 0-2 | mfrec implicit / model |")
        print("|---|" + "---:|" * (len(args.seeds) + 2))
        for name, rows in results.items():
            by_seed = {r["seed"]: r["ndcg"] for r in rows}
            rest = [by_seed[s] for s in args.seeds if s != 42] or list(by_seed.values())
            mine = np.mean([ours[s] for s in args.seeds if s != 42] or list(ours.values()))
            print(f"| {name} | " + " | ".join(f"{by_seed[s]:.4f}" for s in args.seeds)
                  + f" | {np.mean(rest):.4f} | {mine / np.mean(rest):.2f} |", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
