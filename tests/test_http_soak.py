"""A real `mfrec serve` process: it binds 127.0.0.1 by default, and 50 concurrent clients
hitting it for 30 s get no errors."""

import asyncio
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a listening TCP socket on ``port``, from /proc/net/tcp."""
    found = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mfrec import MatrixFactorization
    from tests.conftest import low_rank_ratings

    path = tmp_path_factory.mktemp("serve") / "model.safetensors"
    MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=8).fit(low_rank_ratings()).save(path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "mfrec.cli", "serve", str(path), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"server did not start: {process.stderr.read().decode()[-500:]}")
    yield base, port
    process.terminate()
    process.wait(timeout=20)


def test_binds_loopback_by_default(server):
    _, port = server
    assert listening_addresses(port) == {"127.0.0.1"}


def test_fifty_clients_for_thirty_seconds_without_errors(server):
    base, _ = server
    paths = ["/v1/users/{u}/recommendations?n=10", "/v1/items/{i}/similar?n=5", "/v1/items?query=1&limit=5",
             "/v1/users/{u}/ratings?n=3"]  # fmt: skip

    async def client(index: int, stop_at: float, results: list) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            k = 0
            while time.perf_counter() < stop_at:
                path = paths[k % len(paths)].format(u=100 + (index + k) % 60, i=1000 + (index * 7 + k) % 40)
                try:
                    response = await http.get(path)
                    results.append(response.status_code)
                except httpx.HTTPError as exc:
                    results.append(type(exc).__name__)
                k += 1
                await asyncio.sleep(0.02)

    async def run() -> list:
        results: list = []
        stop_at = time.perf_counter() + 30
        await asyncio.gather(*(client(i, stop_at, results) for i in range(50)))
        return results

    results = asyncio.run(run())
    errors = [r for r in results if r != 200]
    assert len(results) > 1000 and not errors, errors[:5]
