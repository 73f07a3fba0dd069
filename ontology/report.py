"""Reports on what the extractor missed: the words of captions that produced no object."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from tonics.ontology.extract import LAYOUT_NOUNS, STOP_WORDS


def unmatched_nouns(
    captions: Sequence[object], pair_objects: Sequence[Sequence[str]], top: int = 30
) -> list:
    """Most frequent words in captions that yielded no object (candidates for the layout list or a
    missing lemma), with their counts."""
    counts: Counter[str] = Counter()
    skip = STOP_WORDS | set(LAYOUT_NOUNS)
    for caption, objects in zip(captions, pair_objects):
        if objects or not isinstance(caption, str):
            continue
        counts.update(
            w for w in re.findall(r"[a-z]+", caption.lower()) if w not in skip and len(w) > 1
        )
    return counts.most_common(top)
