"""Caption quality against human references: BLEU-4 and CIDEr(-D), computed by pycocoevalcap's
pure-Python scorers (the COCO caption evaluation code), so no Java is needed.

The COCO toolkit tokenises with Stanford's PTBTokenizer (Java); here captions are lower-cased and
split on anything but letters, digits and apostrophes, the same treatment of punctuation (which
PTBTokenizer's COCO setup removes) without the Java dependency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tonics.errors import optional_import

WORD = re.compile(r"[a-z0-9']+")


def tokenise(caption: str) -> str:
    """Lower-case words joined by single spaces, punctuation removed."""
    return " ".join(WORD.findall(caption.lower()))


def caption_scores(
    generated: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Corpus BLEU-4 and CIDEr (x100, COCO's convention) of one generated caption per image
    against that image's references; images without a generated caption or references are left
    out, and so is an empty corpus (empty dict)."""
    Bleu = optional_import("pycocoevalcap.bleu.bleu", "caption metrics").Bleu
    Cider = optional_import("pycocoevalcap.cider.cider", "caption metrics").Cider

    ids = [i for i in generated if references.get(i)]
    if not ids:
        return {}
    candidates = {i: [tokenise(generated[i]) or "."] for i in ids}
    truths = {i: [tokenise(r) for r in references[i]] for i in ids}
    bleu, _ = Bleu(4).compute_score(truths, candidates, verbose=0)
    cider, _ = Cider().compute_score(truths, candidates)
    return {"BLEU-4": 100 * float(bleu[3]), "CIDEr": 100 * float(cider), "images": float(len(ids))}
