"""The scenes' data card: what a scene holds, how captions were made, and how much of the
evaluation splits is compositionally new (object sets and category pairs never seen together in
training). Computed from the written plans and captions, so it describes exactly what is read."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter

from tonics.data.demo.captions import word_count
from tonics.data.scenes.captions import TEMPLATES
from tonics.data.scenes.layout import DRAWN_BACKGROUNDS, PLAIN_BACKGROUNDS

PROVENANCE = (
    "Scene captions are NOT written by people: they are composed by templates from the "
    "human-written names of the drawings (OpenClipart titles and Unicode CLDR emoji names, "
    "reduced to their object word), with counts, spatial relations read off the drawn boxes, "
    "relative sizes and the background."
)


def pairs_of(categories) -> set[frozenset[str]]:
    """Every unordered pair of distinct categories in one image."""
    return {frozenset(p) for p in itertools.combinations(sorted(set(categories)), 2)}


def scenes_card(plans, captions, categories, held_out) -> dict:
    """Counts, caption lengths, templates, categories and co-occurrence of the built scenes."""
    lengths = [word_count(c) for texts in captions for c in texts]
    sets = [frozenset(o.drawing.category for o in p.objects) for p in plans]
    train_sets = {s for s, p in zip(sets, plans, strict=True) if p.split == "train"}
    train_pairs = set().union(*(pairs_of(s) for s in train_sets)) if train_sets else set()
    splits = {}
    for split in ("train", "val", "test"):
        chosen = [k for k, p in enumerate(plans) if p.split == split]
        entry = {"images": len(chosen), "pairs": sum(len(captions[k]) for k in chosen)}
        if split != "train":
            entry["object_sets_unseen_in_train"] = round(
                sum(sets[k] not in train_sets for k in chosen) / max(1, len(chosen)), 4
            )
            entry["images_with_a_pair_unseen_in_train"] = round(
                sum(bool(pairs_of(sets[k]) - train_pairs) for k in chosen) / max(1, len(chosen)), 4
            )
        splits[split] = entry
    drawings = {s: sum(len(c.drawings[s]) for c in categories) for s in ("train", "val", "test")}
    return {
        "images": len(plans),
        "pairs": len(lengths),
        "provenance": PROVENANCE,
        "splits": splits,
        "objects_per_image": dict(sorted(Counter(len(p.objects) for p in plans).items())),
        "caption_words": {
            "median": statistics.median(lengths) if lengths else 0,
            "mean": round(statistics.fmean(lengths), 2) if lengths else 0,
        },
        "templates": TEMPLATES,
        "backgrounds": sorted(PLAIN_BACKGROUNDS) + list(DRAWN_BACKGROUNDS),
        "categories": len(categories),
        "category_list": [
            {
                "synset": c.synset,
                "name": c.name,
                **{s: len(c.drawings[s]) for s in ("train", "val", "test")},
            }
            for c in categories
        ],
        "drawings": drawings,
        "co_occurrence": {
            "category_pairs": len(categories) * (len(categories) - 1) // 2,
            "pairs_seen_in_train": len(train_pairs),
            "pairs_held_out_of_train": len(held_out),
        },
    }


def format_scenes_card(card: dict) -> str:
    """The card as plain text for a terminal or the docs."""
    lines = [f"tonics scenes: {card['images']} images, {card['pairs']} image-caption pairs", ""]
    lines += [card["provenance"], ""]
    lines.append(
        "split     images   pairs  object sets unseen in train  images with an unseen pair"
    )
    for split, entry in card["splits"].items():
        unseen = entry.get("object_sets_unseen_in_train")
        pair = entry.get("images_with_a_pair_unseen_in_train")
        cells = "-" if unseen is None else f"{100 * unseen:.1f}%"
        pairs = "-" if pair is None else f"{100 * pair:.1f}%"
        lines.append(
            f"{split:<8} {entry['images']:>7} {entry['pairs']:>7}  {cells:>27}  {pairs:>26}"
        )
    per_image = ", ".join(f"{k}: {v}" for k, v in card["objects_per_image"].items())
    words = card["caption_words"]
    co = card["co_occurrence"]
    lines += [
        "",
        f"objects per image: {per_image}",
        f"caption length in words: median {words['median']}, mean {words['mean']}",
        f"categories: {card['categories']} WordNet synsets; drawings train/val/test: "
        + "/".join(str(card["drawings"][s]) for s in ("train", "val", "test")),
        f"category pairs: {co['category_pairs']}, seen together in train: "
        f"{co['pairs_seen_in_train']}, held out of train: {co['pairs_held_out_of_train']}",
        f"backgrounds: {', '.join(card['backgrounds'])}",
        "",
        "caption templates:",
    ]
    lines += [f"  {name:<14} {text}" for name, text in card["templates"].items()]
    lines += ["", "categories (synset, name, drawings train/val/test):"]
    for c in card["category_list"]:
        lines.append(f"  {c['synset']:<28} {c['name']:<20} {c['train']}/{c['val']}/{c['test']}")
    return "\n".join(lines)
