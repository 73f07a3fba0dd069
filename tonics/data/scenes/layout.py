"""Scene plans: which drawings a scene shows, where, how large, and on which background.

Plans are made in one process from one seeded generator, so the same seed gives the same scenes
whatever the number of drawing workers. Training scenes never hold a held-out category pair (the
compositional hold-out); a share of validation and test scenes is built around one.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from tonics.data.scenes.catalogue import Category, Drawing

CANVAS = 224
MIN_SIDE, MAX_SIDE = 64, 124  # an object's longer side in pixels
MAX_OVERLAP = 0.3  # of the smaller box's area: "some overlapping", every object still visible
PLACEMENT_TRIES = 30
TWIN_SHARE = 0.2  # scenes where one category appears twice ("two apples")
OBJECT_COUNTS = (2, 3, 4)
PLAIN_BACKGROUNDS = {
    "white": (255, 255, 255),
    "light grey": (225, 225, 225),
    "pale yellow": (250, 240, 190),
    "light blue": (200, 225, 245),
    "pale green": (210, 240, 205),
    "pink": (250, 210, 225),
}
DRAWN_BACKGROUNDS = ("sky and grass", "checkered", "striped", "dotted")


@dataclass(frozen=True)
class PlacedObject:
    """One drawing on the canvas; `box` is where it is pasted (x, y, side x, side y)."""

    drawing: Drawing
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class ScenePlan:
    """Everything needed to draw and describe one scene."""

    image_id: int
    split: str
    background: str
    objects: tuple[PlacedObject, ...]
    seed: int  # for the caption templates


def held_out_pairs(categories: list[Category], share: float, seed: int) -> set[frozenset[str]]:
    """A seeded `share` of all category pairs: never together in training scenes."""
    pairs = [frozenset(p) for p in itertools.combinations([c.synset for c in categories], 2)]
    rng = random.Random(f"held-out-{seed}")
    return set(rng.sample(pairs, round(share * len(pairs))))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / min(a[2] * a[3], b[2] * b[3])


def _place(rng: random.Random, count: int) -> list[tuple[int, int, int, int]]:
    """Square boxes for `count` objects, overlapping at most MAX_OVERLAP (shrunk if crowded)."""
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(count):
        box = None
        for attempt in range(PLACEMENT_TRIES):
            high = MAX_SIDE - (MAX_SIDE - MIN_SIDE) * attempt // PLACEMENT_TRIES
            side = rng.randint(MIN_SIDE, max(MIN_SIDE, high))
            candidate = (rng.randint(0, CANVAS - side), rng.randint(0, CANVAS - side), side, side)
            if all(_overlap(candidate, other) <= MAX_OVERLAP for other in boxes):
                box = candidate
                break
        boxes.append(box or candidate)
    return boxes


def _categories_for(
    rng: random.Random,
    categories: list[Category],
    held_out: set[frozenset[str]],
    split: str,
    forced_pair: frozenset[str] | None,
) -> list[str]:
    """The scene's category of each object (a category may repeat once: a twin)."""
    count = rng.choice(OBJECT_COUNTS)
    twin = rng.random() < TWIN_SHARE
    names = [c.synset for c in categories]
    while True:
        chosen = sorted(forced_pair) if forced_pair else []
        distinct = max(len(chosen), count - 1 if twin else count)
        pool = [n for n in names if n not in chosen]
        chosen += rng.sample(pool, distinct - len(chosen))
        if split == "train" and any(
            frozenset(p) in held_out for p in itertools.combinations(chosen, 2)
        ):
            continue
        if twin:
            chosen.append(rng.choice(chosen))
        rng.shuffle(chosen)
        return chosen


def plan_scenes(
    categories: list[Category],
    counts: dict[str, int],
    *,
    seed: int,
    held_out: set[frozenset[str]],
    held_out_scene_share: float = 1 / 3,
) -> list[ScenePlan]:
    """`counts[split]` scenes per split; ids run on across splits in train, val, test order."""
    by_synset = {c.synset: c for c in categories}
    pairs = sorted(sorted(p) for p in held_out)
    plans: list[ScenePlan] = []
    for split in ("train", "val", "test"):
        rng = random.Random(f"scenes-{seed}-{split}")
        for _ in range(counts.get(split, 0)):
            forced = None
            if split != "train" and pairs and rng.random() < held_out_scene_share:
                forced = frozenset(rng.choice(pairs))
            synsets = _categories_for(rng, categories, held_out, split, forced)
            boxes = _place(rng, len(synsets))
            objects = []
            used: set[str] = set()
            for synset, box in zip(synsets, boxes, strict=True):
                drawings = by_synset[synset].drawings[split]
                fresh = [d for d in drawings if d.path not in used] or list(drawings)
                drawing = rng.choice(fresh)
                used.add(drawing.path)
                objects.append(PlacedObject(drawing, box))
            if rng.random() < 0.5:
                background = rng.choice(sorted(PLAIN_BACKGROUNDS))
            else:
                background = rng.choice(DRAWN_BACKGROUNDS)
            plans.append(
                ScenePlan(len(plans), split, background, tuple(objects), rng.randrange(2**31))
            )
    return plans
