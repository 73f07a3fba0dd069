"""Choose a vector index and its search parameters for a recall target, on the collection itself.

The collection's own vectors are the test: a seeded sample of its rows (1,000, or a tenth of a
small collection) is held out, each candidate is built over the rest, and each held-out row is
searched for its 10 nearest rest rows, exactly and through the candidate; a setting's recall@10 is
the share of the exact neighbours it finds. The chosen setting then serves an index over every
vector. The queries are never in the index they probe: a vector inside an HNSW graph reaches its
neighbours through its own links, which overstates what an outside query (words, a new picture)
gets (0.96 against 0.80 at efSearch 16 on 100k text-tower vectors). The candidates:

- 'ivf': k-means cells (`ivf_lists`, about 4*sqrt(n)); the probes double from 1 until the sample
  reaches the target. IVF builds in seconds, so `auto` tries it for every collection above
  `approximate_above` vectors.
- 'hnsw' (asked for by name): 32 links a node; efSearch doubles from 16 until the target is met.
  Not tried by `auto`: on 2 CPU cores it builds about 10x slower than IVF (137 s against 12 s at
  100k vectors, `benchmarks/results/search.json`).
- 'flat' (exact): recall 1 by construction. `auto` keeps it when the collection is small, and
  when the IVF setting that reaches the target would score more than a quarter of the vectors a
  query (`IVF_MAX_SHARE`; vectors with no neighbourhood structure need most cells scanned). The
  choice counts vectors scored, not milliseconds, so the same collection always gets the same
  index on any machine.

Each tried setting is recorded (`Tuned.trials`), with the chosen one's recall and its p50/p99
latency (one query at a time), so an index says what it reaches. When no setting reaches the
target, the best recall found is chosen and reported, never a hand-picked one.

autofaiss (clip-retrieval's indexer) solves a different problem: it takes a memory budget and a
query-time limit and maximises an estimate of recall inside them; its input is not a recall
target, and it reads embeddings from .npy/parquet folders through fsspec, pulling embedding-reader,
pandas and fire. The search here is a doubling sweep over one parameter per kind, written here.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from tonics.search.vectors import ExactIndex, build_vector_index

DEFAULT_RECALL = 0.95
APPROXIMATE_ABOVE = 200_000  # auto: exact search up to this many vectors (tens of ms a query)
DEFAULT_SAMPLE = 1000
LATENCY_QUERIES = 200
IVF_MAX_SHARE = 0.25  # auto keeps IVF only if a query scores at most this share of the vectors


def ivf_scored(n: int, lists: int, probes: int) -> int:
    """Vectors an IVF query scores: every cell centre, then the vectors of `probes` cells of
    average size."""
    return lists + round(n * probes / lists)


@dataclass
class Tuned:
    """A built vector index with the setting chosen for it and what that setting reaches."""

    index: object
    kind: str
    params: dict
    recall_at_10: float
    p50_ms: float
    p99_ms: float
    target: float
    sample: int
    trials: list[dict] = field(default_factory=list)
    sample_rows: np.ndarray | None = None  # the collection rows the recall was measured on

    def report(self) -> dict:
        """What the index manifest records and `tonics search query --json` reports."""
        return {
            "kind": self.kind,
            **self.params,
            "recall_at_10": self.recall_at_10,
            "recall_target": self.target,
            "recall_sample": self.sample,
            "query_p50_ms": self.p50_ms,
            "query_p99_ms": self.p99_ms,
            "trials": self.trials,
        }


def apply_params(index, kind: str, params: dict) -> None:
    """Set an index's search parameters (probes of an IVF index, efSearch of an HNSW graph);
    ValueError for a value that is not a positive integer."""
    name = {"ivf": "nprobe", "hnsw": "ef_search"}.get(kind)
    if name is None or name not in params:
        return
    value = params[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if kind == "ivf":
        index.nprobe = min(value, int(index.nlist))
    else:
        index.hnsw.efSearch = value


class _Sample:
    """A held-out sample of the collection: `size` rows (seeded) kept out of the tuning index, the
    rest it is built over, each held-out row's exact 10 nearest rest rows, the recall target, and
    a recall and latency probe. Queries never in the index: a vector that is in an HNSW graph finds
    its neighbours through its own links, which would overstate the recall of outside queries."""

    def __init__(self, embeddings: np.ndarray, size: int, seed: int, target: float) -> None:
        self.target = target
        rng = np.random.default_rng(seed)
        held = min(size, max(1, len(embeddings) // 10)) if len(embeddings) > 1 else 0
        self.rows = np.sort(rng.choice(len(embeddings), held, replace=False))
        self.queries = np.ascontiguousarray(embeddings[self.rows], dtype=np.float32)
        kept = np.ones(len(embeddings), dtype=bool)
        kept[self.rows] = False
        self.rest = np.ascontiguousarray(embeddings[kept], dtype=np.float32)
        self.k = min(10, len(self.rest))
        self._exact: list[set] | None = None

    @property
    def exact(self) -> list[set]:
        """Each held-out row's exact 10 nearest rest rows (computed on first use)."""
        if self._exact is None:
            found = ExactIndex(self.rest).search(self.queries, self.k)[1]
            self._exact = [{int(r) for r in row} for row in found]
        return self._exact

    def recall(self, index) -> float:
        """Share of the exact neighbours `index` (over the rest) returns, over the sample."""
        if not len(self.rows) or not self.k:
            return 1.0
        found = index.search(self.queries, self.k)[1]
        hits = [len({int(r) for r in f} & e) / self.k for f, e in zip(found, self.exact)]
        return round(float(np.mean(hits)), 4)

    def latency(self, index) -> tuple[float, float]:
        """p50 and p99 milliseconds of one 10-nearest query at a time."""
        times = []
        for query in self.queries[:LATENCY_QUERIES]:
            started = time.perf_counter()
            index.search(query[None], 10)
            times.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(times), 3), round(float(np.percentile(times, 99)), 3)


def _sweep(index, kind: str, name: str, values: list[int], sample: _Sample, target: float):
    """Try `values` of parameter `name` in order, stopping at the first that reaches `target`;
    returns (best params, recall, trials)."""
    trials, best = [], None
    for value in values:
        apply_params(index, kind, {name: value})
        recall = sample.recall(index)
        trials.append({"kind": kind, name: value, "recall_at_10": recall})
        if best is None or recall > best[1]:
            best = ({name: value}, recall)
        if recall >= target:
            return {name: value}, recall, trials
    return best[0], best[1], trials


def _doublings(start: int, stop: int) -> list[int]:
    values = [start]
    while values[-1] < stop:
        values.append(min(stop, values[-1] * 2))
    return values


def tune(
    embeddings: np.ndarray,
    kind: str = "auto",
    *,
    target: float = DEFAULT_RECALL,
    sample: int = DEFAULT_SAMPLE,
    approximate_above: int = APPROXIMATE_ABOVE,
    seed: int = 0,
) -> Tuned:
    """Build the index of `kind` ('auto', 'flat', 'ivf', 'hnsw') over L2-normalised `embeddings`
    and tune its search parameter for recall@10 >= `target` on a sample of the collection."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    probe = _Sample(embeddings, sample, seed, target)
    flat = ExactIndex(embeddings)
    flat_p50, flat_p99 = probe.latency(flat)
    exact = Tuned(flat, "flat", {}, 1.0, flat_p50, flat_p99, target, len(probe.rows))
    exact.trials = [{"kind": "flat", "recall_at_10": 1.0, "query_p50_ms": flat_p50}]
    exact.sample_rows = probe.rows
    if kind == "flat" or (kind == "auto" and len(embeddings) <= approximate_above):
        return exact
    tuned = _tune_approximate(embeddings, "hnsw" if kind == "hnsw" else "ivf", probe, seed)
    if kind == "auto" and prefers_exact(tuned, len(embeddings)):
        exact.trials += tuned.trials  # exact search: the target met at a comparable cost
        return exact
    if kind == "auto":
        tuned.trials = exact.trials + tuned.trials
    return tuned


def prefers_exact(tuned: Tuned, n: int) -> bool:
    """Whether `auto` keeps exact search over a tuned IVF index of n vectors: the IVF index
    misses the target, or reaching it scores more than `IVF_MAX_SHARE` of the vectors a query."""
    if tuned.kind != "ivf":
        return False
    scored = ivf_scored(n, tuned.params["nlist"], tuned.params["nprobe"])
    return tuned.recall_at_10 < tuned.target or scored > IVF_MAX_SHARE * n


def _tune_approximate(embeddings: np.ndarray, kind: str, probe: _Sample, seed: int) -> Tuned:
    """Sweep an IVF or HNSW index's search parameter up to the target on an index over the rest
    of the collection (the held-out sample outside it), then index every vector: an IVF index
    keeps its trained cells and adds them all again in row order, an HNSW graph is built anew."""
    index = build_vector_index(probe.rest, kind, seed=seed)
    if kind == "hnsw":
        values, name = _doublings(16, 4096), "ef_search"
    else:
        values, name = _doublings(1, int(index.nlist)), "nprobe"
    params, recall, trials = _sweep(index, kind, name, values, probe, probe.target)
    if kind == "ivf":
        params["nlist"] = int(index.nlist)
        for trial in trials:
            trial["nlist"] = params["nlist"]
            trial["vectors_scored"] = ivf_scored(len(embeddings), params["nlist"], trial["nprobe"])
    if kind == "ivf":
        index.reset()  # the cells stay trained
        index.add(embeddings)
    else:
        index = build_vector_index(embeddings, kind, seed=seed)
    apply_params(index, kind, params)
    p50, p99 = probe.latency(index)
    next(t for t in trials if t[name] == params[name])["query_p50_ms"] = p50
    tuned = Tuned(index, kind, params, recall, p50, p99, probe.target, len(probe.rows))
    tuned.trials, tuned.sample_rows = trials, probe.rows
    return tuned
