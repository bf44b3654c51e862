"""Top-10 ranking with mfrec's own models on ml-latest-small, over several split seeds.

Protocol (mfrec.evaluation.ranking): relevant = test ratings >= 4 stars; candidates =
every train item the user did not rate in train; K = 10; means over users with a
relevant item. For each model: the metrics, the fit time, the wall time of
``recommend`` for every user (score, mask, top-k) and of the full evaluation, and
the score-chunk memory bound (chunk users x items x 8 bytes). The peers are in
benchmarks/peers_ranking.py.

    python benchmarks/ranking.py [--seeds 42 0 1 2] [--chunk-size 1024]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mfrec import MatrixFactorization, load_dataset, split_ratings
from mfrec.evaluation.ranking import evaluate_ranking, popularity_scores

COLUMNS = ("ndcg", "recall", "precision", "map", "hit_rate", "mrr", "coverage")
PRESETS = (
    ("biased MF (preset default), by predicted rating", "default"),
    ("BPR (preset bpr)", "bpr"),
    ("implicit ALS (preset implicit)", "implicit"),
    ("EASE (preset ease)", "ease"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 2])
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ranking.json")
    args = parser.parse_args()
    data = load_dataset("ml-latest-small")
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:
        split = split_ratings(data, "stratified", seed=seed)
        print(f"\nseed {seed}\n| model | " + " | ".join(COLUMNS) + " | fit s | recommend all users s | evaluate s |")
        print("|---|" + "---:|" * (len(COLUMNS) + 3))
        r = evaluate_ranking(popularity_scores(split.train), split.train, split.test)
        results.setdefault("popularity", []).append({**r, "seed": seed})
        print("| popularity | " + " | ".join(f"{r[c]:.4f}" for c in COLUMNS) + " | 0 | - | - |")
        for name, preset in PRESETS:
            started = time.perf_counter()
            model = MatrixFactorization.from_preset(preset, device="cpu").fit(split.train, split.val)
            fit_s = time.perf_counter() - started
            started = time.perf_counter()
            everyone = model.trained_users()
            model.recommend(everyone, n=10, chunk_size=args.chunk_size)
            recommend_s = time.perf_counter() - started
            started = time.perf_counter()
            r = model.evaluate_ranking(split.test, train=split.train, chunk_size=args.chunk_size)
            evaluate_s = time.perf_counter() - started
            results.setdefault(name, []).append(
                {
                    **r,
                    "seed": seed,
                    "fit_s": fit_s,
                    "recommend_all_s": recommend_s,
                    "evaluate_s": evaluate_s,
                    "users": len(everyone),
                }
            )
            print(f"| {name} | " + " | ".join(f"{r[c]:.4f}" for c in COLUMNS)
                  + f" | {fit_s:.2f} | {recommend_s:.3f} | {evaluate_s:.3f} |", flush=True)  # fmt: skip
    bound = min(args.chunk_size, data.n_users) * data.n_items * 8 / 2**20
    print(f"\nscore chunk: {min(args.chunk_size, data.n_users)} users x {data.n_items} items x 8 B = {bound:.0f} MiB")
    print(f"\nmean over seeds {args.seeds}\n| model | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, rows in results.items():
        print(f"| {name} | " + " | ".join(f"{np.mean([r[c] for r in rows]):.4f}" for c in COLUMNS) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
