"""Samplers and curriculum: node-sharing batches, no repeats, determinism, DDP split, stages."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from tonics.ontology import build_ontology

from tonics.sampling import Curriculum, CurriculumBatchSampler, Stage
from tonics.sampling.curriculum import CurriculumError

OBJECTS = ["dog", "cat", "horse", "pizza", "banana", "car", "bus", "chair"]


@pytest.fixture(scope="module")
def ontology():
    captions = [f"a {OBJECTS[i % len(OBJECTS)]} number {i}" for i in range(400)]
    return build_ontology(captions, [str(i) for i in range(400)])


def _sampler(ontology, stages, **kwargs):
    kwargs.setdefault("batch_size", 8)
    return CurriculumBatchSampler(ontology, Curriculum(stages), **kwargs)


def _epoch(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_ontology_batches_share_the_chosen_node(ontology):
    sampler = _sampler(
        ontology, [Stage(name="fine", mix={"ontology": 1.0}, nodes={"granularity": "fine"})]
    )
    for step, batch in enumerate(_epoch(sampler)):
        draw = sampler.draws[step]
        if draw.kind != "ontology":
            continue
        members = {draw.node} | nx.descendants(ontology.graph, draw.node)
        assert all(members.intersection(ontology.pair_objects[i]) for i in batch)
        assert ontology.graph.nodes[draw.node]["depth"] == draw.depth


def test_fine_stage_batches_are_mostly_single_object(ontology):
    sampler = _sampler(
        ontology, [Stage(name="fine", mix={"ontology": 1.0}, nodes={"granularity": "fine"})]
    )
    single = [len({ontology.pair_objects[i] for i in b}) == 1 for b in _epoch(sampler)]
    assert np.mean(single) > 0.7  # late in the epoch depleted nodes fall back to parents


def test_diverse_batches_cover_many_objects(ontology):
    sampler = _sampler(ontology, [Stage(name="diverse", mix={"diverse": 1.0})])
    batches = _epoch(sampler)
    assert min(len({ontology.pair_objects[i] for i in b}) for b in batches[:20]) == 8


@pytest.mark.parametrize(
    "mix", [{"random": 1.0}, {"ontology": 1.0}, {"diverse": 1.0}, {"ontology": 0.7, "random": 0.3}]
)
def test_no_index_repeats_within_an_epoch(ontology, mix):
    sampler = _sampler(
        ontology,
        [Stage(name="s", mix=mix, nodes={"granularity": "depth", "min_depth": 3, "max_depth": 8})],
    )
    flat = [i for b in _epoch(sampler) for i in b]
    assert len(flat) == len(set(flat)) == len(sampler) * 8 and all(
        len(b) == 8 for b in _epoch(sampler)
    )


def test_mixing_uses_both_kinds_by_ratio(ontology):
    sampler = _sampler(
        ontology,
        [Stage(name="s", mix={"ontology": 0.7, "random": 0.3}, nodes={"granularity": "fine"})],
        batch_size=4,
    )
    _epoch(sampler)
    kinds = [d.kind for d in sampler.draws.values()]
    assert 0.15 < kinds.count("random") / len(kinds) < 0.45


def test_deterministic_per_seed_and_epoch(ontology):
    stages = [Stage(name="s", mix={"ontology": 0.5, "diverse": 0.5}, nodes={"granularity": "fine"})]
    a, b = _sampler(ontology, stages, seed=3), _sampler(ontology, stages, seed=3)
    assert _epoch(a) == _epoch(b)
    assert _epoch(a, 1) != _epoch(a, 0)
    assert _epoch(_sampler(ontology, stages, seed=4)) != _epoch(b)


def test_two_ranks_get_distinct_batches_of_equal_count(ontology):
    stages = [Stage(name="s", mix={"ontology": 1.0}, nodes={"granularity": "fine"})]
    ranks = [_epoch(_sampler(ontology, stages, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 400 // 16
    flat = [set(i for b in r for i in b) for r in ranks]
    assert not flat[0] & flat[1]
    assert len(flat[0] | flat[1]) == 400  # 400 = 25 rounds x 2 ranks x 8: full coverage
    assert all(i % 2 == r for r in range(2) for i in flat[r])  # each rank draws its own pairs


def test_a_rank_draws_one_batch_per_step_whatever_the_world_size(ontology, monkeypatch):
    """At 64 ranks a shared global sequence would cost every rank 64 draws a step."""
    from tonics.sampling import kinds

    calls = []
    original = kinds.OntologyKind.draw
    monkeypatch.setattr(
        kinds.OntologyKind, "draw", lambda self, *a: calls.append(1) or original(self, *a)
    )
    sampler = _sampler(
        ontology,
        [Stage(name="s", mix={"ontology": 1.0}, nodes={"granularity": "fine"})],
        rank=1,
        world_size=4,
    )
    batches = _epoch(sampler)
    assert len(batches) == 400 // 32 and len(calls) == len(batches)


def test_skip_resumes_mid_epoch_exactly(ontology):
    stages = [
        Stage(name="a", mix={"diverse": 1.0}, steps=5),
        Stage(name="b", mix={"ontology": 1.0}, nodes={"granularity": "fine"}),
    ]
    full = _epoch(_sampler(ontology, stages))
    resumed = _sampler(ontology, stages)
    resumed.skip = 7
    assert _epoch(resumed) == full[7:]


def test_a_stage_starting_mid_epoch_gets_a_fresh_pass(ontology):
    stages = [
        Stage(name="a", mix={"random": 1.0}, steps=10),
        Stage(name="b", mix={"ontology": 1.0}, nodes={"granularity": "fine"}),
    ]
    sampler = _sampler(ontology, stages)
    batches = _epoch(sampler)
    first, second = [i for b in batches[:10] for i in b], [i for b in batches[10:] for i in b]
    assert len(set(first)) == len(first) and len(set(second)) == len(second)
    assert set(first) & set(second)  # the second stage may reuse pairs the first one drew
    assert all(sampler.draws[s].kind == "ontology" for s in range(10, len(batches)))


def test_stages_advance_by_steps_and_epochs(ontology):
    stages = [
        Stage(name="a", mix={"random": 1.0}, steps=3),
        Stage(name="b", mix={"random": 1.0}, epochs=1),
        Stage(name="c", mix={"random": 1.0}),
    ]
    sampler = _sampler(ontology, stages)
    n = len(sampler)
    _epoch(sampler, 0)
    _epoch(sampler, 1)
    stage_of = {step: d.stage for step, d in sampler.draws.items()}
    assert (
        stage_of[2] == 0 and stage_of[3] == 1 and stage_of[3 + n - 1] == 1 and stage_of[3 + n] == 2
    )


def test_plateau_request_switches_at_the_requested_step(ontology):
    curriculum = Curriculum(
        [
            Stage(name="a", mix={"random": 1.0}, plateau_patience=2),
            Stage(name="b", mix={"diverse": 1.0}),
        ]
    )
    assert curriculum.request_advance(10)
    assert curriculum.stage_index(9, 50) == 0 and curriculum.stage_index(10, 50) == 1
    assert not curriculum.request_advance(20)  # already on the last stage


def test_bad_curricula_fail_before_training(ontology):
    with pytest.raises(CurriculumError, match=r"stages\[0\].*unknown sampler \['hardest'\]"):
        Curriculum([Stage(name="a", mix={"hardest": 1.0})])
    with pytest.raises(CurriculumError, match=r"stages\[0\].*never advances"):
        Curriculum([Stage(name="a", mix={"random": 1.0}), Stage(name="b", mix={"random": 1.0})])
    with pytest.raises(ValueError, match="batch_size: 512"):
        _sampler(ontology, [Stage(name="a")], batch_size=512)


def test_curriculum_state_round_trip():
    curriculum = Curriculum()
    curriculum.stage_index(250, 100)
    state = curriculum.state_dict()
    again = Curriculum()
    again.load_state_dict(state)
    assert again.starts == curriculum.starts == [0, 100, 200]


@pytest.mark.parametrize(
    "stage",
    [
        Stage(name="r", mix={"random": 1.0}),
        Stage(name="d", mix={"diverse": 1.0}),
        Stage(name="o", mix={"ontology": 1.0}, nodes={"granularity": "fine"}),
    ],
    ids=["random", "diverse", "ontology"],
)
def test_one_pair_per_image_caps_every_kind(ontology, stage):
    image_of = np.arange(400) % 80  # five captions per image (of one object), as in COCO
    capped = _sampler(ontology, [stage], pair_images=image_of, one_pair_per_image=True)
    batches = _epoch(capped)
    assert all(len(set(image_of[b])) == len(b) for b in batches)
    assert np.mean([len(b) for b in batches]) > 7  # the cap rarely shortens a batch
    if stage.name != "d":  # (diverse batches differ in object, so in image, anyway)
        plain = _epoch(_sampler(ontology, [stage]))
        assert any(len(set(image_of[b])) < len(b) for b in plain)  # without the cap: duplicates


def test_hard_nodes_are_real_objects_with_distinct_images_and_captions():
    from tonics.sampling.kinds import stage_nodes
    from tonics.sampling.nodes import HardNodeRules, eligible_nodes

    words = ["dog", "cat", "greeting card", "city", "horse"]
    captions = [f"a {words[i % 5]} number {i}" for i in range(500)]
    onto = build_ontology(captions, [str(i) for i in range(500)])
    images = np.arange(500)
    images[1::5] = 1  # every cat pair shows one of only ... one image
    caption_ids = np.arange(500)
    caption_ids[4::5] = 7  # every horse pair has the same caption
    allowed = eligible_nodes(onto, 16, HardNodeRules(), images, caption_ids)
    assert "dog.n.01" in allowed and allowed["dog.n.01"] == (100, 100)
    assert "cat.n.01" not in allowed  # one distinct image
    assert "horse.n.01" not in allowed  # one distinct caption
    assert "card.n.01" not in allowed  # reviewed stop-list (a tag, not an object)
    assert "city.n.01" not in allowed  # noun.location: a place, not an object
    assert "entity.n.01" not in allowed  # noun.Tops: too general
    fine = stage_nodes(
        onto, 16, rules=HardNodeRules(), pair_images=images, pair_captions=caption_ids
    )
    assert "dog.n.01" in fine and not {"cat.n.01", "card.n.01"} & set(fine)
    plain = stage_nodes(onto, 16)  # rules off: any node that fills a batch
    assert {"cat.n.01", "card.n.01"} <= set(plain)


def test_sibling_batches_split_between_sibling_nodes():
    fruits = ["apple", "pear", "grape", "lemon", "orange"]
    captions = [f"a {fruits[i % 5]} number {i}" for i in range(400)]
    onto = build_ontology(captions, [str(i) for i in range(400)])
    stage = Stage(
        name="siblings", mix={"ontology": 1.0}, nodes={"granularity": "fine", "siblings": 2}
    )
    sampler = _sampler(onto, [stage], batch_size=8)
    batches = _epoch(sampler)
    sibling_draws = [
        (s, b) for s, b in enumerate(batches) if "siblings" in (sampler.draws[s].node or "")
    ]
    assert len(sibling_draws) > len(batches) // 2
    for step, batch in sibling_draws:
        objects = [onto.pair_objects[i][0] for i in batch]
        assert len(set(objects)) == 2 and objects.count(objects[0]) == 4  # 4 + 4
        parents = {onto.parent(o) for o in objects}
        assert len(parents) == 1 and sampler.draws[step].node.startswith(parents.pop())


def test_ramped_stage_grows_the_hard_share_gradually(ontology):
    stage = Stage(
        name="ramp",
        mix={"ontology": 0.5, "random": 0.5},
        ramp_steps=40,
        nodes={"granularity": "fine"},
    )
    curriculum = Curriculum([stage])
    assert curriculum.shares(0, 50) == pytest.approx({"ontology": 0.5 / 40, "random": 1 - 0.5 / 40})
    assert curriculum.shares(19, 50)["ontology"] == pytest.approx(0.25)
    assert curriculum.shares(45, 50) == {"ontology": 0.5, "random": 0.5}
    only_hard = Curriculum(
        [Stage(name="hard", mix={"ontology": 1.0}, ramp_steps=10, nodes={"granularity": "fine"})]
    )
    assert only_hard.shares(4, 50) == pytest.approx({"ontology": 0.5, "random": 0.5})
    sampler = CurriculumBatchSampler(ontology, Curriculum([stage]), batch_size=4, seed=3)
    _epoch(sampler)
    kinds = [sampler.draws[s].kind for s in range(len(sampler))]
    early, late = kinds[:20].count("ontology"), kinds[60:].count("ontology")
    assert early < late / (len(kinds[60:]) / 20)  # fewer hard batches early in the ramp


def test_stop_listed_pairs_do_not_reappear_under_the_parent():
    from tonics.sampling.kinds import stage_nodes
    from tonics.sampling.nodes import HardNodeRules, blocked_pairs, hard_pool

    captions = [f"a greeting card number {i}" for i in range(300)] + [
        f"a dog number {i}" for i in range(100)
    ]
    onto = build_ontology(captions, [str(i) for i in range(400)])
    blocked = blocked_pairs(onto, HardNodeRules())
    assert blocked[:300].all() and not blocked[300:].any()
    for node in stage_nodes(onto, 16, rules=HardNodeRules()):
        assert not blocked[hard_pool(onto, node, blocked)].any()
    assert "paper.n.01" not in stage_nodes(onto, 16, rules=HardNodeRules())


def test_sibling_candidates_need_only_their_share_of_a_batch():
    """Objects holding between batch/k and batch pairs cannot fill a batch alone but can fill
    their share of a sibling batch (the defect: candidates used to need a whole batch each)."""
    fruits = ["apple", "pear", "grape", "lemon", "orange"]
    captions = [f"a {fruits[i % 5]} number {i}" for i in range(30)]  # 6 pairs per fruit
    onto = build_ontology(captions, [str(i) for i in range(30)])
    stage = Stage(
        name="siblings",
        mix={"ontology": 1.0},
        nodes={"granularity": "fine", "siblings": 2, "object_nodes_only": False},
    )
    sampler = _sampler(onto, [stage], batch_size=8)
    batches = _epoch(sampler)
    sibling_draws = [s for s in range(len(batches)) if "siblings" in (sampler.draws[s].node or "")]
    assert sibling_draws
    for step in sibling_draws:
        objects = [onto.pair_objects[i][0] for i in batches[step]]
        assert len(set(objects)) == 2 and objects.count(objects[0]) == 4


def test_distinct_counts_of_large_pools_settle_eligibility_exactly():
    from tonics.sampling.nodes import _distinct_enough, distinct_counts

    pool = np.arange(1000)
    every = np.arange(1000)
    images, captions = _distinct_enough(pool, every, every, need=4)  # a sample settles it
    assert 4 <= images <= 1000 and 4 <= captions <= 1000
    few = np.zeros(1000, dtype=int)
    few[[1, 3, 5, 7]] = [1, 2, 3, 4]  # 5 distinct images, none in the evenly spaced sample
    assert (
        _distinct_enough(pool, few, every, need=4) == distinct_counts(pool, few, every) == (5, 1000)
    )
    assert _distinct_enough(pool, np.zeros(1000, dtype=int), every, need=4)[0] == 1  # not enough


def test_diverse_groups_by_counting_equal_groups_by_sorting():
    """The diverse kind's group numbers and pair order (by counting, a 16-bit radix sort) are
    those `np.unique` and a stable int64 argsort give, ties kept in pair order."""
    from tonics.sampling.diverse import _dense_codes, _narrowest

    rng = np.random.default_rng(3)
    key = rng.integers(0, 5000, size=20_000) * 3  # gaps between the values used
    used, codes = _dense_codes(key)
    expected_used, expected_codes = np.unique(key, return_inverse=True)
    assert np.array_equal(used, expected_used) and np.array_equal(codes, expected_codes)
    assert (
        _narrowest(codes).dtype == np.uint16 and _narrowest(np.array([70_000])).dtype == np.uint32
    )
    assert np.array_equal(
        np.argsort(_narrowest(codes), kind="stable"), np.argsort(codes, kind="stable")
    )
    assert _dense_codes(np.zeros(0, dtype=np.int64))[1].shape == (0,)
