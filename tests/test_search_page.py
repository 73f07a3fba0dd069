"""The search page in a real browser (Debian's headless Chromium driven by Playwright, nothing
downloaded), served on a free loopback port by the test itself: type words, see k thumbnails load,
click one, see the image-to-image results; a screenshot is kept as an artefact. Crafted paths get
404 and no request writes a file."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from test_search import _photos, exported  # noqa: F401 - the exported-model fixture

import tonics.search as search

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def server(exported, tmp_path):  # noqa: F811
    import uvicorn

    from tonics.search.server import create_app

    photos = _photos(tmp_path / "photos", n=16)
    (tmp_path / "secret.txt").write_text("not to be served")
    search.build(photos, tmp_path / "ix", model=str(exported))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(search.open(tmp_path / "ix")), host="127.0.0.1", port=port, log_level="warning"
    )
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if app_server.started:
            break
        time.sleep(0.1)
    yield port, tmp_path
    app_server.should_exit = True
    thread.join(timeout=10)


def _status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)  # sent as written: no client-side normalisation
    return connection.getresponse().status


def test_crafted_paths_get_404_and_requests_write_nothing(server):
    port, root = server
    before = sorted(p for p in root.rglob("*"))
    assert _status(port, "/images/sub/red-0.png") == 200
    for crafted in (
        "/images/../secret.txt",
        "/images/..%2Fsecret.txt",
        "/images/%2E%2E/secret.txt",
        f"/images/{root}/secret.txt",
        "/images/sub/../../secret.txt",
        "/images/nothere.png",
    ):
        assert _status(port, crafted) == 404, crafted
    assert _status(port, "/api/search?q=a%20red%20square&k=3") == 200
    assert sorted(p for p in root.rglob("*")) == before


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is installed by scripts/install.sh"
)
def test_search_by_words_then_click_for_similar_images(server, tmp_path):
    from playwright.sync_api import sync_playwright

    port, _ = server
    artefacts = Path(os.environ.get("TONICS_TEST_ARTIFACTS", tmp_path))
    artefacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("document.getElementById('info').textContent.includes('16 images')")
        page.fill("#query", "a green square")
        page.press("#query", "Enter")
        page.wait_for_function("document.querySelectorAll('#results figure.hit').length === 12")
        page.wait_for_function(
            "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        chosen = page.locator("#results figure.hit").nth(3).get_attribute("data-path")
        page.locator("#results figure.hit").nth(3).click()
        page.wait_for_function(
            "document.getElementById('status').textContent.includes('images like')"
        )
        page.wait_for_function("document.querySelectorAll('#results figure.hit').length === 12")
        assert page.locator("#results figure.hit").first.get_attribute("data-path") == chosen
        page.screenshot(path=str(artefacts / "search_page.png"), full_page=True)
        browser.close()
    assert (artefacts / "search_page.png").stat().st_size > 5000
