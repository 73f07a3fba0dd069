"""The search page in a real browser (Debian's headless Chromium driven by Playwright, nothing
downloaded), served on a free loopback port by the test itself: type words, see k thumbnails load,
click one, see the image-to-image results; a screenshot is kept as an artefact. Crafted paths get
404 and no request writes a file."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import socket
import struct
import threading
import time
import zlib
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


@contextlib.contextmanager
def serving(index_dir: Path):
    """The search app of `index_dir` on a free loopback port, for the block; yields the port."""
    import uvicorn

    from tonics.search.server import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(search.open(index_dir)), host="127.0.0.1", port=port, log_level="warning"
    )
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if app_server.started:
            break
        time.sleep(0.1)
    try:
        yield port
    finally:
        app_server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture()
def server(exported, tmp_path):  # noqa: F811
    photos = _photos(tmp_path / "photos", n=16)
    (tmp_path / "secret.txt").write_text("not to be served")
    search.build(photos, tmp_path / "ix", model=str(exported))
    with serving(tmp_path / "ix") as port:
        yield port, tmp_path


def _status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)  # sent as written: no client-side normalisation
    return connection.getresponse().status


def _post(port: int, path: str, body: bytes) -> tuple[int, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, body=body, headers={"Content-Type": "image/png"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels and whose data is a few bytes: what a
    decompression bomb looks like before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_an_uploaded_picture_is_answered_and_one_over_the_pixel_limit_is_refused(server):
    from PIL import Image

    port, root = server
    picture = io.BytesIO()
    Image.open(root / "photos" / "sub" / "red-0.png").save(picture, "PNG")
    status, hits = _post(port, "/api/image?k=3", picture.getvalue())
    assert status == 200 and len(hits) == 3
    assert hits[0]["path"] == "sub/red-0.png"  # the picture itself is its own nearest image
    bomb = _png_header_only(13_000, 13_000)
    assert len(bomb) < 200
    with Image.open(io.BytesIO(bomb)) as planted:  # the plant: Pillow would accept its header
        assert planted.size == (13_000, 13_000)
    status, answer = _post(port, "/api/image?k=3", bomb)
    assert status == 400
    assert answer == {
        "detail": "the picture has 13000x13000 pixels, over the limit of 90,000,000; "
        "send a smaller one"
    }
    status, answer = _post(port, "/api/image?k=3", b"not a picture")
    assert (status, answer) == (400, {"detail": "the body is not a readable picture"})


def test_a_tampered_index_serves_no_file_outside_its_folder(exported, tmp_path):  # noqa: F811
    """Paths planted in the index table (`../secret.txt`, an absolute path) and an indexed file
    swapped for a symlink after indexing are refused when requested; the plants are in the
    index the server reads (the table says so), so only the request-time check stops them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    photos = _photos(tmp_path / "photos", n=8)
    secret = tmp_path / "secret.txt"
    secret.write_text("not to be served")
    outside = tmp_path / "outside.png"
    shutil.copy(photos / "sub" / "red-0.png", outside)
    search.build(photos, tmp_path / "ix", model=str(exported))
    table = pq.read_table(tmp_path / "ix" / "table.parquet").to_pylist()
    indexed = [r["path"] for r in table if r["row"] >= 0]
    planted = {indexed[0]: "../secret.txt", indexed[1]: str(outside)}
    for row in table:
        row["path"] = planted.get(row["path"], row["path"])
    pq.write_table(pa.Table.from_pylist(table), tmp_path / "ix" / "table.parquet")
    swapped = photos / indexed[2]
    swapped.unlink()
    swapped.symlink_to(outside)
    assert {"../secret.txt", str(outside), indexed[2]} <= set(search.open(tmp_path / "ix").row_of)
    with serving(tmp_path / "ix") as port:
        assert _status(port, "/images/" + indexed[3]) == 200  # an untouched file still serves
        assert _status(port, "/images/../secret.txt") == 404
        assert _status(port, "/images/%2E%2E/secret.txt") == 404
        assert _status(port, "/images/" + str(outside)) == 404
        assert _status(port, "/images/" + indexed[2]) == 404  # now a symlink out of the folder


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

    port, root = server
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
            "[...document.querySelectorAll('#results img')].every(i => i.complete && "
            "i.naturalWidth > 0)"
        )
        chosen = page.locator("#results figure.hit").nth(3).get_attribute("data-path")
        page.locator("#results figure.hit").nth(3).click()
        page.wait_for_function(
            "document.getElementById('status').textContent.includes('images like')"
        )
        page.wait_for_function("document.querySelectorAll('#results figure.hit').length === 12")
        assert page.locator("#results figure.hit").first.get_attribute("data-path") == chosen
        dropped = root / "photos" / "sub" / "red-0.png"
        with page.expect_response("**/api/image?k=12") as answered:  # a real drop event
            page.evaluate(
                """async (bytes) => {
                    const file = new File([new Uint8Array(bytes)], "red.png", {type: "image/png"});
                    const data = new DataTransfer();
                    data.items.add(file);
                    const drop = document.getElementById("drop");
                    drop.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
                }""",
                list(dropped.read_bytes()),
            )
        assert answered.value.status == 200
        page.wait_for_function(
            "document.getElementById('status').textContent === '12 results for the dropped picture'"
        )
        assert (
            page.locator("#results figure.hit").first.get_attribute("data-path") == "sub/red-0.png"
        )
        page.screenshot(path=str(artefacts / "search_page.png"), full_page=True)
        browser.close()
    assert (artefacts / "search_page.png").stat().st_size > 5000
