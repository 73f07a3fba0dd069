"""A local web page over a search index (FastAPI): type words or drop a picture, see the nearest
images as thumbnails with their scores, click one to search by it.

FastAPI rather than Gradio: the page is one small HTML file with no build step and the API is
plain JSON a script can call too; Gradio would pull a large dependency tree for a text box and a
grid. The server binds 127.0.0.1 unless told otherwise, serves only files that are in the index
(any other path, crafted or not, is a 404), and no request writes a file: uploaded query pictures
are read in memory.

  GET  /                   the page
  GET  /api/info           model, number of images, vector index kind, embedding width
  GET  /api/search?q=&k=   text to image
  GET  /api/similar?path=&k=  image to image, by an indexed path
  POST /api/image?k=       image to image, the request body is the picture's bytes
  GET  /images/{path}      an indexed image
"""

from __future__ import annotations

import io
from importlib import resources

from tonics.errors import InputError
from tonics.search.query import SearchIndex

MAX_UPLOAD = 20 * 1024 * 1024


def create_app(index: SearchIndex):
    """The FastAPI application serving `index`."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse

    app = FastAPI(title="tonics search", docs_url=None, redoc_url=None)
    page = resources.files("tonics.search").joinpath("page.html").read_text()

    def hits(results) -> list[dict]:
        return [{"path": h.path, "score": round(h.score, 4), "rank": h.rank} for h in results]

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return page

    @app.get("/api/info")
    def info() -> dict:
        manifest = index.manifest
        model = manifest.get("model") or " + ".join(manifest.get("baseline", []))
        return {
            "model": model,
            "images": len(index),
            "index": manifest["index"],
            "dim": manifest["dim"],
        }

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
        from PIL import Image

        body = await request.body()
        if not body or len(body) > MAX_UPLOAD:
            raise HTTPException(400, "send one picture of at most 20 MB as the request body")
        try:
            picture = Image.open(io.BytesIO(body))
            picture.load()
        except Exception:  # noqa: BLE001 - whatever it is, it is not a picture we can read
            raise HTTPException(400, "the body is not a readable picture") from None
        return hits(index.image(picture, max(1, min(k, 200))))

    @app.get("/images/{path:path}")
    def image(path: str):
        if path not in index.row_of:  # only indexed files: no traversal, no other file
            raise HTTPException(404, "not in the index")
        return FileResponse(index.root / path)

    return app


def serve(index_path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the page until interrupted."""
    import uvicorn

    uvicorn.run(create_app(SearchIndex(index_path)), host=host, port=port, log_level="warning")
