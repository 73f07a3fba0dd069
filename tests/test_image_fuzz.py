"""Fuzzing the image path: no mutated, oversized or hostile image escapes as an exception from
`PairDataset.__getitem__`, and none takes more than a bounded amount of memory."""

from __future__ import annotations

import io
import random
import resource
import struct
import zlib

import pytest
from PIL import Image, ImageOps

from tonics.data.batches import PairDataset
from tonics.data.images import load_image
from tonics.data.records import ImageRef, PairRecord
from tonics.model.packaged import imagenet_image_processor

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


def _seeds() -> list[bytes]:
    rng = random.Random(0)
    images = []
    for fmt in FORMATS:
        for mode, size in (("RGB", (48, 32)), ("L", (17, 40)), ("RGBA", (33, 33))):
            if fmt == "JPEG" and mode == "RGBA":
                continue
            image = Image.new(mode, size)
            image.putdata(
                [
                    tuple(rng.randrange(256) for _ in mode) if len(mode) > 1 else rng.randrange(256)
                    for _ in range(size[0] * size[1])
                ]
            )
            buffer = io.BytesIO()
            image.save(buffer, fmt)
            images.append(buffer.getvalue())
    return images


def _png_with_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:  # flip bytes anywhere
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # truncate
        data = data[: rng.randrange(1, len(data))]
    elif kind == 2:  # corrupt the header, where sizes and offsets live
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(min(64, len(data)))] = rng.randrange(256)
    elif kind == 3:  # a huge size field written into the header
        at = rng.randrange(min(40, len(data) - 4))
        data[at : at + 4] = struct.pack(
            rng.choice([">I", "<I"]), rng.choice([65535, 30000, 2**31 - 1])
        )
    else:  # splice two halves of different files
        data = data[: len(data) // 2] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    return bytes(data)


def test_fuzzed_images_never_escape_and_stay_within_memory():
    rng = random.Random(2026)
    seeds = _seeds()
    payloads = [_mutate(rng.choice(seeds), rng) for _ in range(1100)]
    payloads += [
        _png_with_size(30000, 30000),
        _png_with_size(20000, 20000),
        _png_with_size(20000, 1),
    ]
    records = [
        PairRecord(str(i), ImageRef(data=p), "a thing", str(i)) for i, p in enumerate(payloads)
    ]
    dataset = PairDataset(records, imagenet_image_processor())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    failures = 0
    for index in range(len(records)):
        item = dataset[index]  # must not raise
        assert (item["pixel_values"] is None) == (item["failure"] is not None)
        failures += item["failure"] is not None
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 512, f"peak memory grew by {grown_mib:.0f} MiB"
    assert 100 < failures < len(records)  # the fuzz does break images, and not all of them


@pytest.mark.parametrize(
    "payload,reason",
    [
        (_png_with_size(30000, 30000), "too many pixels"),
        (_png_with_size(20000, 20000), "too many pixels"),  # under PIL's bomb limit, over ours
        (_png_with_size(20000, 1), "extreme aspect ratio"),
    ],
    ids=["30000x30000", "20000x20000", "20000x1"],
)
def test_oversized_images_skip_from_the_header(payload, reason):
    image, failure = load_image(ImageRef(data=payload))
    assert image is None and failure.startswith(reason)


def test_a_broken_exif_block_is_a_skip_not_a_crash(monkeypatch):
    def broken(image):
        raise struct.error("unpack requires a buffer of 12 bytes")  # what a bad EXIF IFD raises

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    assert load_image(ImageRef(data=buffer.getvalue())) == (None, "corrupt image (error)")


def test_jpegs_decode_in_draft_mode_near_the_processor_size():
    buffer = io.BytesIO()
    Image.new("RGB", (2048, 1536), (90, 120, 200)).save(buffer, "JPEG")
    from tonics.data.images import ImageLimits

    image, failure = load_image(ImageRef(data=buffer.getvalue()), ImageLimits(draft_size=256))
    assert failure is None and min(image.size) >= 256 and image.size[0] <= 512
