"""End to end in a real headless browser: Debian's chromium driven by Playwright.

Loads the page served by ``mfrec serve``'s app, searches, rates three movies, and
waits for ten recommendations; the screenshot is written to test-output/browser/.
"""

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[1] / "test-output" / "browser"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(ml_split):
    uvicorn = pytest.importorskip("uvicorn")
    from mfrec import MatrixFactorization
    from mfrec.serve import create_app

    model = MatrixFactorization.from_preset("default", device="cpu").fit(ml_split.train, ml_split.val)
    model.set_seen(ml_split.data)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(model), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def test_rate_three_movies_and_get_ten_recommendations(server, browser, ml_split, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('factors')")
    for query, title in (("toy story", "Toy Story (1995)"), ("matrix", "Matrix, The (1999)"),
                         ("godfather", "Godfather, The (1972)")):  # fmt: skip
        page.fill("#search", query)
        page.get_by_role("button", name=f"5 stars for {title}").click()
        page.wait_for_function(
            "(t) => document.getElementById('rated').textContent.includes(t)", arg=title.split(" (")[0]
        )
    page.wait_for_function("document.querySelectorAll('#recs li .title').length === 10")
    recommended = page.locator("#recs li .title").all_inner_texts()
    assert len(recommended) == 10 and not {"Toy Story (1995)", "Matrix, The (1999)"} & set(recommended)
    page.wait_for_function("document.querySelectorAll('#recs li .because').length > 0")
    assert "because you rated" in page.locator("#recs li .because").first.inner_text()
    page.select_option("#genre", "Animation")  # a genre filter: every recommendation is an animated film
    page.wait_for_function("(before) => document.querySelector('#recs li .title').textContent !== before",
                           arg=recommended[0])  # fmt: skip
    page.wait_for_function("document.querySelectorAll('#recs li .title').length === 10")
    genres = ml_split.data.genres[np.argsort(ml_split.data.titles.astype(str))]
    by_title = dict(zip(np.sort(ml_split.data.titles.astype(str)), genres, strict=True))
    assert all("Animation" in by_title[t] for t in page.locator("#recs li .title").all_inner_texts())
    page.get_by_role("button", name="Clear your rating of Godfather, The (1972)").click()
    page.wait_for_function("!document.getElementById('rated').textContent.includes('Godfather')")
    page.locator("#recs li .title").first.click()
    page.wait_for_function("document.querySelectorAll('#similar li .title').length === 10")
    page.fill("#user", "1")
    page.wait_for_function("document.querySelectorAll('#user-recs li .title').length === 10")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
