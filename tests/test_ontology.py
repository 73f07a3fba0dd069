"""Ontology: offline WordNet, caption nouns, COCO table, graph, serialisation, bad input."""

from __future__ import annotations

from collections import namedtuple

import networkx as nx
import pytest
from tonics.ontology import NounExtractor, Ontology, build_ontology, load_wordnet
from tonics.ontology.building import combine_objects
from tonics.ontology.coco_categories import COCO_TO_SYNSET, UnmappedCategoryError, category_synset
from tonics.ontology.index import ontology_for_records
from tonics.ontology.wordnet import DEBIAN_WORDNET, WordNetNotFoundError, lexnames_text


@pytest.fixture(scope="module")
def extractor():
    return NounExtractor()


def test_wordnet_loads_offline_from_the_debian_directory():
    wn = load_wordnet(str(DEBIAN_WORDNET))
    assert wn.get_version() == "3.0"
    paths = {s.name() for path in wn.synset("dog.n.01").hypernym_paths() for s in path}
    assert {"canine.n.02", "animal.n.01", "physical_entity.n.01"} <= paths


def test_lexnames_generated_from_the_man_page():
    lines = lexnames_text().splitlines()
    assert len(lines) == 45 and lines[3] == "03\tnoun.Tops\t1" and lines[29] == "29\tverb.body\t2"


def test_missing_wordnet_says_how_to_get_one(tmp_path):
    load_wordnet.cache_clear()
    with pytest.raises(WordNetNotFoundError, match="apt-get install wordnet-base"):
        load_wordnet(str(tmp_path))


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("two hot dogs on a plate", "hotdog.n.01"),
        ("a red fire hydrant on the street", "fireplug.n.01"),
        ("a teddy bear on a bed", "teddy.n.01"),
        ("a man holding a tennis racket", "tennis_racket.n.01"),
        ("three dogs playing", "dog.n.01"),
        ("mice in a box", "mouse.n.01"),
        ("people crossing the road", "person.n.01"),
        ("a tall building by the river", "building.n.01"),
        ("a bear sleeping in the snow", "bear.n.01"),
    ],
)
def test_multiword_and_plural_mentions(extractor, caption, expected):
    assert expected in extractor.extract(caption)


def test_cell_phone_is_one_object(extractor):
    objects = extractor.extract("a woman talking on a cell phone")
    assert "woman.n.01" in objects and "cell.n.01" not in objects
    assert any("telephone" in o for o in objects)


@pytest.mark.parametrize(
    ("caption", "spurious"),
    [
        ("a man stands next to a bus", "stand.n.01"),
        ("an orange cat on a sofa", "orange.n.01"),
        ("a view of the front of a red bus", "view.n.02"),
        ("a picture of a dog", "picture.n.01"),
        ("a bus parked on the side of the road", "side.n.01"),
        ("a bear sleeping in the snow", "sleeping.n.01"),
        ("mammal, bear, sleeping", "sleeping.n.03"),
    ],
)
def test_verbs_adjectives_and_layout_words_are_not_objects(extractor, caption, spurious):
    objects = extractor.extract(caption)
    assert spurious not in objects and not any(
        o.startswith(spurious.split(".")[0] + ".") for o in objects
    )


def test_bad_captions_yield_no_object(extractor):
    for caption in ["", "   \n\t", b"\xff\xfe\xfa", None, "x" * 10_000]:
        assert extractor.extract(caption) == []


def test_all_80_coco_categories_resolve():
    wn = load_wordnet()
    assert len(COCO_TO_SYNSET) == 80
    physical = wn.synset("physical_entity.n.01")
    off_physical = set()
    for name, synset in COCO_TO_SYNSET.items():
        s = wn.synset(synset)
        if not any(physical in p for p in s.hypernym_paths()):
            off_physical.add(name)
    assert off_physical == {"traffic light", "stop sign"}  # WordNet files them under communication
    assert category_synset("Sports Ball") == "ball.n.01"


def test_unmapped_category_is_an_error_naming_it():
    with pytest.raises(UnmappedCategoryError, match="'spaceship'"):
        category_synset("spaceship")


def test_graph_counts_and_round_trip(tmp_path):
    captions = ["a dog on grass", "a puppy in a field", "a cat on a sofa", "", "a plate of pasta"]
    ontology = build_ontology(captions, [f"p{i}" for i in range(5)])
    graph = ontology.graph
    assert graph.has_edge("canine.n.02", "dog.n.01")
    assert (
        graph.nodes["dog.n.01"]["own"] == 1 and graph.nodes["dog.n.01"]["subtree"] == 2
    )  # dog + puppy
    assert list(ontology.subtree_pairs("carnivore.n.01")) == [0, 1, 2]
    assert ontology.coverage() == pytest.approx(0.8)
    assert nx.is_directed_acyclic_graph(graph) and ontology.root == "entity.n.01"
    path = ontology.save(tmp_path / "o.npz")
    again = Ontology.load(path)
    assert nx.utils.graphs_equal(graph, again.graph)
    assert dict(graph.nodes(data=True)) == dict(again.graph.nodes(data=True))
    assert again.pair_objects == ontology.pair_objects and again.pair_ids == ontology.pair_ids


def test_object_sources_caption_image_intersection():
    wn = load_wordnet()

    def is_ancestor(a, b):
        return any(wn.synset(a) in path for path in wn.synset(b).hypernym_paths())

    caption, image = ["puppy.n.01", "frisbee.n.01"], ["dog.n.01", "person.n.01"]
    assert combine_objects(caption, image, "caption", is_ancestor) == tuple(caption)
    assert combine_objects(caption, image, "image", is_ancestor) == tuple(image)
    assert combine_objects(caption, image, "intersection", is_ancestor) == ("puppy.n.01",)
    assert combine_objects(["animal.n.01"], ["dog.n.01"], "intersection", is_ancestor) == (
        "dog.n.01",
    )


def test_image_objects_from_coco_labels_in_intersection_mode(tmp_path):
    Record = namedtuple("Record", "pair_id caption objects")
    records = [
        Record("a", "a puppy with a frisbee", ("dog", "frisbee")),
        Record("b", "a man on a bench", ("bench",)),
    ]
    ontology = ontology_for_records(records, source="intersection", cache=tmp_path)
    assert ontology.pair_objects == [("puppy.n.01", "frisbee.n.01"), ("bench.n.01",)]
    cached = ontology_for_records(records, source="intersection", cache=tmp_path)
    assert cached.pair_objects == ontology.pair_objects and len(list(tmp_path.glob("*.npz"))) == 1


def test_subtree_index_equals_the_definition_and_survives_a_round_trip(tmp_path):
    """Reference: a node's pairs are those naming it or any descendant (nx.descendants)."""
    captions = [
        "a dog and a cat on grass",
        "a puppy in a field",
        "a cat on a sofa",
        "",
        "a plate of pasta",
        "a dog with a bone",
        "a horse and a dog",
    ]
    ontology = build_ontology(captions, [f"p{i}" for i in range(len(captions))])
    again = Ontology.load(ontology.save(tmp_path / "o.npz"))
    assert again.graph.nodes["dog.n.01"]["lexname"] == "noun.animal"  # stored: no WordNet needed
    chunked = Ontology(ontology.graph, ontology.pair_objects, ontology.pair_ids)
    chunked.precompute_subtrees(chunk_pairs=2)  # pairs expanded 2 at a time, merged in order
    for node in ontology.graph:
        members = {node} | nx.descendants(ontology.graph, node)
        expected = [i for i, objs in enumerate(ontology.pair_objects) if members & set(objs)]
        assert ontology.subtree_pairs(node).tolist() == expected, node
        assert again.subtree_pairs(node).tolist() == expected, node
        assert chunked.subtree_pairs(node).tolist() == expected, node
        assert ontology.graph.nodes[node]["subtree"] == len(expected)


def test_a_loaded_ontology_is_kept_by_a_link_and_a_built_one_is_saved(tmp_path):
    """A run directory keeps its ontology: a hard link to the file it was loaded from (nothing
    written: 1.2 GB at CC12M), or, for an ontology built in this process, a fresh save."""
    captions = ["a dog on grass", "a cat on a sofa", "a plate of pasta"]
    built = build_ontology(captions, ["p0", "p1", "p2"])
    saved = built.save(tmp_path / "cache" / "o.npz")
    fresh = built.keep(tmp_path / "run0" / "ontology.npz")  # the control: nothing to link to
    assert fresh.stat().st_ino != saved.stat().st_ino
    loaded = Ontology.load(saved)
    kept = loaded.keep(tmp_path / "run1" / "ontology.npz")
    assert kept.stat().st_ino == saved.stat().st_ino  # the same file, not a second one
    again = Ontology.load(kept)
    assert again.pair_objects == built.pair_objects and again.pair_ids == built.pair_ids
