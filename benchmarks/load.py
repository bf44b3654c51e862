"""Load test of the recommendation endpoint on a MovieLens-25M-sized catalog.

Builds a synthetic biased-MF model with 162,541 users and 59,047 items at dim 64
(random factors and ~20 seen items per user; serving cost does not depend on
how the factors were learned), starts ``mfrec serve`` on 127.0.0.1, and drives
``GET /v1/users/{id}/recommendations?n=10`` from ``--clients`` concurrent
clients for ``--seconds``. Each client either sends its next request as soon as
the previous one returns (closed loop, the default) or at ``--rate`` requests/s
(open loop). Prints p50, p90, p99 and max latency, throughput and errors.

    python benchmarks/load.py [--clients 50] [--seconds 20] [--rate 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

N_USERS, N_ITEMS, DIM = 162_541, 59_047, 64


def synthetic_model(path: Path, seed: int = 0) -> None:
    from mfrec import MatrixFactorization
    from mfrec.data import IdMap
    from mfrec.data.csr import csr_order
    from mfrec.fitted import FittedState
    from mfrec.models import BiasedMF

    g = torch.Generator().manual_seed(seed)
    model = MatrixFactorization(embedding_dim=DIM, device="cpu")
    module = BiasedMF(N_USERS, N_ITEMS, DIM, init_std=0.1, generator=g)
    with torch.no_grad():
        module.item_bias.weight.normal_(0, 0.3, generator=g)
        module.global_mean.fill_(3.5)
    rng = np.random.default_rng(seed)
    counts = rng.geometric(1 / 20, N_USERS)
    users = np.repeat(np.arange(N_USERS), counts)
    items = rng.integers(0, N_ITEMS, len(users))
    indptr, order = csr_order(users, items, N_USERS)
    seen = (indptr, items[order], np.full(len(items), 4.0, np.float32))
    model.restore(FittedState(module.eval(), IdMap(np.arange(1, N_USERS + 1), "user"),
                              IdMap(np.arange(1, N_ITEMS + 1), "item"), (0.5, 5.0), None, seen, "synthetic-25m"))
    model.save(path)


async def client(base: str, stop_at: float, rate: float, rng, latencies: list, errors: list) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=10.0) as http:
        next_at = time.perf_counter()
        while time.perf_counter() < stop_at:
            user = int(rng.integers(1, N_USERS + 1))
            started = time.perf_counter()
            try:
                response = await http.get(f"/v1/users/{user}/recommendations", params={"n": 10})
                if response.status_code != 200:
                    errors.append(response.status_code)
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
            latencies.append((started, time.perf_counter() - started))
            if rate:
                next_at += 1.0 / rate
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def drive(base: str, clients: int, seconds: float, rate: float) -> tuple[list, list, float]:
    latencies: list[float] = []
    errors: list = []
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(client(base, stop_at, rate, rng, latencies, errors) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s per client (0 = closed loop)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of the run not counted in latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        started = time.perf_counter()
        synthetic_model(path)
        print(
            f"model: {N_USERS:,} users, {N_ITEMS:,} items, dim {DIM} ({time.perf_counter() - started:.1f} s to build)"
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "mfrec.cli", "serve", str(path), "--port", str(args.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            import httpx

            base = f"http://127.0.0.1:{args.port}"
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            asyncio.run(drive(base, 4, 2.0, 0.0))  # warm-up
            latencies, errors, wall = asyncio.run(drive(base, args.clients, args.seconds, args.rate))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=20)
    first = min(t for t, _ in latencies)
    settled = [d for t, d in latencies if t - first >= args.warmup]  # connections opened, caches warm
    ms = np.array(settled) * 1000
    mode = f"open loop, {args.rate:g} req/s per client" if args.rate else "closed loop"
    print(f"{args.clients} clients, {mode}, {wall:.1f} s: {len(latencies):,} requests, "
          f"{len(latencies) / wall:,.0f} req/s, {len(errors)} errors; latency over the last "
          f"{wall - args.warmup:.0f} s")  # fmt: skip
    print(
        "latency ms: " + ", ".join(f"p{q} {np.percentile(ms, q):.1f}" for q in (50, 90, 99)) + f", max {ms.max():.1f}"
    )


if __name__ == "__main__":
    main()
