"""Index tuning for a recall target (`tonics.search.tuning`): the probes (or efSearch) chosen are
the fewest that reach the target on a held-out sample of the collection's own vectors, the recall
it records is the recall a brute-force search gives for that sample against an index without it,
and `auto` keeps exact search where an approximate index would have to scan most of the
collection."""

from __future__ import annotations

import numpy as np
import pytest

from tonics.search.tuning import IVF_MAX_SHARE, apply_params, ivf_scored, tune
from tonics.search.vectors import build_vector_index


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int = 20_000, width: int = 64, clusters: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = _unit(rng.standard_normal((clusters, width)))
    noise = 0.5 * rng.standard_normal((n, width)) / np.sqrt(width)
    return _unit(centres[rng.integers(0, clusters, n)] + noise)


def _iid(n: int = 20_000, width: int = 128) -> np.ndarray:
    return _unit(np.random.default_rng(1).standard_normal((n, width)))


def _brute_force_recall(vectors: np.ndarray, held_out: np.ndarray, kind: str, params) -> float:
    """Recall@10 of the held-out rows against an index of `kind` over the other rows at `params`,
    each held-out row's 10 nearest other rows found by sorting every score (numpy)."""
    rest = np.delete(vectors, held_out, axis=0)
    exact = np.argsort(-(vectors[held_out] @ rest.T), axis=1, kind="stable")[:, :10]
    index = build_vector_index(rest, kind)
    apply_params(index, kind, params)
    _, found = index.search(vectors[held_out], 10)
    return float(np.mean([len(set(e) & set(f)) / 10 for e, f in zip(exact, found)]))


def test_ivf_probes_are_the_fewest_that_reach_the_target_and_its_recall_is_true():
    vectors = _clustered()
    tuned = tune(vectors, "auto", approximate_above=1_000)
    assert tuned.kind == "ivf" and tuned.recall_at_10 >= 0.95
    tried = [t for t in tuned.trials if t["kind"] == "ivf"]
    assert [t["nprobe"] for t in tried] == [2**i for i in range(len(tried))]
    assert tried[-1]["nprobe"] == tuned.params["nprobe"]
    assert all(t["recall_at_10"] < 0.95 for t in tried[:-1])  # one probe fewer misses it
    reference = _brute_force_recall(vectors, tuned.sample_rows, "ivf", tuned.params)
    assert tuned.recall_at_10 == pytest.approx(reference, abs=1e-4)
    assert tuned.report()["recall_at_10"] == tuned.recall_at_10
    assert tuned.index.ntotal == len(vectors)  # the chosen setting serves every vector


def test_auto_keeps_exact_search_where_ivf_must_scan_most_of_the_collection():
    vectors = _iid()
    tuned = tune(vectors, "auto", approximate_above=1_000)
    assert (tuned.kind, tuned.recall_at_10, tuned.params) == ("flat", 1.0, {})
    tried = [t for t in tuned.trials if t["kind"] == "ivf"]
    reached = next(t for t in tried if t["recall_at_10"] >= 0.95)
    assert reached["vectors_scored"] > IVF_MAX_SHARE * len(vectors)
    assert reached["vectors_scored"] == ivf_scored(
        len(vectors), reached["nlist"], reached["nprobe"]
    )
    cheap = tune(vectors, "auto", target=0.2, approximate_above=1_000)  # the plant: reachable
    assert cheap.kind == "ivf" and 0.2 <= cheap.recall_at_10 < 0.95


def test_hnsw_ef_search_doubles_until_the_target():
    vectors = _iid(10_000)
    tuned = tune(vectors, "hnsw")
    assert tuned.kind == "hnsw" and tuned.recall_at_10 >= 0.95
    tried = tuned.trials
    assert [t["ef_search"] for t in tried] == [16 * 2**i for i in range(len(tried))]
    assert len(tried) > 1 and all(t["recall_at_10"] < 0.95 for t in tried[:-1])
    reference = _brute_force_recall(vectors, tuned.sample_rows, "hnsw", tuned.params)
    assert tuned.recall_at_10 == pytest.approx(reference, abs=1e-4)
    assert tuned.index.ntotal == len(vectors)


def test_a_small_collection_stays_exact_without_building_an_approximate_index():
    tuned = tune(_clustered(500), "auto")
    assert tuned.kind == "flat" and [t["kind"] for t in tuned.trials] == ["flat"]
