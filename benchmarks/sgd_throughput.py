"""Biased-MF SGD throughput (ratings/s per epoch) on a synthetic set, torch engine vs compiled engine.

    python benchmarks/sgd_throughput.py [--ratings 5000000] [--dim 64] [--epochs 3]

The synthetic set has 100k users and 20k items with long-tailed activity. Each
configuration trains ``--epochs`` epochs without validation; the rate is ratings
divided by the median epoch time (the first compiled epoch includes JIT compile
on a cold cache, so it is excluded).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from mfrec import MatrixFactorization
from mfrec.data import Ratings


def synthetic(n: int, seed: int = 0) -> Ratings:
    rng = np.random.default_rng(seed)
    users = (rng.pareto(1.2, n) * 1000).astype(np.int64) % 100_000
    items = (rng.pareto(1.0, n) * 200).astype(np.int64) % 20_000
    ratings = np.clip(np.round(rng.normal(3.5, 1.0, n) * 2) / 2, 0.5, 5.0)
    # a throughput stream: pairs repeat (the table in docs/benchmarks.md was measured on these 5M rows),
    # which Ratings.from_arrays' check refuses, so it is skipped here
    return Ratings.from_arrays(users, items, ratings, name="synthetic", validate=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=5_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    data = synthetic(args.ratings)
    print(f"{len(data):,} ratings, {data.n_users:,} users, {data.n_items:,} items, dim {args.dim}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} torch threads")  # fmt: skip
    runs = [
        ("torch engine, sgd (sparse), batch 65,536", {"engine": "torch", "optimizer": "sgd", "batch_size": 65536,
                                                       "learning_rate": 1.0}),
        ("torch engine, sparse_adam, batch 65,536", {"engine": "torch", "optimizer": "sparse_adam",
                                                      "batch_size": 65536}),
        ("compiled engine, 1 thread", {"engine": "compiled", "threads": 1}),
        ("compiled engine, 2 threads (Hogwild)", {"engine": "compiled", "threads": 2}),
    ]  # fmt: skip
    print("\n| engine | epoch s (median) | M ratings/s |\n|---|---:|---:|")
    for name, options in runs:
        epochs = args.epochs + (1 if options["engine"] == "compiled" else 0)
        model = MatrixFactorization(embedding_dim=args.dim, epochs=epochs, patience=0, device="cpu",
                                    learning_rate=options.pop("learning_rate", 0.005), **options)  # fmt: skip
        model.fit(data)
        times = [r.seconds for r in model.history_[1 if options["engine"] == "compiled" else 0 :]]
        epoch_s = statistics.median(times)
        print(f"| {name} | {epoch_s:.2f} | {len(data) / epoch_s / 1e6:.1f} |", flush=True)
        torch.set_num_threads(2)


if __name__ == "__main__":
    main()
