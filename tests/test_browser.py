"""End to end in a real headless browser: Debian's chromium driven by Playwright.

Loads the page served by ``mfrec serve``'s app at a desktop and a phone size, rates
movies with the mouse, a finger and the keyboard, and checks every state with axe-core
(no serious or critical violation). Screenshots of both sizes are written to
test-output/browser/. A run's report is opened from disk with no network request.
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


def start_server(app, port: int | None = None):
    """``app`` under uvicorn in a thread on loopback: ``(url, stop)``."""
    uvicorn = pytest.importorskip("uvicorn")
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def fitted(ml_split):
    from mfrec import MatrixFactorization

    model = MatrixFactorization.from_preset("default", device="cpu").fit(ml_split.train, ml_split.val)
    model.set_seen(ml_split.data)
    return model


@pytest.fixture(scope="module")
def server(fitted):
    from mfrec.serve import create_app

    url, stop = start_server(create_app(fitted))
    yield url
    stop()


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


def assert_accessible(page, where: str) -> None:
    """axe-core on the page as it is now: no violation of serious or critical impact."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for v in violations if v["impact"] in ("serious", "critical")]  # fmt: skip
    assert not bad, f"{where}: " + "; ".join(bad)


def rating(page, title: str):
    return page.get_by_role("radiogroup", name=f"Your rating of {title}")


def test_rate_three_movies_and_get_ten_recommendations(server, browser, ml_split, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    failed = []  # this server has no database: the page must not ask it for profiles
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)  # fmt: skip
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('factors')")
    page.wait_for_function("document.getElementById('saved').textContent.includes('until you leave')")
    assert_accessible(page, "desktop, empty")
    for query, title in (("toy story", "Toy Story (1995)"), ("matrix", "Matrix, The (1999)")):
        page.fill("#search", query)
        rating(page, title).get_by_role("radio", name="5 stars", exact=True).click()
        page.wait_for_function(
            "(t) => document.getElementById('rated').textContent.includes(t)", arg=title.split(" (")[0]
        )
    page.fill("#search", "godfather")  # the keyboard: one key per half-star step
    stars = rating(page, "Godfather, The (1972)")
    stars.get_by_role("radio", name="4 stars", exact=True).click()
    page.keyboard.press("ArrowRight")
    assert stars.get_by_role("radio", name="4.5 stars", exact=True).get_attribute("aria-checked") == "true"
    assert stars.locator("[role=radio][aria-checked=true]").count() == 1
    page.wait_for_function("document.getElementById('rated').textContent.includes('Godfather, The (1972) 4.5★')")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert stars.get_by_role("radio", name="3.5 stars", exact=True).get_attribute("aria-checked") == "true"
    page.wait_for_function("document.querySelectorAll('#recs li .title').length === 10")
    recommended = page.locator("#recs li .title").all_inner_texts()
    assert len(recommended) == 10 and not {"Toy Story (1995)", "Matrix, The (1999)"} & set(recommended)
    assert "Predicted rating in stars" in page.locator("#recs").locator("xpath=..").inner_text()
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
    assert stars.locator("[role=radio][aria-checked=true]").count() == 0
    stars.get_by_role("radio", name="3.5 stars", exact=True).click()  # a half star, as the screenshot shows it
    page.wait_for_function("document.getElementById('rated').textContent.includes('Godfather, The (1972) 3.5★')")
    page.locator("#recs li .title").first.click()
    page.wait_for_function("document.querySelectorAll('#similar li .title').length === 10")
    page.fill("#user", "60")  # any user, not only the first hundred: found by the start of the id
    page.wait_for_function("document.getElementById('user-hint').textContent.includes('starting with “60”')")
    options = page.locator("#user-ids option").evaluate_all("(os) => os.map((o) => o.value)")
    assert options and all(o.startswith("60") for o in options) and "600" in options
    page.fill("#user", "600")
    page.wait_for_function("document.querySelectorAll('#user-recs li .title').length === 10")
    assert_accessible(page, "desktop, everything shown")
    assert not failed, failed
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name in ("page.png", "desktop.png"):
        page.screenshot(path=str(OUTPUT / name), full_page=True)
    assert (OUTPUT / "desktop.png").stat().st_size > 10_000
    page.close()


def test_on_a_phone_tapping_a_title_shows_its_similar_movies(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)  # fmt: skip
    page = context.new_page()
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('factors')")
    page.fill("#search", "toy story")
    rating(page, "Toy Story (1995)").get_by_role("radio", name="4.5 stars", exact=True).tap()
    page.wait_for_function("document.querySelectorAll('#recs li .title').length === 10")
    first = page.locator("#recs li .title").first
    title = first.inner_text()
    first.tap()
    page.wait_for_function("(t) => document.getElementById('similar-head').textContent === `Like ${t}`", arg=title)
    page.wait_for_function("document.querySelectorAll('#similar li .title').length === 10")
    # the Similar panel is scrolled into view: its heading is on the screen, not hundreds of pixels above
    page.wait_for_function("(() => { const r = document.getElementById('similar-head').getBoundingClientRect();"
                           " return r.top >= 0 && r.top < 80; })()")  # fmt: skip
    for target in page.locator("[role=radio], button").all()[:40]:
        box = target.bounding_box()
        if box:  # every control a finger can aim at: 44 px tall, and at least 24 px wide
            assert box["height"] >= 44 and box["width"] >= 24, target.evaluate("(e) => e.outerHTML.slice(0, 80)")
    assert_accessible(page, "phone, similar shown")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "phone.png"))
    assert (OUTPUT / "phone.png").stat().st_size > 10_000
    context.close()


def test_a_run_report_opens_with_every_figure_and_no_network(browser, tmp_path):
    from mfrec.cli import main
    from tests.conftest import low_rank_ratings

    data = tmp_path / "ratings.csv"
    frame = low_rank_ratings().to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    frame.to_csv(data, index=False)
    run = tmp_path / "run"
    assert main(["train", "--ratings", str(data), "--epochs", "3", "--device", "cpu", "-q", "--out", str(run)]) == 0
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((run / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")
    loaded = page.evaluate("Array.from(document.images).map((i) => i.complete && i.naturalWidth > 300)")
    assert loaded == [True] * 5
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert page.get_by_role("heading", name="The long tail").is_visible()
    assert_accessible(page, "report")
    page.screenshot(path=str(OUTPUT / "report.png"), full_page=True)
    page.close()


def test_ratings_survive_a_reload_and_a_server_restart(fitted, browser, tmp_path):
    from mfrec.data.profiles import ProfileStore
    from mfrec.serve import create_app

    url, stop = start_server(create_app(fitted, profiles=ProfileStore(f"sqlite:///{tmp_path / 'p.sqlite'}")))
    port = int(url.rsplit(":", 1)[1])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('saved').textContent.includes('saved in this browser')")
    for query, title, stars in (("toy story", "Toy Story (1995)", "4.5"), ("matrix", "Matrix, The (1999)", "5")):
        page.fill("#search", query)
        rating(page, title).get_by_role("radio", name=f"{stars} stars", exact=True).click()
        page.wait_for_function("(t) => document.getElementById('rated').textContent.includes(t)", arg=title)
    page.wait_for_load_state("networkidle")  # both ratings stored and the last recommendations in
    page.wait_for_function("document.querySelectorAll('#recs li .title').length === 10")
    before = page.locator("#recs li .title").all_inner_texts()
    expected = "You rated 2: Toy Story (1995) 4.5★, Matrix, The (1999) 5★"
    for restart in (False, True):
        if restart:  # a new server process' worth of state: a new app and store over the same database file
            stop()
            url, stop = start_server(create_app(fitted, profiles=ProfileStore(f"sqlite:///{tmp_path / 'p.sqlite'}")),
                                     port)  # fmt: skip
        page.reload()
        page.wait_for_function("document.getElementById('saved').textContent.includes('saved ratings are back')")
        assert page.locator("#rated").inner_text() == expected
        page.wait_for_load_state("networkidle")
        page.wait_for_function("document.querySelectorAll('#recs li .title').length === 10")
        assert page.locator("#recs li .title").all_inner_texts() == before
    assert_accessible(page, "desktop, saved ratings")
    context.close()
    stop()
