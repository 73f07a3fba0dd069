"""Which demo drawings a scene may show, and under which object category and name.

A drawing qualifies when its first human-written caption (an OpenClipart title, a CLDR emoji name)
is short and names exactly one object: a noun with a sense in an object lexicographer file
(animal, food, plant, artifact, natural object), the sense that fits the drawing's source category
preferred ("Tiger" among OpenClipart's animals is the animal). The words the person wrote, in their
base form, are its name ("Tabby Cat" -> "tabby cat"? no: the object word, "cat"). Categories are
WordNet synsets at a level that has drawings in every split of the demo's leak-free split (so a
validation or test scene never shows a drawing seen in training): a drawing's own synset when it
has enough company, else its nearest hypernym that does, never above MIN_CATEGORY_DEPTH ("tiger"
-> big cat, as COCO files a "puppy" under "dog").
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from tonics.errors import optional_import

OBJECT_LEXNAMES = ("noun.animal", "noun.food", "noun.plant", "noun.artifact", "noun.object")
SOURCE_HINTS = {  # a demo source category -> the lexicographer file its drawings' senses favour
    "animals": "noun.animal",
    "Animals & Nature": "noun.animal",
    "food": "noun.food",
    "Food & Drink": "noun.food",
    "plants": "noun.plant",
}
NOT_OBJECTS = frozenset(  # senses the sources' words reach that no drawing shows as one object
    """design.n.04 office.n.01 transportation_system.n.01 security_system.n.02 traffic_circle.n.01
    bullet_hole.n.01 menu.n.02 earth.n.01 europe.n.01 decoration.n.01 light-emitting_diode.n.01
    cross.n.01 pantyhose.n.01 dinner_jacket.n.01 hand_glass.n.02 button.n.01 arrow.n.02
    face.n.04 hand.n.08 eye.n.05 hair.n.03 head.n.02 thumb.n.02 square.n.07 heart.n.08 input.n.04
    creation.n.02 control.n.09 mechanism.n.05 subshrub.n.01 triangulum.n.01 diamond.n.04
    australia.n.02 drawing.n.02 body_of_water.n.01 light.n.02 room.n.01 enclosure.n.01
    entrance.n.01 road.n.01 emblem.n.01 stick.n.03 mechanism.n.05 mouth.n.03 palm.n.03""".split()
)
MAX_TITLE_WORDS = 4  # a longer title describes a picture, not one object
MIN_CATEGORY_DEPTH = 7  # lift to dog, bird, vehicle or tool, not to device or container
SPLITS = ("train", "val", "test")
MIN_TRAIN = 3  # training drawings a category needs to vary


@dataclass(frozen=True)
class Drawing:
    """One demo image usable as a scene object."""

    path: str  # relative to the demo's image folder
    split: str
    category: str  # WordNet synset name of its scene category
    name: str  # the human-written object word(s), base form


@dataclass(frozen=True)
class Category:
    """An object category of the scenes: its synset, display name and drawings per split."""

    synset: str
    name: str  # the synset's first lemma, for the COCO category list
    supercategory: str  # its lexicographer file without 'noun.'
    drawings: dict[str, tuple[Drawing, ...]]


def drawing_object(title: str, extractor, hint: str | None = None) -> tuple[str, str] | None:
    """(synset, base-form name) of the one object a short title names, else None."""
    from tonics.ontology.extract import _TOKEN

    if not title or len(title.split()) > MAX_TITLE_WORDS or "," in title:
        return None
    tokens = _TOKEN.findall(title.lower())
    wn = extractor.wn
    found = []
    for start, end, _ in extractor.candidates(title):
        lemma = wn.morphy("_".join(tokens[start:end]), "n")
        senses = (
            [s for s in wn.synsets(lemma, "n") if s.lexname() in OBJECT_LEXNAMES] if lemma else []
        )
        senses.sort(key=lambda s: s.lexname() != hint)  # stable: WordNet's order within each
        if senses and senses[0].name() not in NOT_OBJECTS:
            found.append((senses[0].name(), lemma.replace("_", " ")))
    if len({synset for synset, _ in found}) != 1:
        return None
    return found[-1]


def _lift(synset: str, enough, wn) -> str | None:
    """The drawing's category: the most specific of its synset and its hypernyms that has enough
    drawings (`enough(name)`), lifting no higher than MIN_CATEGORY_DEPTH."""
    # nltk lists a synset's hypernym paths in an order that varies between processes (string
    # hashing): the longest path, ties broken by its names, is the same in every process
    paths = wn.synset(synset).hypernym_paths()
    path = max(paths, key=lambda p: (len(p), [n.name() for n in p]))
    for k, node in enumerate(reversed(path)):
        if k and node.min_depth() < MIN_CATEGORY_DEPTH:
            return None
        if enough(node.name()):
            return node.name()
    return None


def _perceptual_hash(path: Path) -> int:
    imagehash = optional_import("imagehash", "the scenes' near-duplicate check")
    from PIL import Image

    with Image.open(path) as image:
        return int(str(imagehash.phash(image)), 16)


def _split_groups(
    groups: list[int], seed: int, eval_share: float, decided: dict[int, str]
) -> dict[int, str]:
    """Whole leak-groups to val and test (each up to about `eval_share` of the drawings), the rest
    to train, in a seeded order; a group larger than that share stays in train, and a group
    another category already placed (a drawing named 'potato' as a food and as a plant) keeps
    its split. New placements are added to `decided`."""
    import random

    sizes = Counter(groups)
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    target = max(1, round(eval_share * len(groups)))
    filled = {"val": 0, "test": 0}
    for group in order:
        if group in decided and decided[group] != "train":
            filled[decided[group]] += sizes[group]
    split = {g: decided[g] for g in order if g in decided}
    for group in (g for g in order if g not in decided):
        split[group] = decided[group] = "train"
        for name in ("val", "test"):
            if filled[name] + sizes[group] <= target:
                split[group] = decided[group] = name
                filled[name] += sizes[group]
                break
    return split


def _named_drawings(images: list[dict], extractor) -> list[tuple[dict, str, str]]:
    """(image entry, synset, name) of every demo image that qualifies as one scene object."""
    found = []
    for image in images:
        if image["split"] not in SPLITS or not image.get("sentences"):
            continue
        hint = SOURCE_HINTS.get((image.get("objects") or [None])[0])
        obj = drawing_object(image["sentences"][0]["raw"], extractor, hint)
        if obj is not None:
            found.append((image, *obj))
    return found


def _leak_groups(found, paths: list[str], root: Path) -> list[int]:
    """The demo's leak-free groups of these drawings (same concept, caption or near-duplicate
    look: `tonics.data.demo.splits.group_images`)."""
    from tonics.data.demo.build import NEAR_DUPLICATE_BITS
    from tonics.data.demo.splits import group_images

    return group_images(
        [im.get("concept", p) for (im, _, _), p in zip(found, paths, strict=True)],
        [[s["raw"] for s in im["sentences"]] for im, _, _ in found],
        [_perceptual_hash(root / p) for p in paths],
        NEAR_DUPLICATE_BITS,
    )


def _category(synset: str, chosen, wn, seed: int, eval_share: float, decided: dict):
    """The Category of these (path, name, group) drawings, or None when its groups cannot fill
    every split."""
    split_of = _split_groups([g for _, _, g in chosen], seed, eval_share, decided)
    drawings: dict[str, list[Drawing]] = {s: [] for s in SPLITS}
    for path, name, group in chosen:
        drawings[split_of[group]].append(Drawing(path, split_of[group], synset, name))
    if min(len(d) for d in drawings.values()) < 1 or len(drawings["train"]) < MIN_TRAIN:
        return None
    node = wn.synset(synset)
    lemmas = [n.replace("_", " ").lower() for n in node.lemma_names()]
    names = Counter(name for _, name, _ in chosen if name in lemmas)
    return Category(
        synset,
        names.most_common(1)[0][0] if names else lemmas[0],
        node.lexname().split(".", 1)[1],
        {s: tuple(drawings[s]) for s in SPLITS},
    )


def read_catalogue(
    demo_split_file: str | Path,
    *,
    seed: int = 0,
    min_drawings: int = 6,
    min_groups: int = 3,
    eval_share: float = 0.2,
    extractor=None,
) -> list[Category]:
    """The scene categories from a built demo (its split file and drawn images), sorted by synset
    name. Each category's drawings are split into train/val/test by the demo's leak-free groups,
    so no drawing (nor a near-duplicate, nor one sharing its caption) is in two splits."""
    from tonics.ontology import NounExtractor

    extractor = extractor or NounExtractor()
    wn = extractor.wn
    demo_split_file = Path(demo_split_file)
    found = _named_drawings(json.loads(demo_split_file.read_text())["images"], extractor)
    paths = [str(Path(im.get("filepath", "")) / im["filename"]) for im, _, _ in found]
    groups = _leak_groups(found, paths, demo_split_file.parent / "images")
    drawings_under: dict[str, Counter] = defaultdict(Counter)
    for (_, synset, _), group in zip(found, groups, strict=True):
        for node in {n.name() for p in wn.synset(synset).hypernym_paths() for n in p}:
            drawings_under[node][group] += 1

    def enough(name: str) -> bool:
        have = drawings_under[name]
        return sum(have.values()) >= min_drawings and len(have) >= min_groups

    members: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for (_, synset, name), path, group in zip(found, paths, groups, strict=True):
        category = _lift(synset, enough, wn)
        if category is not None and category not in NOT_OBJECTS:
            members[category].append((path, name, group))
    categories, decided = [], {}
    for synset in sorted(members):
        chosen = members[synset]
        if len(chosen) < min_drawings or len({g for _, _, g in chosen}) < min_groups:
            continue  # most of its drawings went to more specific categories
        category = _category(synset, chosen, wn, seed, eval_share, decided)
        if category is not None:
            categories.append(category)
    return categories
