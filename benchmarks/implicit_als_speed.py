"""Implicit ALS fit time and peak memory: mfrec's compiled engine against implicit 0.7.3, in one run, alternating.

Run it with the peers' environment (``bash benchmarks/peers_env.sh`` prints its python):

    $(bash benchmarks/peers_env.sh) benchmarks/implicit_als_speed.py [--sizes small 2.5m 25m] [--factors 64 128]

Both libraries get the same training pairs and ratings, the same objective (confidence
c = r, implicit's with alpha 1; mfrec's ``alpha`` is the mean rating, since it scales
ratings by their mean, its ``confidence_offset`` 0, unobserved weight 1 and plain
lambda), factors, iterations,
conjugate-gradient steps (3), regularization and thread
count. ``small`` is ml-latest-small's stratified seed-42 split; ``2.5m`` and ``25m`` are
the ML-25M-shaped synthetic sets (``mfrec datasets synth --like ml-25m --fraction 0.1``
and the whole one), split 80/20 at random (seed 0). Every fit runs in its own process,
which loads the same arrays from disk: its time includes building the library's own
structures from them, and its peak resident memory (``VmHWM`` of ``/proc/self/status``,
which starts afresh at ``exec``, unlike ``ru_maxrss``, which keeps the parent's) is the library's
alone. The fits alternate (mfrec, implicit, mfrec, ...) ``--repeats`` times and the
median time is kept. NDCG@10 on the held-out pairs (relevant: rating >= 4; at most
``--eval-users`` test users, sampled with seed 0) is computed by mfrec's metric code
from each library's first fit. Prints a Markdown table with the ratio mfrec / implicit;
JSON goes to results/implicit_als_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ARRAYS = ("train_users", "train_items", "train_ratings", "test_users", "test_items", "test_ratings")


def dataset(size: str, folder: Path) -> dict:
    """Write the train and test index arrays of ``size`` into ``folder``; returns their shape."""
    if size == "small":
        from mfrec import load_dataset, split_ratings

        split = split_ratings(load_dataset("ml-latest-small"), "stratified", seed=42)
        parts = {"train": split.train, "test": split.test}
        arrays = {f"{p}_{k}": getattr(r, k) for p, r in parts.items() for k in ("users", "items", "ratings")}
        n_users, n_items = split.data.n_users, split.data.n_items
    else:
        from mfrec.data.synthetic import SHAPES, synthesize

        users, items, ratings, _, _ = synthesize(SHAPES["ml-25m"], fraction={"2.5m": 0.1, "25m": 1.0}[size])
        users, items = np.unique(users, return_inverse=True)[1], np.unique(items, return_inverse=True)[1]
        n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
        test = np.random.default_rng(0).random(len(users)) < 0.2
        arrays = {}
        for part, rows in (("train", ~test), ("test", test)):
            for name, values in (("users", users), ("items", items), ("ratings", ratings)):
                arrays[f"{part}_{name}"] = values[rows]
        del users, items, ratings
    for name in ARRAYS:
        dtype = np.float32 if name.endswith("ratings") else np.int32
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arrays[name], dtype=dtype))
    return {"n_users": n_users, "n_items": n_items, "train": len(arrays["train_users"])}


def child(lib: str, folder: Path, factors: int, iterations: int, threads: int, regularization: float,
          n_users: int, n_items: int, save: bool) -> None:  # fmt: skip
    """One fit in this process, after a warm-up fit on a tiny slice (numba's kernel load, thread pools, BLAS);
    prints ``{"seconds", "peak_rss_gb"}`` as JSON (and saves the factors)."""
    users, items, ratings = (np.load(folder / f"train_{k}.npy") for k in ("users", "items", "ratings"))

    def fit(users, items, ratings, n_users, n_items, epochs):
        if lib == "mfrec":
            from mfrec import MatrixFactorization
            from mfrec.data import Ratings
            from mfrec.data.idmap import IdMap

            train = Ratings.from_codes(users, items, ratings, user_map=IdMap(np.arange(n_users), "user"),
                                       item_map=IdMap(np.arange(n_items), "item"), kind="implicit")  # fmt: skip
            model = MatrixFactorization(model="implicit_als", embedding_dim=factors, epochs=epochs,
                                        regularization=regularization, alpha=float(ratings.mean()), cg_steps=3,
                                        confidence_offset=0.0, unobserved_weight=1.0, reg_exponent=0.0,
                                        threads=threads, device="cpu", seed=0).fit(train)  # fmt: skip
            module = model.module_
            return module.user_embedding.weight.detach().numpy(), module.item_embedding.weight.detach().numpy()
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares

        matrix = sp.csr_matrix((ratings, (users, items)), shape=(n_users, n_items), dtype=np.float32)
        model = AlternatingLeastSquares(factors=factors, iterations=epochs, regularization=regularization, alpha=1.0,
                                        use_cg=True, num_threads=threads, random_state=0,
                                        calculate_training_loss=False)  # fmt: skip
        model.fit(matrix, show_progress=False)
        return model.user_factors, model.item_factors

    tiny = slice(0, 2000)
    fit(users[tiny] % 50, items[tiny] % 200, ratings[tiny], 50, 200, 1)
    started = time.perf_counter()
    x, y = fit(users, items, ratings, n_users, n_items, iterations)
    seconds = time.perf_counter() - started
    peak = peak_rss_gb()
    if save:
        np.save(folder / f"factors-{lib}-users.npy", np.asarray(x, dtype=np.float32))
        np.save(folder / f"factors-{lib}-items.npy", np.asarray(y, dtype=np.float32))
    print(json.dumps({"seconds": seconds, "peak_rss_gb": peak}))


def peak_rss_gb() -> float:
    """This process's peak resident memory in GiB (Linux: ``VmHWM``, its own since ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB -> GiB
    raise SystemExit("peak memory needs Linux's /proc/self/status")


def run_child(lib: str, folder: Path, args, factors: int, shape: dict, save: bool) -> dict:
    command = [sys.executable, __file__, "--child", lib, "--folder", str(folder), "--factors", str(factors),
               "--iterations", str(args.iterations), "--threads", str(args.threads),
               "--regularization", str(args.regularization), "--shape", str(shape["n_users"]),
               str(shape["n_items"])] + (["--save"] if save else [])  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{lib} fit failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ndcg(folder: Path, lib: str, shape: dict, users: int) -> float:
    """NDCG@10 of the saved factors on the held-out pairs (mfrec's metric code)."""
    import torch

    from mfrec.data import Ratings
    from mfrec.data.idmap import IdMap
    from mfrec.evaluation.ranking import evaluate_ranking

    maps = {"user_map": IdMap(np.arange(shape["n_users"]), "user"),
            "item_map": IdMap(np.arange(shape["n_items"]), "item")}  # fmt: skip
    parts = {p: Ratings.from_codes(*(np.load(folder / f"{p}_{k}.npy") for k in ("users", "items", "ratings")), **maps)
             for p in ("train", "test")}  # fmt: skip
    x = torch.from_numpy(np.load(folder / f"factors-{lib}-users.npy"))
    y = torch.from_numpy(np.load(folder / f"factors-{lib}-items.npy"))
    result = evaluate_ranking(lambda b: x[b] @ y.T, parts["train"], parts["test"], k=10, threshold=4.0,
                              sample_users=users, seed=0)  # fmt: skip
    return float(result["ndcg"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "2.5m", "25m"], choices=["small", "2.5m", "25m"])
    parser.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-users", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "implicit_als_speed.json")
    parser.add_argument("--child", choices=["mfrec", "implicit"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--shape", type=int, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.folder, args.factors[0], args.iterations, args.threads, args.regularization,
                     *args.shape, args.save)  # fmt: skip
    rows = []
    print(f"{args.iterations} iterations, 3 CG steps, {args.threads} threads, median of {args.repeats} alternating "
          f"fits, each in its own process; load average at start {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    print("| data | training pairs | factors | mfrec s | implicit s | mfrec / implicit | mfrec peak RSS GB "
          "| implicit peak RSS GB | mfrec NDCG@10 | implicit NDCG@10 |")
    print("|---|" + "---:|" * 9)
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"mfrec-ials-{size}-") as tmp:
            folder = Path(tmp)
            shape = dataset(size, folder)
            for factors in args.factors:
                run_child("mfrec", folder, args, factors, shape, save=False)  # compile (or load) the kernel
                ours, theirs = [], []
                for repeat in range(args.repeats):
                    ours.append(run_child("mfrec", folder, args, factors, shape, save=repeat == 0))
                    theirs.append(run_child("implicit", folder, args, factors, shape, save=repeat == 0))
                row = {"data": size, "ratings": shape["train"], "factors": factors,
                       "mfrec_s": statistics.median(r["seconds"] for r in ours),
                       "implicit_s": statistics.median(r["seconds"] for r in theirs),
                       "mfrec_peak_rss_gb": max(r["peak_rss_gb"] for r in ours),
                       "implicit_peak_rss_gb": max(r["peak_rss_gb"] for r in theirs),
                       "mfrec_ndcg": ndcg(folder, "mfrec", shape, args.eval_users),
                       "implicit_ndcg": ndcg(folder, "implicit", shape, args.eval_users),
                       "mfrec_runs": ours, "implicit_runs": theirs}  # fmt: skip
                rows.append(row)
                print(f"| {size} | {row['ratings']:,} | {factors} | {row['mfrec_s']:.2f} | {row['implicit_s']:.2f} "
                      f"| {row['mfrec_s'] / row['implicit_s']:.2f} | {row['mfrec_peak_rss_gb']:.2f} "
                      f"| {row['implicit_peak_rss_gb']:.2f} | {row['mfrec_ndcg']:.4f} | {row['implicit_ndcg']:.4f} |",
                      flush=True)  # fmt: skip
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2,
                                   default=str) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
