"""When the towers open, and which feature path serves each training step: one plan, asked by all.

Towers start frozen. They open at curriculum stages (`data.stages[i].opening.text` /
`.vision`: k top blocks or 'all') and at a step (`model.opening.at_step`, with
`model.opening.top_k` blocks or the whole tower). Openings persist: once a stage opens k blocks
they stay open in every later stage, and a later, wider opening widens them (`widest`).

With `data.cache.enabled`, a step where both towers are frozen trains the heads from pooled
features computed once ("pooled"; with a captioning head, which reads the vision tower's token
map, from a prefix cache instead: `token_split`); a step whose towers open only top-k blocks
trains them from the cached activations of the frozen prefix ("prefix"), when a prefix cache
could be built for that split (`use_prefix_caches`, told once by the model after building them);
any other step encodes images and captions live ("live").

The sampler asks `served_from_cache` (a cached step needs no image decoded), the model asks
`at` (which blocks to open at a step) and `cache_splits` (which prefix caches to build), the
callbacks ask `at` at stage changes; none of them computes openings on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

Opening = int | str | None  # None: no change; "all": whole tower; k: its top-k blocks
Split = tuple[int, int]  # (text k, vision k) top blocks that train; 0: frozen
FeaturePath = Literal["pooled", "prefix", "live"]
TOWERS = ("text", "vision")


def widest(current: Opening, spec: Opening) -> Opening:
    """The opening in force after `spec` is applied on top of `current` (openings never close:
    'all' stays, k then j leaves max(k, j) blocks open)."""
    if spec is None or current == "all":
        return current
    if spec == "all" or current is None:
        return spec
    return max(int(current), int(spec))


def split_of(openings: dict[str, Opening]) -> Split | None:
    """The prefix split for these towers' openings, or None when a tower is opened wholly."""
    if "all" in openings.values():
        return None
    return (int(openings["text"] or 0), int(openings["vision"] or 0))


class Openings:
    """The run's tower openings by step and stage, and the feature path serving each step."""

    def __init__(
        self,
        stages: Sequence[tuple[Opening, Opening]] = (),
        *,
        at_step: int | None = None,
        top_k: int | None = None,
        feature_cache: bool = False,
        tokens: bool = False,
    ) -> None:
        """`stages`: each curriculum stage's (text, vision) opening; `at_step` / `top_k`: both
        towers open at that step, top_k blocks or wholly; `feature_cache`: cached paths allowed;
        `tokens`: every step needs the vision tower's token map (a captioning head), which
        pooled features do not hold (see `token_split`)."""
        self.stages = tuple(stages)
        self.at_step = at_step
        self.top_k = top_k
        self.feature_cache = feature_cache
        self.tokens = tokens
        self.prefix_splits: frozenset[Split] = frozenset()

    @classmethod
    def plan(
        cls, stages, *, at_step=None, top_k=None, feature_cache=False, tokens=False
    ) -> Openings:
        """The plan of curriculum `stages` (objects whose `opening` has `text` / `vision`)."""
        pairs = [(s.opening.text, s.opening.vision) for s in stages]
        return cls(pairs, at_step=at_step, top_k=top_k, feature_cache=feature_cache, tokens=tokens)

    def at(self, step: int, stage: int | None) -> dict[str, Opening]:
        """Each tower's opening in force at `step` in stage `stage`: None, k or 'all'."""
        openings: dict[str, Opening] = {"text": None, "vision": None}
        for text, vision in self.stages[: stage + 1] if stage is not None else ():
            openings["text"] = widest(openings["text"], text)
            openings["vision"] = widest(openings["vision"], vision)
        if self.at_step is not None and step >= self.at_step:
            for tower in TOWERS:
                openings[tower] = widest(openings[tower], self.top_k or "all")
        return openings

    def frozen_at(self, step: int, stage: int) -> bool:
        """Whether both towers are still frozen at `step` (nothing has opened them)."""
        return all(opening is None for opening in self.at(step, stage).values())

    def cache_splits(self) -> tuple[list[Split], list[int]]:
        """The distinct top-k splits a prefix cache could serve (text k, vision k; in stage
        order), and the stages that open a whole tower (those train live)."""
        splits: list[Split] = []
        whole: set[int] = set()
        steps = {0, self.at_step} if self.at_step is not None else {0}
        for index in range(len(self.stages)):
            for step in steps:
                split = split_of(self.at(step, index))
                if split is None:
                    whole.add(index)
                elif split != (0, 0) and split not in splits:
                    splits.append(split)
        if self.tokens and self.token_split(splits) not in splits:
            splits.append(self.token_split(splits))
        return splits, sorted(whole)

    def token_split(self, splits: Sequence[Split] | None = None) -> Split:
        """With `tokens`, the prefix split that serves frozen steps: the first planned split that
        cuts the vision tower (its frozen top blocks run each step and give the token map), else
        the top vision block alone, (0, 1)."""
        if splits is None:
            splits = [s for s in self.cache_splits()[0]]
        return next((s for s in splits if s[1] > 0), (0, 1))

    def use_prefix_caches(self, splits: Iterable[Split]) -> None:
        """Record the splits whose prefix cache was built (the others train live)."""
        self.prefix_splits = frozenset(splits)

    def path_at(self, step: int, stage: int) -> FeaturePath:
        """How the features of `step` are computed: pooled cache, prefix cache or live."""
        if not self.feature_cache:
            return "live"
        if self.frozen_at(step, stage) and not self.tokens:
            return "pooled"
        split = split_of(self.at(step, stage))
        if self.tokens and split == (0, 0):
            split = self.token_split()
        if self.tokens and split is not None and split[1] == 0:
            return "live"  # vision pooled features only: no token map
        return "prefix" if split in self.prefix_splits else "live"

    def served_from_cache(self, step: int, stage: int) -> bool:
        """Whether the batch of `step` needs no image decoded (its features are cached)."""
        return self.path_at(step, stage) != "live"
