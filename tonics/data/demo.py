"""The built-in offline demo dataset: real images with human-written text from Debian packages.

Sources (both installed by the set-up command):
- OpenClipart (`openclipart-png` + `openclipart-svg`, public domain): clip art in object categories,
  captioned with each SVG's own `dc:title`, `dc:description` and `dc:subject` keywords;
- Noto Color Emoji (`fonts-noto-color-emoji`, SIL OFL 1.1) rendered with Pillow, captioned with
  the Unicode CLDR English annotations (`unicode-cldr-core`, Unicode licence): each emoji's name
  and its keywords.
Captions are only that human-written text (never invented): titles, descriptions and keyword lists
that are English and name at least one WordNet physical object are kept, the rest dropped.
The result is written as a Karpathy-style split file (`dataset_demo.json`, read by KarpathyReader,
the same reader COCO users use) plus JPEG images, under the cache directory; a second build with
the same version and seed returns at once.

This builder uses the ontology's WordNet to judge "English object description"; it is a
data-preparation tool run once, not part of the training flow.
"""

from __future__ import annotations

import html
import json
import logging
import random
import re
import time
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from tonics.data.images import to_rgb

log = logging.getLogger(__name__)

DEMO_VERSION = 1
OPENCLIPART_ROOT = Path("/usr/share/openclipart")
CLIPART_CATEGORIES = (
    "animals", "food", "plants", "transportation", "tools", "people", "containers",
    "electronics", "buildings", "office", "recreation",
)  # fmt: skip
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
CLDR_ROOT = Path("/usr/share/unicode/cldr/common")
EMOJI_GROUPS = ("Animals & Nature", "Food & Drink", "Travel & Places", "Activities", "Objects")
MAX_SOURCE_PIXELS = 25_000_000
IMAGE_SIDE = 160  # the vision encoder resizes to 256/224 anyway; small files keep the demo light
DEBIAN_PACKAGES = (
    "openclipart-png openclipart-svg fonts-noto-color-emoji unicode-cldr-core wordnet-base"
)


@dataclass
class DemoImage:
    """One demo image with its human-written captions and its source category."""

    key: str
    source_path: str
    category: str
    captions: list[str]
    emoji: str | None = None


class EnglishObjectFilter:
    """Keeps texts that read as English and name at least one WordNet physical object."""

    def __init__(self, min_english_share: float = 0.7) -> None:
        from ontology import NounExtractor
        from ontology.extract import STOP_WORDS

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
    ns = {"dc": "http://purl.org/dc/elements/1.1/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
          "cc": "http://web.resource.org/cc/"}  # fmt: skip
    work = meta.find(".//cc:Work", ns)
    if work is None:
        work = meta
    keywords = [_text(li) for li in work.findall("./dc:subject//rdf:li", ns)]
    return _text(work.find("./dc:title", ns)), _text(work.find("./dc:description", ns)), keywords


def _keyword_caption(keywords: list[str], english: EnglishObjectFilter) -> str:
    kept = []
    for word in keywords:
        word = word.strip().lower()
        if word and word not in kept and all(english.is_english_word(w) for w in word.split()):
            kept.append(word)
    return ", ".join(kept[:8])


def clipart_images(english: EnglishObjectFilter) -> list[DemoImage]:
    """OpenClipart images in object categories with at least one kept caption."""
    images = []
    for category in tqdm(CLIPART_CATEGORIES, desc="demo: reading OpenClipart", unit="category"):
        for png in sorted((OPENCLIPART_ROOT / "png" / category).rglob("*.png")):
            svg = (
                OPENCLIPART_ROOT / "svg" / png.relative_to(OPENCLIPART_ROOT / "png")
            ).with_suffix(".svg")
            if not svg.is_file():
                continue
            title, description, keywords = svg_metadata(svg)
            texts = [title.replace("_", " "), description, _keyword_caption(keywords, english)]
            captions = []
            for text in texts:
                if (
                    text
                    and text.lower() not in (c.lower() for c in captions)
                    and english.keep(text)
                ):
                    captions.append(text)
            if captions:
                key = "clipart/" + str(png.relative_to(OPENCLIPART_ROOT / "png").with_suffix(""))
                images.append(DemoImage(key, str(png), category, captions))
    return images


def _expand_char_class(spec: str) -> list[str]:
    """Characters of a CLDR labels.txt class like `[🐵-🐸🐺{👨‍🚀}]` (sequences in braces skipped)."""
    spec = re.sub(r"\{[^}]*\}", "", spec.strip()[1:-1])
    chars, i = [], 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            chars.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            chars.append(spec[i])
            i += 1
    return [c for c in chars if not c.isspace()]


def emoji_groups(labels: Path = CLDR_ROOT / "properties" / "labels.txt") -> dict[str, str]:
    """Single-codepoint emoji -> CLDR group name."""
    groups = {}
    for line in labels.read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.split(";")]
        if line.startswith("#") or len(parts) < 2:
            continue
        for char in _expand_char_class(parts[0]):
            groups[char] = parts[1]
    return groups


def emoji_annotations(
    path: Path = CLDR_ROOT / "annotations" / "en.xml",
) -> dict[str, tuple[str, list[str]]]:
    """Emoji -> (name, keywords) from CLDR's English annotations."""
    names, keywords = {}, {}
    for node in ET.parse(path).getroot().iter("annotation"):
        cp, text = node.get("cp"), (node.text or "").strip()
        if node.get("type") == "tts":
            names[cp] = text
        else:
            keywords[cp] = [k.strip() for k in text.split("|") if k.strip()]
    return {cp: (names[cp], keywords.get(cp, [])) for cp in names}


def emoji_images(english: EnglishObjectFilter) -> list[DemoImage]:
    """Object emoji (animals, food, travel, activities, objects) with kept captions."""
    groups = emoji_groups()
    images = []
    for char, (name, keywords) in sorted(emoji_annotations().items()):
        group = groups.get(char)
        if len(char) != 1 or group not in EMOJI_GROUPS:
            continue
        captions = [
            t for t in (name, ", ".join(k for k in keywords if k.lower() != name.lower())) if t
        ]
        captions = [c for c in captions if english.keep(c)]
        if captions:
            images.append(DemoImage(f"emoji/u{ord(char):05x}", "", group, captions, emoji=char))
    return images


def render_emoji(char: str, font: ImageFont.FreeTypeFont) -> Image.Image | None:
    """The emoji drawn in colour on white, or None when the font has no glyph for it."""
    canvas = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((10, 15), char, font=font, embedded_color=True)
    if canvas.getbbox() is None:
        return None
    colours = canvas.convert("RGB").resize((16, 16)).getcolors(256)
    if colours is not None and len(colours) < 3:
        return None  # a blank or single-colour "tofu" box
    return to_rgb(canvas)


def _save_image(item: DemoImage, target: Path, font) -> bool:
    if item.emoji is not None:
        image = render_emoji(item.emoji, font)
        if image is None:
            return False
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # size checked below
            source = Image.open(item.source_path)
        with source:
            if source.width * source.height > MAX_SOURCE_PIXELS:
                return False  # a few posters are 600M pixels: minutes to decode, no use at 160 px
            image = to_rgb(source)
    image.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, "JPEG", quality=90)
    return True


def _extractor_version() -> int:
    from ontology.index import EXTRACTOR_VERSION

    return EXTRACTOR_VERSION


def demo_dir(root: str | Path | None = None) -> Path:
    """Directory of the demo dataset (cache directory unless `root` is given)."""
    from ontology.index import EXTRACTOR_VERSION
    from ontology.wordnet import cache_dir

    # the English/object filter uses the caption extractor: its version is part of the dataset's
    return (
        Path(root)
        if root is not None
        else cache_dir() / f"demo-v{DEMO_VERSION}-x{EXTRACTOR_VERSION}"
    )


def _check_sources() -> None:
    missing = [
        str(p)
        for p in (OPENCLIPART_ROOT / "png", EMOJI_FONT, CLDR_ROOT / "annotations" / "en.xml")
        if not p.exists()
    ]
    if missing:
        raise FileNotFoundError(
            f"demo sources missing: {', '.join(missing)}; install them with "
            f"`apt-get install {DEBIAN_PACKAGES}` (the README's set-up command does this)"
        )


def build_demo(
    root: str | Path | None = None,
    *,
    seed: int = 0,
    val_share: float = 0.1,
    test_share: float = 0.1,
) -> Path:
    """Build (or reuse) the demo dataset; returns the path of its Karpathy split file."""
    out = demo_dir(root)
    split_file = out / "dataset_demo.json"
    if split_file.is_file():
        meta = json.loads(split_file.read_text()).get("tonics_demo", {})
        if (
            meta.get("version") == DEMO_VERSION
            and meta.get("seed") == seed
            and meta.get("extractor") == _extractor_version()
        ):
            return split_file
    _check_sources()
    started = time.perf_counter()
    english = EnglishObjectFilter()
    items = clipart_images(english) + emoji_images(english)
    font = ImageFont.truetype(str(EMOJI_FONT), 109)
    progress = tqdm(items, desc="demo: writing images", unit="image", mininterval=2.0)
    written = [it for it in progress if _save_image(it, out / "images" / f"{it.key}.jpg", font)]
    order = list(range(len(written)))
    random.Random(seed).shuffle(order)
    n_val, n_test = round(len(order) * val_share), round(len(order) * test_share)
    split_of = {
        i: "val" if k < n_val else "test" if k < n_val + n_test else "train"
        for k, i in enumerate(order)
    }
    images = [
        {
            "filepath": str(Path(it.key).parent),
            "filename": Path(it.key).name + ".jpg",
            "imgid": n,
            "split": split_of[n],
            "objects": [it.category],
            "source": "emoji" if it.emoji else "openclipart",
            "sentences": [{"raw": c, "sentid": f"{n}-{k}"} for k, c in enumerate(it.captions)],
        }
        for n, it in enumerate(written)
    ]
    meta = {"version": DEMO_VERSION, "seed": seed, "extractor": _extractor_version(), "build_seconds": round(time.perf_counter() - started, 1),
            "images": len(images), "pairs": sum(len(i["sentences"]) for i in images)}  # fmt: skip
    tmp = split_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"dataset": "tonics-demo", "tonics_demo": meta, "images": images}))
    tmp.replace(split_file)
    log.info("demo dataset: %s", meta)
    return split_file
