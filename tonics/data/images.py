"""Decode images robustly: every PIL mode to RGB, EXIF orientation applied, failures reported.

A corrupt, truncated, zero-byte, missing or non-image file is never an exception in a worker:
`load_image` returns None and the reason, and the collate function counts it.
"""

from __future__ import annotations

import io
import tarfile
from functools import lru_cache

from PIL import Image, ImageOps, UnidentifiedImageError

from tonics.data.records import ImageRef

Image.MAX_IMAGE_PIXELS = 20_000 * 20_000  # large COCO-style photos are fine; bombs still refused


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any mode (L, P, RGBA, CMYK, I;16...) to RGB.

    Transparent pixels are composited on white, so clip art and emoji keep their shapes.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    if image.mode.startswith("I;16") or image.mode == "I":
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB")


@lru_cache(maxsize=8)
def _open_tar(path: str) -> tarfile.TarFile:
    return tarfile.open(path, "r")


def read_bytes(ref: ImageRef) -> bytes:
    """The raw bytes behind an ImageRef (file, tar member, or memory)."""
    if ref.data is not None:
        return ref.data
    if ref.tar_member is not None:
        member = _open_tar(ref.path).extractfile(ref.tar_member)
        if member is None:
            raise FileNotFoundError(f"{ref.describe()} is not a regular file")
        return member.read()
    with open(ref.path, "rb") as handle:
        return handle.read()


def load_image(ref: ImageRef) -> tuple[Image.Image | None, str | None]:
    """(RGB image, None) on success, (None, reason) when the image cannot be used."""
    try:
        raw = read_bytes(ref)
        if not raw:
            return None, "zero-byte file"
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            return to_rgb(image), None
    except FileNotFoundError:
        return None, "missing file"
    except UnidentifiedImageError:
        return None, "not an image"
    except (OSError, ValueError, SyntaxError, KeyError, tarfile.TarError) as err:
        return None, f"corrupt image ({type(err).__name__})"
