"""Rating prediction against the peers, in one run: test RMSE, fit wall time, time to accuracy.

Run it in the peers' environment (``bash benchmarks/peers_env.sh`` prints its python):

    $(bash benchmarks/peers_env.sh) benchmarks/time_to_accuracy.py [--seeds 42 0 1 2]

On ml-latest-small's stratified 60/20/20 split: cornac MF with the tuned setting
(k=50, 50 epochs, lambda 0.05), LensKit BiasedMF (ALS, defaults), Surprise
KNNBaseline (item-based, pearson_baseline) and SVD (tuned: 100 factors, 40 epochs,
reg 0.1), and mfrec's ``fast`` (compiled SGD), ``default`` (Adam), ``als`` and
``bayesian`` presets (the slow fits, bayesian and KNNBaseline, are timed once). Every fit time
includes turning the split into the library's own data structures. The ``fast``
preset also runs with learning rate 0.02 and ``target_rmse=0.868``: training stops as
soon as the validation RMSE reaches 0.868. That is mfrec's time to reach cornac's test
RMSE (0.872), and the table shows whether the test RMSE got there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mfrec import MatrixFactorization, load_dataset, split_ratings
from mfrec.evaluation.metrics import rating_metrics

TARGET = 0.872  # cornac MF's test RMSE with its tuned setting (FINDINGS.md)
# Time to accuracy: the fast preset with a larger step, stopped once validation RMSE reaches
# STOP_AT (a little below TARGET, as test RMSE runs a little above validation RMSE here).
FAST_LR = 0.02
STOP_AT = 0.868


def cornac_mf(split):
    import cornac
    from cornac.data import Dataset

    train, test = split.train, split.test
    started = time.perf_counter()
    triples = list(zip(train.users.tolist(), train.items.tolist(), train.ratings.astype(float).tolist(), strict=True))
    data = Dataset.from_uir(triples, seed=42)
    model = cornac.models.MF(k=50, max_iter=50, lambda_reg=0.05, use_bias=True, seed=42, verbose=False)
    model.fit(data)
    seconds = time.perf_counter() - started
    mu = data.global_mean
    pred = np.full(len(test), mu)
    for j, (u, i) in enumerate(zip(test.users.tolist(), test.items.tolist(), strict=True)):
        if u in data.uid_map and i in data.iid_map:
            pred[j] = model.score(data.uid_map[u], data.iid_map[i])
        elif i in data.iid_map:
            pred[j] = mu + model.i_biases[data.iid_map[i]]
        elif u in data.uid_map:
            pred[j] = mu + model.u_biases[data.uid_map[u]]
    return pred, seconds


def lenskit_biased(split):
    from lenskit.als import BiasedMFScorer
    from lenskit.data import from_interactions_df

    train, test = split.train, split.test
    started = time.perf_counter()
    frame = pd.DataFrame({"user_id": train.users, "item_id": train.items, "rating": train.ratings})
    scorer = BiasedMFScorer()
    scorer.train(from_interactions_df(frame))
    seconds = time.perf_counter() - started
    users, items = scorer.users.ids(), scorer.items.ids()
    u_pos = pd.Index(users).get_indexer(test.users)
    i_pos = pd.Index(items).get_indexer(test.items)
    bias = scorer.bias
    pred = np.full(len(test), bias.global_bias)
    ib = bias.item_biases if bias.item_biases is not None else np.zeros(len(items))
    ub = bias.user_biases if bias.user_biases is not None else np.zeros(len(users))
    pred += np.where(i_pos >= 0, ib[np.maximum(i_pos, 0)], 0.0) + np.where(u_pos >= 0, ub[np.maximum(u_pos, 0)], 0.0)
    both = (u_pos >= 0) & (i_pos >= 0)
    pred[both] += np.einsum("ij,ij->i", scorer.user_embeddings[u_pos[both]], scorer.item_embeddings[i_pos[both]])
    return pred, seconds


def surprise_fit(split, algorithm: str):
    """Surprise on the same split: KNNBaseline (item-based, pearson_baseline) or SVD with the tuned setting."""
    import surprise

    train, test = split.train, split.test
    started = time.perf_counter()
    frame = pd.DataFrame({"user": train.users, "item": train.items, "rating": train.ratings.astype(float)})
    reader = surprise.Reader(rating_scale=split.data.scale)
    trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    if algorithm == "knn":
        model = surprise.KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False)
    else:
        model = surprise.SVD(n_factors=100, n_epochs=40, reg_all=0.1, random_state=0)
    model.fit(trainset)
    seconds = time.perf_counter() - started
    pred = np.array([model.predict(u, i, clip=False).est
                     for u, i in zip(test.users.tolist(), test.items.tolist(), strict=True)])  # fmt: skip
    return pred, seconds


def mfrec_fit(split, preset, **options):
    started = time.perf_counter()
    model = MatrixFactorization.from_preset(preset, device="cpu", **options).fit(split.train, split.val)
    seconds = time.perf_counter() - started
    return model.predict_indices(split.test.users, split.test.items, clip=False), seconds, len(model.history_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="fits per model and seed; the median time is kept")
    parser.add_argument("--skip-bayesian", action="store_true", help="leave out the bayesian preset (~85 s a fit)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "time_to_accuracy.json")
    args = parser.parse_args()
    data = load_dataset("ml-latest-small")
    MatrixFactorization.from_preset("fast", epochs=1).fit(split_ratings(data).train)  # compile the kernel
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:
        split = split_ratings(data, "stratified", seed=seed)
        runs = {
            "cornac MF (k=50, 50 epochs, lambda 0.05)": lambda s=split: (*cornac_mf(s), 50),
            "LensKit BiasedMF (ALS, defaults)": lambda s=split: (*lenskit_biased(s), 10),
            "Surprise KNNBaseline (item, pearson_baseline)": lambda s=split: (*surprise_fit(s, "knn"), 1),
            "Surprise SVD (100 factors, 40 epochs, reg 0.1)": lambda s=split: (*surprise_fit(s, "svd"), 40),
            "mfrec fast preset (compiled SGD)": lambda s=split: mfrec_fit(s, "fast"),
            f"mfrec fast preset, lr {FAST_LR}, stop at val RMSE {STOP_AT}": lambda s=split: mfrec_fit(
                s, "fast", learning_rate=FAST_LR, target_rmse=STOP_AT
            ),
            "mfrec default preset (Adam)": lambda s=split: mfrec_fit(s, "default"),
            "mfrec als preset (explicit ALS)": lambda s=split: mfrec_fit(s, "als"),
        }
        if not args.skip_bayesian:
            runs["mfrec bayesian preset (BPMF, Gibbs)"] = lambda s=split: mfrec_fit(s, "bayesian")
        print(f"\nseed {seed}\n| model | test RMSE | MAE | fit s (median) | epochs |\n|---|---:|---:|---:|---:|")
        for name, run in runs.items():
            repeats = 1 if "bayesian" in name or "KNN" in name else args.repeats  # the slow fits once
            outcomes = [run() for _ in range(repeats)]
            pred, _, epochs = outcomes[0]
            seconds = statistics.median(o[1] for o in outcomes)
            m = rating_metrics(pred, split.test.ratings, data.scale)
            results.setdefault(name, []).append({"seed": seed, **m, "fit_s": seconds, "epochs": epochs})
            print(f"| {name} | {m['rmse']:.4f} | {m['mae']:.4f} | {seconds:.3f} | {epochs} |", flush=True)
    cornac = "cornac MF (k=50, 50 epochs, lambda 0.05)"
    print(f"\nmean over seeds {args.seeds}\n| model | test RMSE | fit s | time ratio to cornac |\n|---|---:|---:|---:|")
    base = np.mean([r["fit_s"] for r in results[cornac]])
    for name, rows in results.items():
        t = np.mean([r["fit_s"] for r in rows])
        print(f"| {name} | {np.mean([r['rmse'] for r in rows]):.4f} | {t:.3f} | {t / base:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
