"""Similar items at ML-25M scale: the time of one query per similarity, and what ``similar=ratings`` builds once.

    python benchmarks/similar_scale.py [--data DIR] [--fraction 1.0]

The data is the synthetic ML-25M-shaped set (``mfrec datasets synth --like ml-25m``),
written to ``--data`` when missing (the folder ``benchmarks/scale.py`` uses). The implicit
preset is fitted for one iteration on every rating: similar items read the item factors
(``factors``) or the remembered ratings (``ratings``, ``cooccurrence``), and neither
depends on how long the model trained. For each similarity: the first call (which builds
what it reads: the arrays kept, each counted once, and the resident memory added, which
memory freed earlier makes smaller), then the mean time of one query, n=10,
for the 10 most-rated items and for the 10 items ranked 5,001st to 5,010th by ratings.

With ``--workers N``, it then saves the model and starts ``mfrec serve --workers N --top-k 0``,
waits until every worker says its similar-items arrays are ready, and prints each worker's
resident memory (RSS), its proportional share (PSS: a page mapped by k processes counts 1/k)
and its private memory, from ``/proc/PID/smaps_rollup`` (Linux).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def resident_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cached_mb(model) -> float:
    """The arrays similar items keep for ``ratings`` and ``cooccurrence``, each counted once, in MB."""
    arrays: dict[int, int] = {}
    for key, value in getattr(model, "_item_columns", {}).items():
        if key == "seen":  # the model's own array, not made for similar items
            continue
        parts = (value.data, value.indices, value.indptr) if hasattr(value, "indptr") else (value,)
        for part in parts:
            if isinstance(part, np.ndarray):
                arrays[part.__array_interface__["data"][0]] = part.nbytes
    return sum(arrays.values()) / 2**20


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and private memory of process ``pid`` in MB (``/proc/PID/smaps_rollup``)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            fields[name] = int(rest.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "private": fields["Private_Clean"] + fields["Private_Dirty"]}  # fmt: skip


def served_memory(model, workers: int) -> None:
    """Serve ``model`` with ``workers`` workers and print each one's memory once its similar items are ready."""
    import socket

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        model.save(path)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [sys.executable, "-m", "mfrec.cli", "serve", str(path), "--port", str(port),
                   "--workers", str(workers), "--top-k", "0", "--watch", "0"]  # fmt: skip
        started = time.perf_counter()
        server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(server.stderr), daemon=True).start()
        try:
            while sum("similar items ready" in line for line in lines) < workers:
                if server.poll() is not None or time.perf_counter() - started > 1800:
                    raise SystemExit("the server stopped or took too long:\n" + "".join(lines[-20:]))
                time.sleep(0.5)
            print(f"\nmfrec serve --workers {workers}: ready in {time.perf_counter() - started:.0f} s")
            for line in lines:
                if re.search(r"similar items ready|not used", line):
                    print("  " + line.strip())
            children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
            print("| process | RSS | PSS | private |\n|---|---:|---:|---:|")
            processes = [("supervisor", server.pid), *((f"worker {i + 1}", int(c)) for i, c in enumerate(children))]
            for name, pid in processes:
                m = memory_mb(pid)
                print(f"| {name} | {m['rss']:.0f} MB | {m['pss']:.0f} MB | {m['private']:.0f} MB |", flush=True)
        finally:
            server.terminate()
            server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of the synthetic ml-25m (made when missing)")
    parser.add_argument("--fraction", type=float, default=1.0, help="size of the synthetic set made when missing")
    parser.add_argument("--workers", type=int, default=0, help="then serve with this many workers and print memory")
    args = parser.parse_args()
    from mfrec import MatrixFactorization, load_dataset
    from mfrec.data.synthetic import write_like

    data = args.data or Path(tempfile.gettempdir()) / "mfrec-scale" / "ml-25m"
    if not (data / "ratings.csv").is_file():
        print(f"writing the synthetic set to {data} ...", flush=True)
        write_like("ml-25m", data.parent, fraction=args.fraction)
    ratings = load_dataset("ml-25m", data)
    print(f"{len(ratings):,} ratings, {ratings.n_users:,} users, {ratings.n_items:,} items", flush=True)
    model = MatrixFactorization.from_preset("implicit", device="cpu", epochs=1).fit(ratings)
    del ratings
    counts = model.item_counts_
    order = np.argsort(-counts, kind="stable")
    groups = {"the 10 most-rated items": order[:10], "the items ranked 5,001-5,010": order[5000:5010]}
    print("| similarity | first call | arrays it keeps | resident memory added | " + " | ".join(groups) + " |\n"
          "|---|---:|---:|---:|---:|---:|")  # fmt: skip
    for similar in ("factors", "ratings", "cooccurrence"):  # cooccurrence reads a part of what ratings built
        kept, before, started = cached_mb(model), resident_mb(), time.perf_counter()
        model.similar_items(model.item_map_.raw(order[:1]), 10, similar=similar)
        first, added, kept = time.perf_counter() - started, resident_mb() - before, cached_mb(model) - kept
        cells = []
        for items in groups.values():
            raw = model.item_map_.raw(items)
            started = time.perf_counter()
            for item in raw:
                model.similar_items(item, 10, similar=similar)
            cells.append(f"{(time.perf_counter() - started) / len(raw) * 1000:.0f} ms "
                         f"({counts[items].mean():,.0f} ratings)")  # fmt: skip
        row = [similar, f"{first:.1f} s", f"{kept:+.0f} MB", f"{added:+.0f} MB", *cells]
        print("| " + " | ".join(row) + " |", flush=True)
    if args.workers:
        served_memory(model, args.workers)


if __name__ == "__main__":
    main()
