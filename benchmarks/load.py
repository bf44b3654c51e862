"""Serving throughput and latency on a MovieLens-25M-sized catalog, against an earlier mfrec in the same run.

Builds a synthetic biased-MF model with 162,541 users and 59,047 items at dim 64 (random
factors and ~20 seen items per user; serving cost does not depend on how the factors were
learned) and starts every server at once, each on its own loopback port:

* ``baseline``: ``mfrec serve`` from the source tree of git ref ``--baseline`` (the serving
  path before the top-K table, orjson and workers), one process;
* ``mfrec serve``: this tree, one process, precomputed top-K;
* ``mfrec serve --workers 2``: this tree, two processes sharing one memory-mapped model.

Once every server has built its table, the runs alternate between servers, ``--repeats``
times: a closed loop (each of ``--clients`` clients sends its next
``GET /v1/users/{random}/recommendations?n=10`` as soon as the previous answer arrives) and an
open loop (each client sends ``--rate`` requests/s on average, as a Poisson process, so
the clients are not in step). The load generator is a small asyncio
HTTP/1.1 client on keep-alive connections (no client library in the way), and it shares the
machine's cores with the servers. Prints, per server, the median over repeats of requests/s
and of p50/p90/p99 latency, and their ratios to the baseline; ``--json`` writes them.

    python benchmarks/load.py [--clients 50] [--seconds 15] [--rate 10] [--repeats 2] [--baseline REF]
    python benchmarks/load.py --query '&min_ratings=0'   # every request scored live (micro-batched)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

N_USERS, N_ITEMS, DIM = 162_541, 59_047, 64
ROOT = Path(__file__).resolve().parents[1]
LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


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


# ----------------------------------------------------------------------------- the load generator
async def client(port: int, stop_at: float, rate: float, rng, latencies: list, errors: list,
                 query: str = "") -> None:
    """One keep-alive connection: request, read the whole answer, record (start, seconds), repeat."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter() + (rng.exponential(1.0 / rate) if rate else 0.0)
    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    try:
        while time.perf_counter() < stop_at:
            user = int(rng.integers(1, N_USERS + 1))
            request = f"GET /v1/users/{user}/recommendations?n=10{query} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
            started = time.perf_counter()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                body = await reader.readexactly(int(LENGTH.search(head).group(1)))
                if head[9:12] != b"200" or not body.startswith(b'{"user"'):
                    errors.append(head[9:12].decode())
            except (OSError, asyncio.IncompleteReadError, AttributeError) as exc:
                errors.append(type(exc).__name__)
                return
            latencies.append((started, time.perf_counter() - started))
            if rate:  # Poisson arrivals: clients in step would send in bursts of --clients requests
                next_at += rng.exponential(1.0 / rate)
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        writer.close()


async def drive(port: int, clients: int, seconds: float, rate: float, query: str = "") -> tuple[list, list, float]:
    latencies: list = []
    errors: list = []
    rng = np.random.default_rng(port)
    started = time.perf_counter()
    await asyncio.gather(*(client(port, started + seconds, rate, rng, latencies, errors, query)
                           for _ in range(clients)))  # fmt: skip
    return latencies, errors, time.perf_counter() - started


def run_loop(coroutine):
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


def measure(port: int, clients: int, seconds: float, rate: float, warmup: float, query: str = "") -> dict:
    latencies, errors, _ = run_loop(drive(port, clients, seconds + warmup, rate, query))
    first = min(t for t, _ in latencies)
    settled = [(t, d) for t, d in latencies if t - first >= warmup]  # connections open, caches warm
    span = max(t + d for t, d in settled) - min(t for t, _ in settled)
    ms = np.array([d for _, d in settled]) * 1000
    return {"requests_per_s": len(settled) / span, "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "errors": len(errors), "requests": len(settled)}  # fmt: skip


# ----------------------------------------------------------------------------- the servers
class Server:
    def __init__(self, name: str, command: list[str], port: int, env: dict, ready_lines: int) -> None:
        self.name, self.port, self.ready_lines = name, port, ready_lines
        self.lines: list[str] = []
        self.process = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip())

    def ready(self) -> bool:
        """Answering, and (for servers with a table) every worker's table built."""
        if self.process.poll() is not None:
            raise SystemExit(f"{self.name} exited:\n" + "\n".join(self.lines[-20:]))
        import http.client

        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status != 200:
                return False
        except OSError:
            return False
        return sum("table ready" in line for line in self.lines) >= self.ready_lines

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def baseline_tree(ref: str, into: Path) -> Path | None:
    """The ``src`` folder of git ref ``ref``, extracted into ``into`` (None without git or the ref)."""
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run")
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s per client in the open loop")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at the start of each run not counted")
    parser.add_argument("--baseline", default="a860bc2", help="git ref of the serving path to compare against")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--query", default="", help="appended to each request, e.g. '&min_ratings=0': a filter "
                                                     "sends every request past the top-K table to live scoring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "model.safetensors"
        started = time.perf_counter()
        synthetic_model(path)
        seconds = time.perf_counter() - started
        print(f"model: {N_USERS:,} users, {N_ITEMS:,} items, dim {DIM} ({seconds:.1f} s to build)")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT / "src")}
        serve = [sys.executable, "-m", "mfrec.cli", "serve", str(path), "--db", f"sqlite:///{tmp / 'p.sqlite'}"]
        servers = []
        old = baseline_tree(args.baseline, tmp)
        if old is None:
            print(f"baseline {args.baseline!r} not found (needs git and the ref): comparing this tree only")
        else:
            servers.append(Server(f"baseline ({args.baseline})", serve, args.port, {**env, "PYTHONPATH": str(old)}, 0))
        servers.append(Server("mfrec serve", serve, args.port + 1, env, 1))
        servers.append(Server("mfrec serve --workers 2", [*serve, "--workers", "2"], args.port + 2, env, 2))
        try:
            started = time.perf_counter()
            while not all(server.ready() for server in servers):
                time.sleep(1.0)
            print(f"servers ready in {time.perf_counter() - started:.0f} s (top-K tables built)")
            for server in servers:
                measure(server.port, 4, 1.0, 0.0, 0.0)  # first requests: lazy imports, allocations
            results: dict = {server.name: {"closed": [], "open": []} for server in servers}
            for repeat in range(args.repeats):
                for server in servers:
                    for loop, rate in (("closed", 0.0), ("open", args.rate)):
                        row = measure(server.port, args.clients, args.seconds, rate, args.warmup, args.query)
                        results[server.name][loop].append(row)
                        print(f"  repeat {repeat + 1} {server.name:28} {loop:6} {row['requests_per_s']:7.0f} req/s "
                              f"p50 {row['p50_ms']:6.1f} p99 {row['p99_ms']:6.1f} ms, {row['errors']} errors "
                              f"(load {os.getloadavg()[0]:.1f})")  # fmt: skip
        finally:
            for server in servers:
                server.stop()
    summary = {name: {loop: {key: float(np.median([r[key] for r in rows])) for key in rows[0]}
                      for loop, rows in loops.items()} for name, loops in results.items()}  # fmt: skip
    base = summary[servers[0].name]
    print(f"\nGET /v1/users/ID/recommendations?n=10{args.query}: {args.clients} clients, {args.seconds:g} s per run, "
          f"median of {args.repeats} alternating runs; "
          f"open loop at {args.rate:g} requests/s per client ({args.clients * args.rate:g} offered)")  # fmt: skip
    print(f"{'server':32} {'closed req/s':>12} {'x':>6} {'closed p99':>10} {'open req/s':>10} "
          f"{'open p50':>9} {'open p99':>9} {'errors':>6}")  # fmt: skip
    for name, loops in summary.items():
        closed, opened = loops["closed"], loops["open"]
        errors = sum(r["errors"] for rows in results[name].values() for r in rows)
        ratio = closed["requests_per_s"] / base["closed"]["requests_per_s"]
        print(f"{name:32} {closed['requests_per_s']:12.0f} {ratio:6.2f} "
              f"{closed['p99_ms']:8.1f}ms {opened['requests_per_s']:10.0f} {opened['p50_ms']:7.1f}ms "
              f"{opened['p99_ms']:7.1f}ms {errors:6d}")  # fmt: skip
    best = summary[servers[-1].name]
    closed_goal = best["closed"]["requests_per_s"] >= 1500
    open_goal = best["open"]["p99_ms"] <= 10 and best["open"]["requests_per_s"] >= 0.95 * args.clients * args.rate
    print(f"goal: closed loop >= 1,500 requests/s at {args.clients} clients: "
          f"{'met' if closed_goal else 'NOT met'} by {servers[-1].name} ({best['closed']['requests_per_s']:,.0f})")
    print(f"goal: p99 <= 10 ms at {args.clients * args.rate:g} requests/s offered: "
          f"{'met' if open_goal else 'NOT met'} by {servers[-1].name} ({best['open']['p99_ms']:.1f} ms)")
    if args.json:
        record = {"summary": summary, "runs": results, "args": {**vars(args), "json": str(args.json)}}
        args.json.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
