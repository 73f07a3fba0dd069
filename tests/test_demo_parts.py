"""The demo builder's parts on tiny inputs: caption cleaning, grouping, splits, the data card."""

from __future__ import annotations

import itertools
import random

from tonics.data.demo.captions import clean_text, drop_common_captions, keyword_caption, word_count
from tonics.data.demo.card import data_card
from tonics.data.demo.sources import DemoImage
from tonics.data.demo.splits import (
    assign_splits,
    group_images,
    near_duplicates,
    one_rendering_per_concept,
)


def test_clean_text_drops_boilerplate_sentences_and_keeps_the_picture():
    text = (
        "A red fox jumping over a log. This work is hereby released into the Public Domain. "
        "To view a copy visit http://creativecommons.org/ or write to 543 Howard Street, "
        "San Francisco, California, USA. Made with Inkscape!"
    )
    assert clean_text(text) == "A red fox jumping over a log."
    assert clean_text("jean.victor.balin@gmail.com") == ""
    assert clean_text("part of the flat icon collection (Wed Aug 25 23:29:46 2004)") == ""
    assert clean_text("Owl_on_Branch") == "Owl on Branch"


def test_keyword_caption_is_one_caption_without_tags_or_repeats():
    english = {"cat", "animal", "pet", "black"}.__contains__
    words = ["Cat", "hash", "animal", "cat", "icon", "xyzzy", "black  cat", "pet"]
    assert keyword_caption(words, lambda w: english(w)) == "cat, animal, black cat, pet"
    assert word_count("cat, animal, black cat") == 4


def _item(concept, captions):
    return DemoImage(concept, "openclipart", "c", list(captions), concept, ("file", "x"))


def test_captions_shared_by_too_many_concepts_are_dropped():
    items = [_item(f"k{i}", ["bird", f"a bird number {i}"]) for i in range(5)]
    items += [_item("lonely", ["bird"])]
    kept, removed = drop_common_captions(items, max_concepts=4)
    assert removed == 6 and [i.concept for i in kept] == [f"k{i}" for i in range(5)]
    assert all(i.captions == [f"a bird number {n}"] for n, i in enumerate(kept))


def test_near_duplicates_match_brute_force():
    rng = random.Random(0)
    hashes = [rng.getrandbits(64) for _ in range(300)]
    hashes += [h ^ (1 << rng.randrange(64)) for h in hashes[:20]]  # one bit flipped
    found = set(near_duplicates(hashes, 4, chunk=37))
    brute = {
        (i, j)
        for i, j in itertools.combinations(range(len(hashes)), 2)
        if bin(hashes[i] ^ hashes[j]).count("1") <= 4
    }
    assert found == brute and len(brute) >= 20


def test_groups_join_concepts_captions_and_look_alikes():
    concepts = ["emoji:dog", "emoji:dog", "clip:1", "clip:2", "clip:3", "clip:4"]
    captions = [["dog"], ["dog"], ["Dog."], ["cat"], ["tree"], ["house"]]
    hashes = [0, 1 << 63, 0xFFFF, 0xFFFF0000, 0xFFFF0001, 0x0F0F0F0F0F0F0F0F]
    groups = group_images(concepts, captions, hashes, max_distance=4)
    # the two renderings; "Dog." normalises like "dog"; clip 2 and 3 look alike; clip 4 alone
    assert groups[0] == groups[1] == groups[2]
    assert groups[3] == groups[4] != groups[0] and groups[5] not in (groups[0], groups[3])


def test_splits_keep_groups_whole_and_are_seeded():
    groups = [g // 3 for g in range(3000)] + [9999] * 40  # 1000 groups of 3, one of 40
    splits = assign_splits(groups, seed=1, val_share=0.1, test_share=0.1, max_group_share=0.005)
    for g in set(groups):
        assert len({s for s, h in zip(splits, groups, strict=True) if h == g}) == 1
    assert {s for s, g in zip(splits, groups, strict=True) if g == 9999} == {"train"}
    n = len(groups)
    assert abs(splits.count("val") - 0.1 * n) <= 3 and abs(splits.count("test") - 0.1 * n) <= 3
    assert assign_splits(groups, seed=1, val_share=0.1, test_share=0.1) == splits
    assert assign_splits(groups, seed=2, val_share=0.1, test_share=0.1) != splits


def test_evaluation_splits_keep_one_rendering_per_concept():
    concepts = ["a", "a", "b", "b", "c", "c"]
    splits = ["test", "test", "train", "train", "val", "val"]
    keep = one_rendering_per_concept(concepts, splits, seed=0)
    assert keep[2] and keep[3] and sum(keep[:2]) == 1 and sum(keep[4:]) == 1
    assert one_rendering_per_concept(concepts, splits, seed=0) == keep


def _image(n, split, captions, concept=None, source="openclipart"):
    return {
        "imgid": n,
        "split": split,
        "source": source,
        "concept": concept or f"c{n}",
        "sentences": [{"raw": c} for c in captions],
    }


def test_data_card_counts_seen_captions_and_lengths():
    images = [
        _image(0, "train", ["a dog", "dog, pet"]),
        _image(1, "train", ["a dog"]),
        _image(2, "test", ["A dog.", "a cat on a red mat today"]),
        _image(3, "transfer", ["a dog"], source="openmoji"),
    ]
    card = data_card(images)
    assert card["images"] == 4 and card["pairs"] == 6
    assert card["splits"]["test"] == {"images": 1, "pairs": 2, "seen_in_train": 0.5}
    assert card["splits"]["transfer"]["seen_in_train"] == 1.0
    assert (
        card["caption_words"]["histogram"]["2"] == 5
        and card["caption_words"]["histogram"]["5-7"] == 1
    )
    assert card["train_pairs_sharing_caption"] == round(2 / 3, 4)  # "a dog" in concepts c0, c1
    assert card["sources"]["openmoji"]["images"] == 1
