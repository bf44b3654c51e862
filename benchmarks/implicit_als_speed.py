"""Implicit ALS fit time: mfrec's compiled engine against implicit 0.7.3, in one run, alternating.

Run it with the peers' environment (``bash benchmarks/peers_env.sh`` prints its python):

    $(bash benchmarks/peers_env.sh) benchmarks/implicit_als_speed.py [--sizes small 2.5m 25m] [--factors 64 128]

Both libraries get the same data (rating-valued confidence), factors, iterations,
conjugate-gradient steps (3), regularization and thread count. ``small`` is the
training part of ml-latest-small's stratified seed-42 split; ``2.5m`` and ``25m``
are the ML-25M-shaped synthetic sets (``mfrec datasets synth --like ml-25m
--fraction 0.1`` and the whole one), held in memory. Each fit time includes
building the library's own structures from the same index arrays; the fits
alternate (mfrec, implicit, mfrec, ...) ``--repeats`` times and the median is
kept. Prints a Markdown table with the ratio mfrec / implicit; JSON goes to
results/implicit_als_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np


def dataset(size: str):
    """``(users, items, ratings)`` index arrays and the sizes of both sides."""
    from mfrec.data.synthetic import SHAPES, synthesize

    if size == "small":
        from mfrec import load_dataset, split_ratings

        train = split_ratings(load_dataset("ml-latest-small"), "stratified", seed=42).train
        return train.users, train.items, train.ratings, train.n_users, train.n_items
    users, items, ratings, _, _ = synthesize(SHAPES["ml-25m"], fraction={"2.5m": 0.1, "25m": 1.0}[size])
    users, items = np.unique(users, return_inverse=True)[1], np.unique(items, return_inverse=True)[1]
    return users, items, ratings.astype(np.float32), int(users.max()) + 1, int(items.max()) + 1


def fit_mfrec(data, factors: int, iterations: int, threads: int, regularization: float) -> float:
    from mfrec import MatrixFactorization
    from mfrec.data import Ratings

    users, items, ratings, _, _ = data
    started = time.perf_counter()
    train = Ratings.from_arrays(users, items, ratings, kind="implicit")
    MatrixFactorization(model="implicit_als", embedding_dim=factors, epochs=iterations, regularization=regularization,
                        alpha=1.0, cg_steps=3, threads=threads, device="cpu", seed=0).fit(train)  # fmt: skip
    return time.perf_counter() - started


def fit_implicit(data, factors: int, iterations: int, threads: int, regularization: float) -> float:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    users, items, ratings, n_users, n_items = data
    started = time.perf_counter()
    matrix = sp.csr_matrix((ratings, (users, items)), shape=(n_users, n_items), dtype=np.float32)
    model = AlternatingLeastSquares(factors=factors, iterations=iterations, regularization=regularization, alpha=1.0,
                                    use_cg=True, num_threads=threads, random_state=0,
                                    calculate_training_loss=False)  # fmt: skip
    model.fit(matrix, show_progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "2.5m", "25m"], choices=["small", "2.5m", "25m"])
    parser.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "implicit_als_speed.json")
    args = parser.parse_args()
    rows = []
    print(f"{args.iterations} iterations, 3 CG steps, {args.threads} threads, median of {args.repeats} alternating "
          f"fits; load average at start {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    print("| data | ratings | factors | mfrec s | implicit s | mfrec / implicit |\n|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        data = dataset(size)
        for factors in args.factors:
            settings = (factors, args.iterations, args.threads, args.regularization)
            fit_mfrec(data, factors, 1, args.threads, args.regularization)  # compile (or load) the kernel
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(fit_mfrec(data, *settings))
                theirs.append(fit_implicit(data, *settings))
            row = {"data": size, "ratings": len(data[0]), "factors": factors, "mfrec_s": statistics.median(ours),
                   "implicit_s": statistics.median(theirs), "mfrec_runs": ours, "implicit_runs": theirs}  # fmt: skip
            rows.append(row)
            print(f"| {size} | {row['ratings']:,} | {factors} | {row['mfrec_s']:.2f} | {row['implicit_s']:.2f} "
                  f"| {row['mfrec_s'] / row['implicit_s']:.2f} |", flush=True)  # fmt: skip
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
