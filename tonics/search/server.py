"""A local web page over a search index (FastAPI): type words or drop a picture, see the nearest
images as thumbnails with their scores, click one to search by it.

FastAPI rather than Gradio: the page is one small HTML file with no build step and the API is
plain JSON a script can call too; Gradio would pull a large dependency tree for a text box and a
grid. The server binds 127.0.0.1 unless told otherwise and serves a file only when its path is in
the index *and* its real path, resolved at request time (symlinks followed), is a regular file
inside the indexed folder, whatever a tampered index table says; any other path, crafted or not,
is a 404. No request writes a file: uploaded query pictures are read in memory, and refused above
the CLI's pixel limit before they are decoded.

  GET  /                   the page
  GET  /api/info           model, number of images, vector index kind, embedding width
  GET  /api/search?q=&k=   text to image
  GET  /api/similar?path=&k=  image to image, by an indexed path
  POST /api/image?k=       image to image, the request body is the picture's bytes
  GET  /images/{path}      an indexed image
"""

import io
from importlib import resources
from pathlib import Path

from tonics.data.images import DEFAULT_MAX_PIXELS
from tonics.errors import InputError, optional_import
from tonics.search.query import SearchIndex

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations, and the
# `Request` they name is imported inside `create_app` (a string annotation would not resolve there
# and FastAPI would take `request` for a query parameter).

MAX_UPLOAD = 20 * 1024 * 1024


def served_file(root: Path, path: str) -> Path | None:
    """The file `path` names under `root` if its real path (resolved now, symlinks followed) is a
    regular file inside the real `root`, else None."""
    real_root = Path(root).resolve()
    target = (real_root / path).resolve()
    if not target.is_relative_to(real_root) or not target.is_file():
        return None
    return target


def read_upload(body: bytes):
    """The uploaded picture, decoded; InputError when it is empty, too large, over the pixel
    limit (checked from its header, before decoding) or unreadable."""
    import warnings

    from PIL import Image

    if not body or len(body) > MAX_UPLOAD:
        raise InputError("send one picture of at most 20 MB as the request body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(body))
            if picture.width * picture.height > DEFAULT_MAX_PIXELS:
                raise InputError(
                    f"the picture has {picture.width}x{picture.height} pixels, over the limit of "
                    f"{DEFAULT_MAX_PIXELS:,}; send a smaller one"
                )
            picture.load()
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - whatever it is, it is not a picture we can read
        raise InputError("the body is not a readable picture") from None
    return picture


def hits(results) -> list[dict]:
    """Search results as the page reads them: path, score and rank each."""
    return [{"path": h.path, "score": round(h.score, 4), "rank": h.rank} for h in results]


def index_info(index: SearchIndex) -> dict:
    """What the page shows of the index: the model, the number of images, index kind, width."""
    manifest = index.manifest
    model = manifest.get("model") or " + ".join(manifest.get("baseline", []))
    return {
        "model": model,
        "images": len(index),
        "index": manifest["index"],
        "dim": manifest["dim"],
    }


def create_app(index: SearchIndex):
    """The FastAPI application serving `index`."""
    optional_import("fastapi", "tonics search serve")
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse

    app = FastAPI(title="tonics search", docs_url=None, redoc_url=None)
    page = resources.files("tonics.search").joinpath("page.html").read_text()

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return page

    @app.get("/api/info")
    def info() -> dict:
        return index_info(index)

    @app.get("/api/search")
    def by_words(q: str, k: int = 12) -> list[dict]:
        try:
            return hits(index.text(q, max(1, min(k, 200))))
        except InputError as err:
            raise HTTPException(400, str(err)) from None

    @app.get("/api/similar")
    def by_indexed_image(path: str, k: int = 12) -> list[dict]:
        if path not in index.row_of:
            raise HTTPException(404, "not in the index")
        return hits(index.image(path, max(1, min(k, 200))))

    @app.post("/api/image")
    async def by_uploaded_image(request: Request, k: int = 12) -> list[dict]:
        try:
            picture = read_upload(await request.body())
        except InputError as err:
            raise HTTPException(400, str(err)) from None
        return hits(index.image(picture, max(1, min(k, 200))))

    @app.get("/images/{path:path}")
    def image(path: str):
        target = served_file(index.root, path) if path in index.row_of else None
        if target is None:  # only indexed files, really inside the folder, now
            raise HTTPException(404, "not in the index")
        return FileResponse(target)

    return app


def serve(index_path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the page until interrupted."""
    uvicorn = optional_import("uvicorn", "tonics search serve")

    uvicorn.run(create_app(SearchIndex(index_path)), host=host, port=port, log_level="warning")
