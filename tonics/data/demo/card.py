"""The demo's data card: what is in it, where it comes from, and how much of each evaluation split
is caption-novel. Computed from the split file, so it describes exactly what training reads."""

from __future__ import annotations

import statistics
from collections import Counter

from tonics.data.demo.captions import word_count
from tonics.data.demo.sources import SOURCES
from tonics.data.records import normalise_caption

LENGTH_BINS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 7), (8, 12), (13, 10_000))
SPLIT_ORDER = ("train", "val", "test", "transfer")


def _bin_name(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}+" if high >= 10_000 else f"{low}-{high}"


def _shared_across_concepts(images: list[dict]) -> float:
    """Share of training pairs whose caption another concept's training pair also has (the
    renderings of one emoji share captions on purpose and do not count)."""
    owners: dict[str, set[str]] = {}
    pairs = [
        (normalise_caption(s["raw"]), i.get("concept", i["imgid"]))
        for i in images
        if i["split"] == "train"
        for s in i["sentences"]
    ]
    for caption, concept in pairs:
        owners.setdefault(caption, set()).add(concept)
    return round(sum(len(owners[c]) > 1 for c, _ in pairs) / max(1, len(pairs)), 4)


def data_card(images: list[dict]) -> dict:
    """Counts per split and source, caption lengths, and the share of each split's captions seen
    verbatim (normalised) in training."""
    splits = [s for s in SPLIT_ORDER if any(i["split"] == s for i in images)]
    captions = [s["raw"] for i in images for s in i["sentences"]]
    lengths = [word_count(c) for c in captions]
    train = Counter(
        normalise_caption(s["raw"]) for i in images if i["split"] == "train" for s in i["sentences"]
    )
    card: dict = {
        "images": len(images),
        "pairs": len(captions),
        "splits": {},
        "sources": {},
        "captions_per_image": dict(sorted(Counter(len(i["sentences"]) for i in images).items())),
        "caption_words": {
            "median": statistics.median(lengths) if lengths else 0,
            "mean": round(statistics.fmean(lengths), 2) if lengths else 0,
            "histogram": {
                _bin_name(lo, hi): sum(lo <= n <= hi for n in lengths) for lo, hi in LENGTH_BINS
            },
        },
        "train_pairs_sharing_caption": _shared_across_concepts(images),
    }
    for split in splits:
        chosen = [i for i in images if i["split"] == split]
        texts = [normalise_caption(s["raw"]) for i in chosen for s in i["sentences"]]
        entry = {"images": len(chosen), "pairs": len(texts)}
        if split != "train":
            entry["seen_in_train"] = round(sum(t in train for t in texts) / max(1, len(texts)), 4)
        card["splits"][split] = entry
    for key, source in SOURCES.items():
        chosen = [i for i in images if i.get("source") == key]
        if chosen:
            card["sources"][key] = {
                "name": source.name,
                "package": source.package,
                "licence": source.licence,
                "captions": source.captions,
                "images": len(chosen),
                "pairs": sum(len(i["sentences"]) for i in chosen),
            }
    return card


def format_card(card: dict) -> str:
    """The data card as plain-text tables for a terminal or the README."""
    lines = [f"tonics demo: {card['images']} images, {card['pairs']} image-caption pairs", ""]
    lines.append("split     images   pairs  captions seen verbatim in train")
    for split, entry in card["splits"].items():
        seen = f"{100 * entry['seen_in_train']:.1f}%" if "seen_in_train" in entry else "-"
        lines.append(f"{split:<8} {entry['images']:>7} {entry['pairs']:>7}  {seen}")
    lines += ["", "source            images   pairs  licence         package"]
    for entry in card["sources"].values():
        lines.append(
            f"{entry['name']:<17} {entry['images']:>6} {entry['pairs']:>7}  "
            f"{entry['licence']:<15} {entry['package']}"
        )
    words = card["caption_words"]
    lines += ["", f"caption length in words: median {words['median']}, mean {words['mean']}"]
    total = max(1, card["pairs"])
    for name, count in words["histogram"].items():
        bar = "#" * round(40 * count / total)
        lines.append(f"  {name:>5} {count:>6} {100 * count / total:5.1f}% {bar}")
    per_image = ", ".join(f"{k}: {v}" for k, v in card["captions_per_image"].items())
    lines += [
        "",
        f"captions per image: {per_image}",
        f"training pairs whose exact caption another concept's pair also has: "
        f"{100 * card['train_pairs_sharing_caption']:.1f}%",
    ]
    return "\n".join(lines)
