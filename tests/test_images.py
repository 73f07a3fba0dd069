"""Image decoding: every mode to RGB, EXIF orientation, failures reported not raised."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tonics.data.images import load_image
from tonics.data.records import ImageRef


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("L", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("LA", "PNG"), ("I;16", "PNG")],
)
def test_modes_become_rgb(mode, fmt):
    image, failure = load_image(ImageRef(data=_encoded(Image.new(mode, (6, 4)), fmt)))
    assert failure is None and image.mode == "RGB" and image.size == (6, 4)


def test_transparent_pixels_become_white():
    image, _ = load_image(ImageRef(data=_encoded(Image.new("RGBA", (2, 2), (255, 0, 0, 0)), "PNG")))
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image, _ = load_image(ImageRef(data=_encoded(Image.new("RGB", (8, 4)), "JPEG", exif=exif)))
    assert image.size == (4, 8)


def test_failures_are_reported(tmp_path):
    good = _encoded(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image at all")
    cases = {
        "truncated.jpg": "corrupt",
        "empty.jpg": "zero-byte",
        "text.jpg": "not an image",
        "missing.jpg": "missing",
    }
    for name, reason in cases.items():
        image, failure = load_image(ImageRef(path=str(tmp_path / name)))
        assert image is None and reason in failure, (name, failure)
