"""Every model on the ML-25M-shaped synthetic set on a GPU: epoch time, ratings/s, RMSE, NDCG@10.

    bash benchmarks/gpu.sh            # a machine with an NVIDIA GPU: the full 25M set, under 5 minutes
    bash benchmarks/gpu.sh --small    # a tiny copy on the CPU, to check the script before a GPU is at hand

The set is synthesized in memory (``mfrec.data.synthetic``, the same generator as
``mfrec datasets synth --like ml-25m``) and split 60/20/20 at random (seed 0).
Every model trains on tensors resident on the device, with settings for large
batches on a GPU; each row reports the median epoch time, training ratings per
second, test RMSE (rating models) and NDCG@10 on 5,000 sampled test users.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mfrec import MatrixFactorization
from mfrec.data import Ratings, split_ratings
from mfrec.data.synthetic import SHAPES, synthesize

# key -> (row label, preset, overrides); the torch engine is the one that runs on a GPU
MODELS = {
    "biased": ("biased MF (Adam, batch 262,144)", "default", {"batch_size": 262_144, "learning_rate": 0.01}),
    "dot": ("plain MF (dot, Adam, batch 262,144)", "default", {"model": "dot", "batch_size": 262_144,
                                                               "learning_rate": 0.01, "rating_divisor": 5.0}),
    "bayesian": ("Bayesian MF (Gibbs, dim 32)", "bayesian", {"burn_in": 1, "samples": 2, "engine": "torch"}),
    "implicit": ("implicit ALS (dim 128)", "implicit", {"engine": "torch"}),
    "bpr": ("BPR (Adam, batch 262,144)", "bpr", {"engine": "torch", "batch_size": 262_144, "learning_rate": 0.01}),
}  # fmt: skip


def synthesized(fraction: float, cache: Path | None) -> tuple[np.ndarray, ...]:
    """The synthetic arrays (users, items, ratings, timestamps), read from or kept in ``cache`` when given."""
    names = ("users", "items", "ratings", "stamps")
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as arrays:
            if float(arrays["fraction"]) == fraction:
                return tuple(arrays[name] for name in names)
    arrays = synthesize(SHAPES["ml-25m"], fraction=fraction)[:4]
    if cache is not None:
        partial = cache.with_name(cache.name + ".partial.npz")
        np.savez(partial, fraction=fraction, **dict(zip(names, arrays, strict=True)))
        partial.replace(cache)
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="0.2%% of the set, on the CPU, 2 epochs each")
    parser.add_argument("--fraction", type=float, default=None, help="share of ML-25M's size [1.0; 0.002 with --small]")
    parser.add_argument("--device", default=None, help="cuda, cpu, cuda:1 ... [cuda; cpu with --small]")
    parser.add_argument("--epochs", type=int, default=None, help="epochs or sweeps per model [10; 2 with --small]")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the synthesized arrays in this .npz: read it when it exists, else write it")
    parser.add_argument("--prepare-only", action="store_true", help="only synthesize into --cache (no GPU needed)")
    args = parser.parse_args()
    fraction = args.fraction or (0.002 if args.small else 1.0)
    device = args.device or ("cpu" if args.small else "cuda")
    epochs = args.epochs or (2 if args.small else 10)
    chosen = [key.strip() for key in args.models.split(",") if key.strip()]
    if unknown := sorted(set(chosen) - set(MODELS)):
        raise SystemExit(f"error: unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if args.prepare_only and args.cache is None:
        raise SystemExit("error: --prepare-only needs --cache")
    if not args.prepare_only and device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: torch sees no CUDA GPU here; run with --small to check the script on the CPU")
    started = time.perf_counter()
    users, items, ratings, stamps = synthesized(fraction, args.cache)
    if args.prepare_only:
        print(f"{len(users):,} ratings synthesized into {args.cache} in {time.perf_counter() - started:.1f} s")
        return
    data = Ratings.from_arrays(users, items, ratings, timestamps=stamps, name="synthetic ml-25m")
    split = split_ratings(data, "random", seed=0)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    print(f"{len(data):,} ratings ({data.n_users:,} users, {data.n_items:,} items) in "
          f"{time.perf_counter() - started:.1f} s; device {device} ({name}); {epochs} epochs each\n")  # fmt: skip
    print("| model | epochs | s/epoch | M ratings/s | test RMSE | NDCG@10 |", flush=True)
    print("|---|---:|---:|---:|---:|---:|", flush=True)
    rows = []
    for label, preset, options in (MODELS[key] for key in chosen):
        options = {**options, "epochs": epochs, "patience": 0, "device": device}
        if preset == "bayesian":
            options["samples"] = max(1, min(options["samples"], epochs - options["burn_in"]))
        model = MatrixFactorization.from_preset(preset, **options).fit(split.train)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        epoch_s = statistics.median(r.seconds for r in model.history_)
        rmse = model.evaluate(split.test)["rmse"] if model.predicts_ratings else math.nan
        ndcg = model.evaluate_ranking(split.test, train=split.train, k=10, sample_users=5_000)["ndcg"]
        row = {"model": label, "epochs": len(model.history_), "epoch_s": epoch_s,
               "ratings_per_s": len(split.train) / epoch_s, "rmse": rmse, "ndcg": ndcg}  # fmt: skip
        rows.append(row)
        shown_rmse = "" if math.isnan(rmse) else f"{rmse:.4f}"
        print(f"| {label} | {row['epochs']} | {epoch_s:.3f} | {row['ratings_per_s'] / 1e6:.2f} | {shown_rmse} | "
              f"{ndcg:.4f} |", flush=True)  # fmt: skip
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"device": device, "fraction": fraction, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
