"""Turn a demo source (PNG file, emoji font glyph, SVG) into the demo's small RGB JPEG, and take
the perceptual hash that keeps near-duplicates inside one split. Runs in worker processes."""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tonics.data.images import to_rgb
from tonics.errors import optional_import

MAX_SOURCE_PIXELS = 25_000_000
IMAGE_SIDE = 160  # the vision encoder resizes to 256/224 anyway; small files keep the demo light


@lru_cache(maxsize=1)
def _emoji_font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, 109)  # Noto Color Emoji's only bitmap size


def render_emoji(chars: str, font: ImageFont.FreeTypeFont) -> Image.Image | None:
    """The emoji drawn in colour on white, or None when the font has no single glyph for it."""
    canvas = Image.new("RGBA", (200, 160), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((10, 15), chars, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None or box[2] - box[0] > 150:
        return None  # nothing drawn, or a sequence the font draws as several glyphs side by side
    colours = canvas.convert("RGB").resize((16, 16)).getcolors(256)
    if colours is not None and len(colours) < 3:
        return None  # a blank or single-colour "tofu" box
    return to_rgb(canvas.crop((0, 0, 160, 160)))


def render_svg(path: str) -> Image.Image | None:
    """An SVG drawn at the demo's size on white (None when resvg cannot draw it)."""
    resvg_py = optional_import("resvg_py", "drawing the demo's SVG sources")

    try:
        png = resvg_py.svg_to_bytes(
            svg_path=path,
            width=IMAGE_SIDE,
            height=IMAGE_SIDE,
            background="#ffffff",
            skip_system_fonts=True,
        )
    except ValueError:
        return None
    return to_rgb(Image.open(io.BytesIO(bytes(png))))


def render_file(path: str) -> Image.Image | None:
    """A raster file as RGB on white (None for oversized posters)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # size checked below
        source = Image.open(path)
    with source:
        if source.width * source.height > MAX_SOURCE_PIXELS:
            return None  # a few posters are 600M pixels: minutes to decode, no use at 160 px
        if source.width * source.height > 4 * IMAGE_SIDE * IMAGE_SIDE:
            source.draft("RGB", (IMAGE_SIDE, IMAGE_SIDE))
            source.thumbnail((4 * IMAGE_SIDE, 4 * IMAGE_SIDE), reducing_gap=2.0)
        return to_rgb(source)


def write_image(task: tuple[tuple[str, str], str, str]) -> int | None:
    """Render one source to `target` (JPEG, at most IMAGE_SIDE a side); its 64-bit perceptual
    hash, or None when the source gives no usable image."""
    imagehash = optional_import("imagehash", "the demo's near-duplicate check")

    (kind, what), target, font_path = task
    try:
        if kind == "font":
            image = render_emoji(what, _emoji_font(font_path))
        elif kind == "svg":
            image = render_svg(what)
        else:
            image = render_file(what)
    except OSError:
        return None  # a damaged source file: left out, counted by the caller
    if image is None:
        return None
    image.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    image.save(target, "JPEG", quality=90)
    with Image.open(target) as written:  # the hash of the pixels every reader will see
        return int(str(imagehash.phash(written)), 16)
