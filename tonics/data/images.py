"""Decode images robustly: every PIL mode to RGB, EXIF orientation applied, failures reported.

A corrupt, truncated, zero-byte, missing or non-image file, or one too large to decode safely
(pixel count or aspect ratio read from its header), is never an exception in a worker:
`load_image` returns None and the reason, and the collate function counts it.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageOps, UnidentifiedImageError

from tonics.data.records import ImageRef

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
DEFAULT_MAX_PIXELS = 90_000_000
DEFAULT_MAX_ASPECT = 50.0
# our own header check (ImageLimits) decides; PIL's bomb guard stays as a backstop above it
Image.MAX_IMAGE_PIXELS = 20_000 * 20_000


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


class NotARegularFile(OSError):
    """A path that names a FIFO, a device or a directory: never opened (it could block)."""


def check_regular(path: str | os.PathLike) -> None:
    """Raise NotARegularFile (or FileNotFoundError) unless `path` is a regular file, without
    opening it (symlinks followed)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotARegularFile(f"{path}: not a regular file")


def read_bytes(ref: ImageRef) -> bytes:
    """The raw bytes behind an ImageRef (file, tar member, or memory); a path that is not a
    regular file (a FIFO would block) raises NotARegularFile before it is opened."""
    if ref.data is not None:
        return ref.data
    check_regular(ref.path)
    if ref.offset is not None and ref.size is not None:
        with open(ref.path, "rb") as handle:
            handle.seek(ref.offset)
            data = handle.read(ref.size)
        if len(data) != ref.size:
            raise OSError(f"{ref.describe()}: shard shorter than its index says; re-index it")
        return data
    if ref.tar_member is not None:
        member = _open_tar(ref.path).extractfile(ref.tar_member)
        if member is None:
            raise FileNotFoundError(f"{ref.describe()} is not a regular file")
        return member.read()
    with open(ref.path, "rb") as handle:
        return handle.read()


def processor_draft_size(image_processor) -> int | None:
    """The short side an image processor resizes to: JPEGs can be decoded at about that size."""
    size = getattr(image_processor, "size", None) or {}
    if isinstance(size, dict):
        side = size.get("shortest_edge") or min(size.get("height", 0), size.get("width", 0)) or None
        return int(side) if side else None
    return int(size) if isinstance(size, int) else None


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be before it is decoded, checked from its header.

    max_pixels: larger images are skipped (a decompression bomb, or a poster no training needs:
        90M pixels is about 11k x 8k).
    max_aspect: longer side / shorter side (default 50); a 20000 x 1 strip would make the
        processor's short-side resize allocate gigabytes.
    draft_size: JPEGs are decoded directly at a reduced scale that keeps the short side >= this
        (None: full size).
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_aspect: float = DEFAULT_MAX_ASPECT
    draft_size: int | None = None


def _refusal(image: Image.Image, limits: ImageLimits) -> str | None:
    width, height = image.size
    if width <= 0 or height <= 0:
        return "empty image (0 pixels)"
    if width * height > limits.max_pixels:
        return (
            f"too many pixels ({width}x{height} > {limits.max_pixels}; raise "
            "data.images.max_pixels)"
        )
    if max(width, height) / min(width, height) > limits.max_aspect:
        return (
            f"extreme aspect ratio ({width}x{height} > {limits.max_aspect:g}:1; "
            "raise data.images.max_aspect)"
        )
    return None


def load_image(
    ref: ImageRef, limits: ImageLimits = ImageLimits()
) -> tuple[Image.Image | None, str | None]:
    """(RGB image, None) on success, (None, reason) when the image cannot be used: no exception
    from reading, opening, checking, decoding, EXIF transposing or converting escapes."""
    try:
        raw = read_bytes(ref)
        if not raw:
            return None, "zero-byte file"
        with warnings.catch_warnings():  # decoder complaints (corrupt EXIF...) are noise here
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as image:  # reads the header only
                refusal = _refusal(image, limits)
                if refusal:
                    return None, refusal
                if limits.draft_size and image.format == "JPEG":
                    image.draft("RGB", (limits.draft_size, limits.draft_size))
                image.load()
                return to_rgb(image), None
    except FileNotFoundError:
        return None, "missing file"
    except NotARegularFile:
        return None, "not a regular file (a FIFO, device or directory)"
    except UnidentifiedImageError:
        return None, "not an image"
    except Image.DecompressionBombError:
        return None, "too many pixels (decompression bomb)"
    except MemoryError:
        return None, "out of memory while decoding"
    except Exception as err:  # noqa: BLE001 - any decoder failure is a skipped image, never a crash
        return None, f"corrupt image ({type(err).__name__})"
