"""The demo's image sources and their human-written text, read from registry packages.

- OpenClipart (Debian `openclipart-png` + `openclipart-svg`, public domain): clip art in every
  category, captioned with each SVG's own title and description (boilerplate removed); its keyword
  list becomes one caption only when neither is kept.
- Emoji concepts (one per emoji in `emoji-datasource`'s list, skin-tone variants left out), each
  captioned with its Unicode CLDR English annotation (`unicode-cldr-core`, Unicode licence): the
  name and one keyword caption. Two renderings of every concept are *images of the same concept*
  (positives, one split): Noto Color Emoji (Debian `fonts-noto-color-emoji`, SIL OFL 1.1, drawn
  with Pillow) and Twemoji (npm `emoji-datasource-twitter`, graphics CC BY 4.0).
- OpenMoji (npm `openmoji`, CC BY-SA 4.0, SVG drawn with resvg), captioned with its own
  annotation: a rendering style held out of training entirely, the zero-shot transfer split.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from tonics.data.demo.captions import clean_text, keyword_caption

OPENCLIPART_ROOT = Path("/usr/share/openclipart")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
CLDR_ROOT = Path("/usr/share/unicode/cldr/common")
DEBIAN_PACKAGES = (
    "openclipart-png openclipart-svg fonts-noto-color-emoji unicode-cldr-core wordnet-base"
)
NPM_PACKAGES = {"openmoji": "openmoji@17.0.0", "twemoji": "emoji-datasource-twitter@16.0.0"}
SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))


@dataclass(frozen=True)
class Source:
    """A demo source as the data card and the README describe it."""

    name: str
    package: str
    licence: str
    captions: str


SOURCES = {
    "openclipart": Source(
        "OpenClipart",
        "Debian openclipart-png, openclipart-svg",
        "public domain",
        "SVG title and description; keywords as one caption if neither",
    ),
    "noto-emoji": Source(
        "Noto Color Emoji",
        "Debian fonts-noto-color-emoji (drawn with Pillow)",
        "SIL OFL 1.1",
        "Unicode CLDR English name and keywords (Unicode licence)",
    ),
    "twemoji": Source(
        "Twemoji",
        "npm emoji-datasource-twitter 16.0.0 (64 px PNG)",
        "CC BY 4.0",
        "Unicode CLDR English name and keywords (Unicode licence)",
    ),
    "openmoji": Source(
        "OpenMoji",
        "npm openmoji 17.0.0 (SVG drawn with resvg)",
        "CC BY-SA 4.0",
        "OpenMoji annotation; held out: the transfer split",
    ),
}


@dataclass
class DemoImage:
    """One demo image: where its pixels come from, its captions, and the concept it shows.

    Images with the same `concept` (two renderings of one emoji) are positives of each other: they
    share their captions and always land in the same split.
    """

    key: str
    source: str
    category: str
    captions: list[str]
    concept: str
    render: tuple[str, str]  # ("file", png path) | ("font", characters) | ("svg", svg path)
    split: str | None = None  # fixed by the source (the held-out transfer split), else assigned


def sources_dir() -> Path:
    """Where `scripts/install.sh` unpacks the npm sources: installed data, not a cache, so
    TONICS_CACHE does not move it (TONICS_DEMO_SOURCES does; else $XDG_DATA_HOME/tonics/sources)."""
    override = os.environ.get("TONICS_DEMO_SOURCES")
    if override:
        return Path(override)
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "tonics" / "sources"


class EnglishObjectFilter:
    """Keeps texts that read as English and name at least one WordNet physical object."""

    def __init__(self, min_english_share: float = 0.7) -> None:
        from tonics.ontology import NounExtractor
        from tonics.ontology.extract import STOP_WORDS

        self.extractor = NounExtractor()
        self.stop_words = STOP_WORDS
        self.min_english_share = min_english_share
        self._english: dict[str, bool] = {}

    def is_english_word(self, word: str) -> bool:
        """A word WordNet knows under any part of speech (or a stop word)."""
        known = self._english.get(word)
        if known is None:
            wn = self.extractor.wn
            known = word in self.stop_words or any(wn.morphy(word, pos) for pos in "nvar")
            self._english[word] = known
        return known

    def keep(self, text: str) -> bool:
        """True for an English text that names an object."""
        words = re.findall(r"[a-z]+", text.lower())
        if not words or len(text) > 300:
            return False
        share = sum(self.is_english_word(w) for w in words) / len(words)
        return share >= self.min_english_share and bool(self.extractor.extract(text))


def _unique_kept(texts: list[str], english: EnglishObjectFilter) -> list[str]:
    kept: list[str] = []
    for text in texts:
        if text and text.lower() not in (c.lower() for c in kept) and english.keep(text):
            kept.append(text)
    return kept


def _text(element) -> str:
    return (
        html.unescape(" ".join("".join(element.itertext()).split())) if element is not None else ""
    )


def svg_metadata(svg: Path) -> tuple[str, str, list[str]]:
    """(title, description, keywords) from an OpenClipart SVG's RDF metadata."""
    raw = svg.read_bytes()
    end = raw.find(b"</metadata>")
    start = raw.find(b"<metadata")
    if start < 0 or end < 0:
        return "", "", []
    try:
        meta = ET.fromstring(raw[start : end + len(b"</metadata>")].decode("utf-8", "replace"))
    except ET.ParseError:
        return "", "", []
    ns = {
        "dc": "http://purl.org/dc/elements/1.1/",
        "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "cc": "http://web.resource.org/cc/",
    }
    work = meta.find(".//cc:Work", ns)
    if work is None:
        work = meta
    keywords = [_text(li) for li in work.findall("./dc:subject//rdf:li", ns)]
    return _text(work.find("./dc:title", ns)), _text(work.find("./dc:description", ns)), keywords


def clipart_captions(svg: Path, english: EnglishObjectFilter) -> list[str]:
    """An OpenClipart image's captions: cleaned title and description, else one keyword caption."""
    title, description, keywords = svg_metadata(svg)
    captions = _unique_kept([clean_text(title), clean_text(description)], english)
    if not captions:
        captions = _unique_kept([keyword_caption(keywords, english.is_english_word)], english)
    return captions


def clipart_images(english: EnglishObjectFilter) -> list[DemoImage]:
    """OpenClipart images of every category with at least one kept caption; a drawing filed under
    several categories (byte-identical SVG) is kept once."""
    png_root, svg_root = OPENCLIPART_ROOT / "png", OPENCLIPART_ROOT / "svg"
    images, seen = [], set()
    pngs = sorted(png_root.rglob("*.png"))
    for png in tqdm(pngs, desc="demo: reading OpenClipart", unit="image", mininterval=2.0):
        svg = (svg_root / png.relative_to(png_root)).with_suffix(".svg")
        if not svg.is_file():
            continue
        digest = hashlib.blake2b(svg.read_bytes(), digest_size=16).digest()
        if digest in seen:
            continue
        seen.add(digest)
        captions = clipart_captions(svg, english)
        if captions:
            relative = png.relative_to(png_root).with_suffix("")
            images.append(
                DemoImage(
                    f"clipart/{relative}",
                    "openclipart",
                    relative.parts[0],
                    captions,
                    f"clipart:{relative}",
                    ("file", str(png)),
                )
            )
    return images


def emoji_annotations(root: Path = CLDR_ROOT) -> dict[str, tuple[str, list[str]]]:
    """Emoji -> (name, keywords) from CLDR's English annotations and derived annotations (flags,
    sequences)."""
    names, keywords = {}, {}
    for path in (root / "annotations" / "en.xml", root / "annotationsDerived" / "en.xml"):
        for node in ET.parse(path).getroot().iter("annotation"):
            cp, text = node.get("cp"), (node.text or "").strip()
            if node.get("type") == "tts":
                names.setdefault(cp, text)
            else:
                keywords.setdefault(cp, [k.strip() for k in text.split("|") if k.strip()])
    return {cp: (names[cp], keywords.get(cp, [])) for cp in names}


def emoji_captions(name: str, keywords: list[str], english: EnglishObjectFilter) -> list[str]:
    """An emoji's captions: its CLDR name and its keywords as one caption, where kept."""
    others = ", ".join(k for k in keywords if k.lower() not in name.lower().split())
    return _unique_kept([name, others], english)


def _emoji_list(root: Path) -> list[dict]:
    path = root / "twemoji" / "emoji.json"
    return json.loads(path.read_text(encoding="utf-8"))


def emoji_images(english: EnglishObjectFilter, root: Path | None = None) -> list[DemoImage]:
    """Two renderings (Noto, Twemoji) of every emoji concept with kept CLDR captions."""
    root = root or sources_dir()
    annotations = emoji_annotations()
    images = []
    for entry in _emoji_list(root):
        if entry.get("category") in (None, "Component"):
            continue
        chars = "".join(chr(int(h, 16)) for h in entry["unified"].split("-"))
        if SKIN_TONES & set(chars):
            continue
        annotation = annotations.get(chars) or annotations.get(chars.replace("\ufe0f", ""))
        if annotation is None:
            continue
        captions = emoji_captions(*annotation, english)
        if not captions:
            continue
        code = "u" + entry["unified"].lower()
        concept, category = f"emoji:{code}", entry["category"]
        images.append(
            DemoImage(
                f"emoji/noto/{code}", "noto-emoji", category, captions, concept, ("font", chars)
            )
        )
        png = root / "twemoji" / "img" / "twitter" / "64" / entry["image"]
        if entry.get("has_img_twitter") and png.is_file():
            images.append(
                DemoImage(
                    f"emoji/twemoji/{code}",
                    "twemoji",
                    category,
                    list(captions),
                    concept,
                    ("file", str(png)),
                )
            )
    return images


def openmoji_images(english: EnglishObjectFilter, root: Path | None = None) -> list[DemoImage]:
    """OpenMoji drawings (no skin-tone variants) captioned with their own annotation, all in the
    transfer split; an annotation shared by two drawings is kept for the first only."""
    root = (root or sources_dir()) / "openmoji"
    images, used = [], set()
    with open(root / "data" / "openmoji.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["skintone"] or row["group"] == "component":
                continue
            svg = root / "color" / "svg" / f"{row['hexcode']}.svg"
            caption = " ".join(row["annotation"].split())
            if not svg.is_file() or caption.lower() in used or not english.keep(caption):
                continue
            used.add(caption.lower())
            images.append(
                DemoImage(
                    f"openmoji/{row['hexcode']}",
                    "openmoji",
                    row["group"],
                    [caption],
                    f"openmoji:{row['hexcode']}",
                    ("svg", str(svg)),
                    split="transfer",
                )
            )
    return images


def missing_sources(root: Path | None = None) -> list[str]:
    """The source files the demo needs that are not installed (empty when all are there)."""
    root = root or sources_dir()
    needed = (
        OPENCLIPART_ROOT / "png",
        EMOJI_FONT,
        CLDR_ROOT / "annotations" / "en.xml",
        root / "twemoji" / "emoji.json",
        root / "openmoji" / "data" / "openmoji.csv",
    )
    return [str(p) for p in needed if not p.exists()]
