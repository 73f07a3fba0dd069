"""Samplers and curriculum: node-sharing batches, no repeats, determinism, DDP split, stages."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from ontology import build_ontology
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
    sampler = _sampler(ontology, [Stage("fine", {"ontology": 1.0}, "fine")])
    for step, batch in enumerate(_epoch(sampler)):
        draw = sampler.draws[step]
        if draw.kind != "ontology":
            continue
        members = {draw.node} | nx.descendants(ontology.graph, draw.node)
        assert all(members.intersection(ontology.pair_objects[i]) for i in batch)
        assert ontology.graph.nodes[draw.node]["depth"] == draw.depth


def test_fine_stage_batches_are_mostly_single_object(ontology):
    sampler = _sampler(ontology, [Stage("fine", {"ontology": 1.0}, "fine")])
    single = [len({ontology.pair_objects[i] for i in b}) == 1 for b in _epoch(sampler)]
    assert np.mean(single) > 0.7  # late in the epoch depleted nodes fall back to parents


def test_diverse_batches_cover_many_objects(ontology):
    sampler = _sampler(ontology, [Stage("diverse", {"diverse": 1.0})])
    batches = _epoch(sampler)
    assert min(len({ontology.pair_objects[i] for i in b}) for b in batches[:20]) == 8


@pytest.mark.parametrize(
    "mix", [{"random": 1.0}, {"ontology": 1.0}, {"diverse": 1.0}, {"ontology": 0.7, "random": 0.3}]
)
def test_no_index_repeats_within_an_epoch(ontology, mix):
    sampler = _sampler(ontology, [Stage("s", mix, "depth", 3, 8)])
    flat = [i for b in _epoch(sampler) for i in b]
    assert len(flat) == len(set(flat)) == len(sampler) * 8 and all(
        len(b) == 8 for b in _epoch(sampler)
    )


def test_mixing_uses_both_kinds_by_ratio(ontology):
    sampler = _sampler(
        ontology, [Stage("s", {"ontology": 0.7, "random": 0.3}, "fine")], batch_size=4
    )
    _epoch(sampler)
    kinds = [d.kind for d in sampler.draws.values()]
    assert 0.15 < kinds.count("random") / len(kinds) < 0.45


def test_deterministic_per_seed_and_epoch(ontology):
    stages = [Stage("s", {"ontology": 0.5, "diverse": 0.5}, "fine")]
    a, b = _sampler(ontology, stages, seed=3), _sampler(ontology, stages, seed=3)
    assert _epoch(a) == _epoch(b)
    assert _epoch(a, 1) != _epoch(a, 0)
    assert _epoch(_sampler(ontology, stages, seed=4)) != _epoch(b)


def test_two_ranks_get_distinct_batches_of_equal_count(ontology):
    stages = [Stage("s", {"ontology": 1.0}, "fine")]
    ranks = [_epoch(_sampler(ontology, stages, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 400 // 16
    flat = [set(i for b in r for i in b) for r in ranks]
    assert not flat[0] & flat[1]
    assert len(flat[0] | flat[1]) == 400  # 400 = 25 rounds x 2 ranks x 8: full coverage


def test_skip_resumes_mid_epoch_exactly(ontology):
    stages = [Stage("a", {"diverse": 1.0}, steps=5), Stage("b", {"ontology": 1.0}, "fine")]
    full = _epoch(_sampler(ontology, stages))
    resumed = _sampler(ontology, stages)
    resumed.skip = 7
    assert _epoch(resumed) == full[7:]


def test_a_stage_starting_mid_epoch_gets_a_fresh_pass(ontology):
    stages = [Stage("a", {"random": 1.0}, steps=10), Stage("b", {"ontology": 1.0}, "fine")]
    sampler = _sampler(ontology, stages)
    batches = _epoch(sampler)
    first, second = [i for b in batches[:10] for i in b], [i for b in batches[10:] for i in b]
    assert len(set(first)) == len(first) and len(set(second)) == len(second)
    assert set(first) & set(second)  # the second stage may reuse pairs the first one drew
    assert all(sampler.draws[s].kind == "ontology" for s in range(10, len(batches)))


def test_stages_advance_by_steps_and_epochs(ontology):
    stages = [
        Stage("a", {"random": 1.0}, steps=3),
        Stage("b", {"random": 1.0}, epochs=1),
        Stage("c", {"random": 1.0}),
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
        [Stage("a", {"random": 1.0}, plateau_patience=2), Stage("b", {"diverse": 1.0})]
    )
    assert curriculum.request_advance(10)
    assert curriculum.stage_index(9, 50) == 0 and curriculum.stage_index(10, 50) == 1
    assert not curriculum.request_advance(20)  # already on the last stage


def test_bad_curricula_fail_before_training(ontology):
    with pytest.raises(CurriculumError, match=r"stages\[0\].*unknown sampler \['hardest'\]"):
        Curriculum([Stage("a", {"hardest": 1.0})])
    with pytest.raises(CurriculumError, match=r"stages\[0\].*never advances"):
        Curriculum([Stage("a", {"random": 1.0}), Stage("b", {"random": 1.0})])
    with pytest.raises(ValueError, match="batch_size: 512"):
        _sampler(ontology, [Stage("a")], batch_size=512)


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
        Stage("r", {"random": 1.0}),
        Stage("d", {"diverse": 1.0}),
        Stage("o", {"ontology": 1.0}, "fine"),
    ],
    ids=["random", "diverse", "ontology"],
)
def test_one_pair_per_image_caps_every_kind(ontology, stage):
    image_of = np.arange(400) % 80  # five captions per image (of one object), as in COCO
    capped = _sampler(ontology, [stage], image_of=image_of)
    batches = _epoch(capped)
    assert all(len(set(image_of[b])) == len(b) for b in batches)
    assert np.mean([len(b) for b in batches]) > 7  # the cap rarely shortens a batch
    if stage.name != "d":  # (diverse batches differ in object, so in image, anyway)
        plain = _epoch(_sampler(ontology, [stage]))
        assert any(len(set(image_of[b])) < len(b) for b in plain)  # without the cap: duplicates
