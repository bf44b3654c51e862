"""ML-25M scale on one machine: load time and memory, 10 epochs of each model, and the peers, in one run.

Run it in the peers' environment (``bash benchmarks/peers_env.sh`` prints its python):

    $(bash benchmarks/peers_env.sh) benchmarks/scale.py [--data DIR] [--fraction 1.0] [--no-peers]

The data is the synthetic ML-25M-shaped set (``mfrec datasets synth --like ml-25m``),
written to ``--data`` when missing. Every row runs in its own process, so its peak
resident memory (``ru_maxrss``) is its own: the load rows measure the first load
(CSV parse and validation, then the Parquet cache written) and a cached load; each
model row loads from the cache, splits 60/20/20 at random (seed 0), trains 10
epochs or iterations without early stopping, and scores RMSE on every test rating
and NDCG@10 on 5,000 sampled test users. Fit times include turning the split into
the library's own structures. mfrec's rows run in the repository's ``.venv`` when
there is one (pandas 3 there; the peers' environment pins pandas 2). JSON goes to
``results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EPOCHS = 10
SAMPLE_USERS = 5_000

MFREC_MODELS = {
    "mfrec biased MF, compiled SGD (preset fast, 2 threads)": ("fast", {"threads": 2}),
    "mfrec plain MF (dot), compiled SGD (2 threads)": ("fast", {"model": "dot", "threads": 2}),
    "mfrec explicit ALS (dim 32, weighted lambda)": ("als", {}),
    "mfrec Bayesian MF (Gibbs, dim 32, 8 samples)": ("bayesian", {"burn_in": 2, "samples": 8, "engine": "torch"}),
}  # fmt: skip
PEERS = ("cornac MF (k=50, lambda 0.05)", "LensKit BiasedMF (ALS)", "implicit ALS (64 factors)")


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def load(data: Path, cache: bool = True):
    from mfrec.data import load_dataset

    return load_dataset("ml-25m", data, cache=cache)


def split(data: Path):
    from mfrec.data import split_ratings

    return split_ratings(load(data), "random", seed=0)


def ndcg(score, s) -> float:
    from mfrec.evaluation.ranking import evaluate_ranking

    threshold = s.data.relevance_threshold
    return evaluate_ranking(score, s.train, s.test, k=10, threshold=threshold, sample_users=SAMPLE_USERS)["ndcg"]


def run_load(data: Path) -> dict:
    started = time.perf_counter()
    ratings = load(data, cache=True)
    return {"seconds": time.perf_counter() - started, "ratings": len(ratings), "peak_gb": peak_gb(),
            "users": ratings.n_users, "items": ratings.n_items}  # fmt: skip


def run_mfrec(data: Path, name: str) -> dict:
    from mfrec import MatrixFactorization

    s = split(data)
    preset, options = MFREC_MODELS[name]
    started = time.perf_counter()
    model = MatrixFactorization.from_preset(preset, epochs=EPOCHS, patience=0, device="cpu", **options).fit(s.train)
    seconds = time.perf_counter() - started
    epoch_s = float(np.median([r.seconds for r in model.history_]))
    out = {"fit_s": seconds, "epoch_s": epoch_s, "ratings_per_s": len(s.train) / epoch_s,
           "epochs": len(model.history_)}  # fmt: skip
    if model.predicts_ratings:
        out["rmse"] = model.evaluate(s.test)["rmse"]
    out["ndcg"] = ndcg(model.module_.score_users, s)
    out["peak_gb"] = peak_gb()
    return out


def run_peer(data: Path, name: str) -> dict:
    import pandas as pd
    import scipy.sparse as sp
    import torch

    from mfrec.evaluation.metrics import rating_metrics

    s = split(data)
    train, test = s.train, s.test
    started = time.perf_counter()
    if name.startswith("cornac"):
        import cornac
        from cornac.data import Dataset

        triples = list(zip(train.users.tolist(), train.items.tolist(), train.ratings.astype(float).tolist(),
                           strict=True))  # fmt: skip
        dataset = Dataset.from_uir(triples, seed=0)
        del triples
        model = cornac.models.MF(k=50, max_iter=EPOCHS, lambda_reg=0.05, use_bias=True, seed=0, verbose=False)
        model.fit(dataset)
        seconds = time.perf_counter() - started
        u = np.array([dataset.uid_map.get(x, -1) for x in range(train.n_users)])[test.users]
        i = np.array([dataset.iid_map.get(x, -1) for x in range(train.n_items)])[test.items]
        ok = (u >= 0) & (i >= 0)
        pred = np.full(len(test), dataset.global_mean)
        pred[ok] += (model.u_biases[u[ok]] + model.i_biases[i[ok]]
                     + np.einsum("ij,ij->i", model.u_factors[u[ok]], model.i_factors[i[ok]]))  # fmt: skip
        return {"fit_s": seconds, "rmse": rating_metrics(pred, test.ratings, s.data.scale)["rmse"], "epochs": EPOCHS,
                "peak_gb": peak_gb()}  # fmt: skip
    if name.startswith("LensKit"):
        from lenskit.als import BiasedMFScorer
        from lenskit.data import from_interactions_df

        frame = pd.DataFrame({"user_id": train.users, "item_id": train.items, "rating": train.ratings})
        scorer = BiasedMFScorer(epochs=EPOCHS)
        scorer.train(from_interactions_df(frame))
        seconds = time.perf_counter() - started
        u_pos = pd.Index(scorer.users.ids()).get_indexer(test.users)
        i_pos = pd.Index(scorer.items.ids()).get_indexer(test.items)
        bias = scorer.bias
        pred = np.full(len(test), bias.global_bias)
        if bias.item_biases is not None:
            pred += np.where(i_pos >= 0, bias.item_biases[np.maximum(i_pos, 0)], 0.0)
        if bias.user_biases is not None:
            pred += np.where(u_pos >= 0, bias.user_biases[np.maximum(u_pos, 0)], 0.0)
        both = (u_pos >= 0) & (i_pos >= 0)
        pred[both] += np.einsum("ij,ij->i", scorer.user_embeddings[u_pos[both]], scorer.item_embeddings[i_pos[both]])
        return {"fit_s": seconds, "rmse": rating_metrics(pred, test.ratings, s.data.scale)["rmse"], "epochs": EPOCHS,
                "peak_gb": peak_gb()}  # fmt: skip
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = sp.csr_matrix((train.ratings, (train.users, train.items)), shape=(train.n_users, train.n_items))
    model = AlternatingLeastSquares(factors=64, regularization=0.1, alpha=2.0, iterations=EPOCHS, random_state=0)
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    users, items = torch.from_numpy(model.user_factors), torch.from_numpy(model.item_factors)
    return {"fit_s": seconds, "ndcg": ndcg(lambda u: users[u] @ items.T, s), "epochs": EPOCHS, "peak_gb": peak_gb()}


def child(task: str, name: str, data: Path) -> None:
    if task == "load":
        result = run_load(data)
    elif task == "mfrec":
        result = run_mfrec(data, name)
    else:
        result = run_peer(data, name)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(task: str, name: str, data: Path, cache: Path) -> dict:
    env = {**os.environ, "MFREC_CACHE": str(cache), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    # mfrec's rows run in mfrec's own environment (scripts/setup.sh) when it exists; the peers in this one
    own = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    python = str(own) if task != "peer" and own.exists() else sys.executable
    started = time.perf_counter()
    done = subprocess.run(
        [python, __file__, "--child", task, name, "--data", str(data)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "process_s": wall}
    return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1], "process_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of the synthetic ml-25m (made when missing)")
    parser.add_argument("--fraction", type=float, default=1.0, help="size of the synthetic set made when missing")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--only", default=None, help="run only the rows whose name contains this text")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale.json")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.data)
    from mfrec.data.synthetic import write_like

    data = args.data or Path(tempfile.gettempdir()) / "mfrec-scale" / "ml-25m"
    if not (data / "ratings.csv").is_file():
        print(f"writing the synthetic set to {data} ...", flush=True)
        write_like("ml-25m", data.parent, fraction=args.fraction)
    with tempfile.TemporaryDirectory(prefix="mfrec-scale-cache-") as cache:
        cache = Path(cache)
        rows: dict[str, dict] = {}
        rows["load: CSV parse + validation (+ Parquet cache written)"] = spawn("load", "first", data, cache)
        rows["load: from the Parquet cache"] = spawn("load", "cached", data, cache)
        for name, row in rows.items():
            print(f"{name}: {row}", flush=True)
        print(f"\n| model ({EPOCHS} epochs/iterations) | fit s | s/epoch | M ratings/s | test RMSE | "
              f"NDCG@10 | peak RSS GB |\n|---|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        names = [("mfrec", n) for n in MFREC_MODELS] + ([] if args.no_peers else [("peer", n) for n in PEERS])
        names = [(task, n) for task, n in names if args.only is None or args.only in n]
        for task, name in names:
            row = spawn(task, name, data, cache)
            rows[name] = row
            if "error" in row:
                print(f"| {name} | failed: {row['error']} |||||", flush=True)
                continue
            cells = [
                f"{row['fit_s']:.1f}", _fmt(row.get("epoch_s"), ".2f"), _fmt(row.get("ratings_per_s"), ".2f", 1e-6),
                _fmt(row.get("rmse"), ".4f"), _fmt(row.get("ndcg"), ".4f"), f"{row['peak_gb']:.2f}",
            ]  # fmt: skip
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    ratios = _ratios(rows)
    if ratios:
        print("\nfit-time ratios (mfrec / peer; below 1 = mfrec faster)")
        for line in ratios:
            print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(data), "epochs": EPOCHS, "rows": rows}, indent=2) + "\n")


def _fmt(value, spec: str, factor: float = 1.0) -> str:
    return "" if value is None else format(value * factor, spec)


def _ratios(rows: dict[str, dict]) -> list[str]:
    pairs = [
        ("mfrec biased MF, compiled SGD (preset fast, 2 threads)", "cornac MF (k=50, lambda 0.05)"),
        ("mfrec biased MF, compiled SGD (preset fast, 2 threads)", "LensKit BiasedMF (ALS)"),
        ("mfrec explicit ALS (dim 32, weighted lambda)", "LensKit BiasedMF (ALS)"),
        ("mfrec Bayesian MF (Gibbs, dim 32, 8 samples)", "LensKit BiasedMF (ALS)"),
    ]
    out = []
    for ours, theirs in pairs:
        a, b = rows.get(ours, {}), rows.get(theirs, {})
        if "fit_s" in a and "fit_s" in b:
            out.append(f"- {ours} / {theirs}: {a['fit_s'] / b['fit_s']:.2f}")
    return out


if __name__ == "__main__":
    main()
