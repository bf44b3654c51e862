"""Presets side by side on ml-latest-small (stratified 60/20/20, seed 42): RMSE, MAE, wall time.

Runs, in one process and on one split: the global mean and bias-only baselines,
the notebook preset as written (einsum bug), the notebook preset with a true dot
product, and the default, fast, als, bayesian and accurate presets. The test pairs
(never their ratings) are passed as ``interactions``, which only the accurate preset's
implicit features read. Prints a Markdown table (the README's results
table) and writes JSON next to this script under results/.

    python benchmarks/default_preset.py [--skip-notebook] [--repeats 3]

Wall time is the fit (model built, trained, best epoch restored) on this
machine's CPU; the default, fast and accurate presets' time is the median of ``--repeats`` fits.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from mfrec import MatrixFactorization, load_dataset, split_ratings
from mfrec.evaluation.baselines import BiasBaseline, GlobalMean
from mfrec.evaluation.metrics import rating_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebook", action="store_true", help="skip the two 500-epoch notebook runs")
    parser.add_argument("--repeats", type=int, default=3, help="fits of the default preset to time")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "default_preset.json")
    args = parser.parse_args()

    data = load_dataset("ml-latest-small")
    split = split_ratings(data, "stratified", seed=42)
    rows = []
    for name, baseline in (("global mean", GlobalMean()), ("bias only (Surprise BaselineOnly ALS)", BiasBaseline())):
        started = time.perf_counter()
        baseline.fit(split.train)
        seconds = time.perf_counter() - started
        test = split.test
        metrics = rating_metrics(baseline.predict(test.users, test.items), test.ratings, data.scale)
        rows.append({"model": name, "epochs": 0, **_pick(metrics), "fit_s": seconds})

    runs = [
        ("default preset (biased MF, Adam)", {"preset": "default"}, args.repeats),
        ("fast preset (biased MF, compiled SGD)", {"preset": "fast"}, args.repeats),
        ("als preset (biased MF, explicit ALS, weighted lambda)", {"preset": "als"}, 1),
        ("bayesian preset (BPMF, Gibbs, 180 samples at rank 256)", {"preset": "bayesian"}, 1),
        ("accurate preset (Bayesian SVD++, Gibbs, implicit features from every known pair)", {"preset": "accurate"},
         args.repeats),
    ]
    if not args.skip_notebook:
        runs = [
            ("notebook preset, einsum as written", {"preset": "notebook", "notebook_einsum": True}, 1),
            ("notebook preset, true dot product", {"preset": "notebook"}, 1),
            *runs,
        ]
    for name, options, repeats in runs:
        options = dict(options)
        preset = options.pop("preset")
        times, model = [], None
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            model = MatrixFactorization.from_preset(preset, device="cpu", **options).fit(
                split.train, split.val, interactions=split.test  # the test pairs, never their ratings
            )
            times.append(time.perf_counter() - started)
        test = model.evaluate(split.test)
        rows.append({"model": name, "epochs": len(model.history_), **_pick(test), "fit_s": statistics.median(times)})
        print(f"done: {name}", flush=True)

    print("\n| model | test RMSE | test MAE | notebook loss | epochs | fit wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['rmse']:.4f} | {r['mae']:.4f} | {r['notebook_loss']:.4f} | {r['epochs']} "
            f"| {r['fit_s']:.2f} |"
        )
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    print(f"\nsplit {split.sizes()}, {env}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")


def _pick(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("rmse", "mae", "notebook_loss")}


if __name__ == "__main__":
    main()
