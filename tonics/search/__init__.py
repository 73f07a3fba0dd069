"""Search a photo collection with a trained (or any local dual-encoder) model: text-to-image and
image-to-image, over an index built once and updated as files come and go.

    index = tonics.search.indexing("photos/", "photos.index", model="exported/")
    hits = tonics.search.open("photos.index").text("a red bicycle", k=10)

Import layer (a module imports only layers to its left): model -> ontology -> data ->
caches/eval -> **search**/sampling/analysis -> train -> export -> commands -> cli.
"""

from tonics.search.indexing import build
from tonics.search.query import Hit, SearchIndex

__all__ = ["Hit", "SearchIndex", "build", "open"]


def open(path) -> SearchIndex:  # noqa: A001 - `tonics.search.open(INDEX)`, like `io.open`
    """Open an index directory written by `build` (`tonics search index`)."""
    return SearchIndex(path)
