"""Which of a source's own texts become demo captions, and how they are cleaned.

Captions are only text that people wrote for the image (titles, descriptions, annotations): this
module removes what is not about the image (licence and publication boilerplate, URLs, e-mail
addresses, tool credits) sentence by sentence, and never adds a word.
"""

from __future__ import annotations

import re

# a sentence matching this is about the file, its licence or its author, not about the picture
BOILERPLATE = re.compile(
    r"https?://|www\.|\S@\S|\.(com|org|net|de|fr|it)\b|licen[cs]|public domain|copyright|©|"
    r"creative commons|\bcc[- ]?(by|0)\b|inkscape|sodipodi|illustrator|openclipart|clip ?art|"
    r"\bsvg\b|\beps\b|\bpng\b|\bpdf\b|auto-?traced|\btraced?\b|vectori[sz]ed|converted|"
    r"made (with|by|in|for)|created (with|by|in|for)|drawn (with|by|in)|uploaded|upload|thanks|"
    r"\bversion\b|template|untitled|\bremix|\bderived\b|based on|enjoy|\bfree\b|\bfile\b|"
    r"\bpart of\b.*\b(collection|set|series)\b|\b(icon|clip) ?(collection|set|theme)\b",
    re.IGNORECASE,
)
# keywords that tag the file, not the picture (OpenClipart's 'hash', 'icon', 'theme' ...)
TAG_KEYWORDS = frozenset(
    "hash icon icons theme image images media computer webpage buttons button clipart "
    "clip art svg png cartoon drawing picture graphic graphics illustration symbol symbols "
    "sign signs remix design".split()
)
MAX_CONCEPTS_PER_CAPTION = 20
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def clean_text(text: str) -> str:
    """The text without its boilerplate sentences ('' when nothing about the picture is left)."""
    text = " ".join(text.replace("_", " ").split())
    kept = [s for s in SENTENCE_END.split(text) if s and not BOILERPLATE.search(s)]
    return " ".join(kept).strip()


def keyword_caption(keywords: list[str], is_english_word) -> str:
    """One caption from a keyword list: English keywords in their order, without repeats."""
    kept: list[str] = []
    for word in keywords:
        word = " ".join(word.strip().lower().split())
        if (
            word
            and word not in kept
            and word not in TAG_KEYWORDS
            and not BOILERPLATE.search(word)
            and all(is_english_word(w) for w in word.split())
        ):
            kept.append(word)
    return ", ".join(kept[:8])


def drop_common_captions(items, max_concepts: int = MAX_CONCEPTS_PER_CAPTION):
    """Remove captions that more than `max_concepts` concepts share ("stars, shapes, geometry" on
    1,375 generated shapes, "flag" on every flag): they tell nothing apart and would make many
    near-identical pairs. Items left without a caption are dropped. Returns (kept items, number of
    captions removed)."""
    from tonics.data.records import normalise_caption

    concepts: dict[str, set[str]] = {}
    for item in items:
        for caption in item.captions:
            concepts.setdefault(normalise_caption(caption), set()).add(item.concept)
    common = {c for c, owners in concepts.items() if len(owners) > max_concepts}
    removed, kept = 0, []
    for item in items:
        captions = [c for c in item.captions if normalise_caption(c) not in common]
        removed += len(item.captions) - len(captions)
        if captions:
            item.captions = captions
            kept.append(item)
    return kept, removed


def word_count(caption: str) -> int:
    """Words in a caption as the data card counts them (keyword lists count each keyword word)."""
    return len(re.findall(r"[A-Za-z0-9']+", caption))
