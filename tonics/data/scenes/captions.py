"""Scene captions, composed by templates from the human-written names of the scene's drawings.

No caption is written by a person: each is one of the TEMPLATES below filled with the names people
gave the drawings (OpenClipart titles, CLDR emoji names, reduced to their object word), counts
("two apples"), spatial relations read off the drawn boxes, relative sizes and the background.
Like COCO's captions, some name every object and some only the salient ones.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

CAPTIONS_PER_IMAGE = 5
NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
PREFIXES = ("", "a picture of ", "a drawing of ", "an image of ", "a scene with ", "there is ")
TEMPLATES = {
    "list": "[prefix] every object in a random order, repeats counted: 'a drawing of two apples "
    "and a dog'",
    "background": "every object and the background: 'a cup and a book on a pale yellow "
    "background', 'a dog and a tree outdoors on the grass'",
    "count": "how many objects, then each: 'three objects: a cup, a dog and a book'",
    "relation": "two objects and where one is from the other (left of, right of, above, below, "
    "next to): 'a dog to the left of a bicycle'",
    "relation_rest": "a relation, then the other objects: 'a cup above a book, with a dog'",
    "sizes": "the largest and the smallest object: 'a big dog and a small cup'",
    "salient": "only the one or two largest objects: 'a dog and a cup among other things'",
}
SIDE_GAP = 20  # pixels between box centres before 'left of' / 'above' is said


@dataclass(frozen=True)
class Mention:
    """An object as captions name it: its word(s), category and drawn box."""

    name: str
    category: str
    box: Sequence[int]  # x, y, width, height

    @property
    def area(self) -> int:
        """Visible box area in pixels."""
        return self.box[2] * self.box[3]

    @property
    def centre(self) -> tuple[float, float]:
        """Box centre (x, y)."""
        return self.box[0] + self.box[2] / 2, self.box[1] + self.box[3] / 2


@lru_cache(maxsize=1)
def _irregular_plurals() -> dict[str, str]:
    """Singular -> plural from WordNet's noun exception list (geese -> goose, reversed): the
    irregular forms only (mice, children, knives), not spelling variants of a regular -s plural
    (busses)."""
    from tonics.ontology.wordnet import load_wordnet

    plurals: dict[str, str] = {}
    for plural, singulars in load_wordnet()._exception_map["n"].items():
        irregular = not plural.endswith("s") or plural.endswith("ves")
        for singular in singulars:
            if irregular and plural != singular:
                plurals.setdefault(singular, plural)
    return plurals


def plural(name: str) -> str:
    """English plural of a noun phrase's last word ('apple' -> 'apples', 'mouse' -> 'mice')."""
    *head, last = name.split()
    irregular = _irregular_plurals().get(last)
    if irregular:
        word = irregular
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return " ".join([*head, word])


def with_article(name: str) -> str:
    """'a dog', 'an apple'."""
    return ("an " if name[:1] in "aeiou" else "a ") + name


def join_phrases(phrases: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def counted(mentions: Sequence[Mention], rng: random.Random) -> list[str]:
    """Each category once, in a random order: 'a dog', 'two apples'."""
    groups: dict[str, list[Mention]] = {}
    for mention in mentions:
        groups.setdefault(mention.category, []).append(mention)
    order = list(groups)
    rng.shuffle(order)
    phrases = []
    for category in order:
        members = groups[category]
        name = members[0].name
        phrases.append(
            with_article(name)
            if len(members) == 1
            else f"{NUMBER_WORDS[len(members)]} {plural(name)}"
        )
    return phrases


def relation(a: Mention, b: Mention) -> str:
    """Where a is from b, read off their boxes."""
    (ax, ay), (bx, by) = a.centre, b.centre
    dx, dy = ax - bx, ay - by
    if abs(dx) >= abs(dy) and abs(dx) > SIDE_GAP:
        return "to the left of" if dx < 0 else "to the right of"
    if abs(dy) > SIDE_GAP:
        return "above" if dy < 0 else "below"
    return "next to"


def background_phrase(background: str) -> str:
    """How a caption names the background."""
    if background == "sky and grass":
        return "outdoors on the grass"
    return f"on a {background} background"


def _distinct_pair(mentions: Sequence[Mention], rng: random.Random) -> tuple[Mention, Mention]:
    categories = {m.category for m in mentions}
    while True:
        a, b = rng.sample(list(mentions), 2)
        if a.category != b.category or len(categories) == 1:
            return a, b


def compose(family: str, mentions: Sequence[Mention], background: str, rng) -> str:
    """One caption of a template family (see TEMPLATES)."""
    if family == "list":
        return rng.choice(PREFIXES) + join_phrases(counted(mentions, rng))
    if family == "background":
        return join_phrases(counted(mentions, rng)) + " " + background_phrase(background)
    if family == "count":
        return f"{NUMBER_WORDS[len(mentions)]} objects: {join_phrases(counted(mentions, rng))}"
    if family in ("relation", "relation_rest"):
        a, b = _distinct_pair(mentions, rng)
        text = f"{with_article(a.name)} {relation(a, b)} {with_article(b.name)}"
        rest = [m for m in mentions if m is not a and m is not b]
        if family == "relation_rest" and rest:
            text += ", with " + join_phrases(counted(rest, rng))
        return text
    by_size = sorted(mentions, key=lambda m: -m.area)
    if family == "sizes":
        return f"a big {by_size[0].name} and a small {by_size[-1].name}"
    if family == "salient":
        named = [with_article(m.name) for m in by_size[: rng.choice((1, 2))]]
        return join_phrases(named) + rng.choice((" among other things", " and more", " in a group"))
    raise ValueError(f"unknown caption template '{family}'")


def scene_captions(
    mentions: Sequence[Mention], background: str, seed: int, count: int = CAPTIONS_PER_IMAGE
) -> list[str]:
    """`count` distinct captions: the first lists every object, the others are drawn from the
    remaining template families in a seeded order."""
    rng = random.Random(seed)
    captions = [compose("list", mentions, background, rng)]
    families = [f for f in TEMPLATES if f != "list"]
    tries = 0
    while len(captions) < count:
        caption = compose(rng.choice(families), mentions, background, rng)
        tries += 1
        if caption not in captions or tries > 50:
            captions.append(caption)
    return captions
