"""The one image-caption pair record that every reader produces and every later stage consumes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from tonics.errors import InputError


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where an image's bytes live: a file, a member of a tar shard, or bytes in memory. A tar
    member with `offset`/`size` (from a shard index) is read with one seek + read."""

    path: str | None = None
    tar_member: str | None = None
    data: bytes | None = field(default=None, repr=False)
    offset: int | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.path is None and self.data is None:
            raise ValueError("an ImageRef needs a path (file or tar shard) or in-memory bytes")
        if self.tar_member is not None and self.path is None:
            raise ValueError("a tar member needs the shard's path")

    def describe(self) -> str:
        """Human-readable location, for skip reports and errors."""
        if self.tar_member is not None:
            return f"{self.path}::{self.tar_member}"
        return self.path if self.path is not None else f"<{len(self.data or b'')} bytes in memory>"


@dataclass(frozen=True, slots=True)
class PairRecord:
    """One image-caption pair. Several pairs may share an `image_id` (COCO has ~5 per image).

    `objects` holds object labels that come with the data (COCO category names, demo categories),
    not ones extracted from the caption: the ontology does that.
    """

    pair_id: str
    image: ImageRef
    caption: str
    image_id: str
    split: str = "train"
    objects: tuple[str, ...] = ()


SPLITS = ("train", "val", "test")


def select_split(records: list[PairRecord], split: str) -> list[PairRecord]:
    """The records of one split; an empty result is an error naming the split and what exists.
    A columnar table (`tonics.data.pair_table`) answers from its columns."""
    if hasattr(records, "select_split"):
        return records.select_split(split)
    chosen = [r for r in records if r.split == split]
    if not chosen:
        present = splits_of(records)
        raise InputError(f"split '{split}' is empty; the data has splits {present}")
    return chosen


def image_subset(records: list[PairRecord], fraction: float, seed: int = 0) -> list[PairRecord]:
    """The pairs of a seeded `fraction` of the distinct images (all their captions kept), in the
    records' order. Images are ranked once by a hash of (seed, image id), so subsets are nested:
    the 10% subset lies inside the 25% one, which lies inside the 50% one."""
    if fraction >= 1:
        return records
    if hasattr(records, "image_subset"):  # a columnar table: the same subset from its columns
        return records.image_subset(fraction, seed)
    images = sorted({r.image_id for r in records}, key=lambda i: image_rank(seed, i))
    keep = set(images[: max(1, round(fraction * len(images)))])
    return [r for r in records if r.image_id in keep]


def image_rank(seed: int, image_id: str) -> bytes:
    """Where an image falls in the seeded order that `image_subset` keeps a prefix of."""
    return hashlib.blake2b(
        f"{seed}\x1f{image_id}".encode("utf-8", "replace"), digest_size=8
    ).digest()


def normalise_caption(caption: str) -> str:
    """A caption as compared for duplicates: lower case, single spaces, no surrounding
    punctuation."""
    return " ".join(caption.lower().split()).strip(" .,;:!?\"'")


def _key(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def pair_key(image_id: str, caption: str) -> tuple[int, int]:
    """(image key, caption key): two pairs with an equal key are true matches of each other, so the
    loss must not treat them as negatives. Stable 64-bit hashes, identical on every rank."""
    return _key("image\x1f" + image_id), caption_key(caption)


def caption_key(caption: str) -> int:
    """A stable 64-bit hash of the normalised caption: equal for captions compared as equal."""
    return _key("caption\x1f" + normalise_caption(caption))


def group_codes(records) -> tuple[Sequence[int], Sequence[int]]:
    """Each pair's image number and normalised-caption number (0, 1, ... in order of appearance):
    what the sampler counts as distinct images and captions. A columnar table
    (`tonics.data.pair_table`) gives its stored codes as arrays."""
    if hasattr(records, "group_codes"):
        return records.group_codes()
    images: dict[str, int] = {}
    captions: dict[str, int] = {}
    image_codes = [images.setdefault(r.image_id, len(images)) for r in records]
    caption_codes = [
        captions.setdefault(normalise_caption(r.caption), len(captions)) for r in records
    ]
    return image_codes, caption_codes


def sorted_by_image(records):
    """The records ordered by image id (stable): evaluation's order."""
    if hasattr(records, "sorted_by_image"):
        return records.sorted_by_image()
    return sorted(records, key=lambda r: r.image_id)


def pair_ids_of(records) -> Sequence[str]:
    """The records' pair ids (a columnar table's lazy column, else a list)."""
    return records.pair_ids if hasattr(records, "pair_ids") else [r.pair_id for r in records]


def splits_of(records) -> list[str]:
    """The names of the splits the records hold, sorted."""
    if hasattr(records, "select_split"):  # a columnar table: from its split column
        return records.splits()
    return sorted({r.split for r in records})
