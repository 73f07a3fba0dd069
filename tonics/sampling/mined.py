"""Mined batches with false-negative control (B3, Thirukovalluru et al. 2025): an anchor pair and
the pairs a teacher ranks just below its nearest neighbours.

A teacher embeds every training pair (`teacher`: one row per pair, L2-normalised; tonics uses the
frozen towers' pooled features, text and image halves averaged). For a random available anchor the
other pairs are ranked by cosine similarity; the top `skip` are left out as likely false negatives
(another photo of the same scene, a paraphrase), and the batch is filled from the next ranks that
are still available this epoch, so its negatives are hard but probably true. `within="object"`
ranks only the pairs that share the anchor's main ontology object (B3 within a node); "global"
ranks all pairs. Too few candidates: the batch is topped up at random.

Cost: one (pairs x width) product per batch, fine at the demo's size; at millions of pairs a
precomputed approximate neighbour index would be needed.
"""

from __future__ import annotations

import numpy as np
import torch

from tonics.sampling.kinds import BatchKind, Draw, RandomKind

MINE_WITHIN = ("global", "object")


def teacher_rows(text: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
    """One L2-normalised teacher row per pair from its text (and image) features: a dot product of
    two rows is the mean of their text and image cosine similarities."""
    parts = [_normalise(text)] + ([_normalise(image)] if image is not None else [])
    return np.concatenate(parts, axis=1) / np.sqrt(len(parts))


def _normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


class MinedKind(BatchKind):
    """An anchor and the available pairs ranked after its `skip` nearest by the teacher."""

    name = "mined"

    def __init__(
        self,
        teacher: np.ndarray,
        *,
        skip: int = 30,
        within: str = "global",
        main_objects: list[str | None] | None = None,
        image_of: np.ndarray | None = None,
    ) -> None:
        """`main_objects`: each pair's main object (needed for `within="object"`)."""
        if within not in MINE_WITHIN:
            raise ValueError(f"within must be one of {MINE_WITHIN}, got '{within}'")
        self.teacher = np.asarray(teacher, dtype=np.float32)
        self.skip = skip
        self.within = within
        self.image_of = image_of
        self.random = RandomKind(len(self.teacher), image_of)
        self.groups: dict[str, np.ndarray] = {}
        if within == "object":
            keys = np.array([o or "" for o in main_objects], dtype=object)
            for key in set(keys.tolist()) - {""}:
                self.groups[key] = np.flatnonzero(keys == key)
            self.object_of = keys

    def ranked(self, anchor: int) -> np.ndarray:
        """The other pairs of the anchor's pool, most similar first (ties by index)."""
        pool = None
        if self.within == "object" and self.object_of[anchor]:
            pool = self.groups[self.object_of[anchor]]
        candidates = pool if pool is not None else np.arange(len(self.teacher))
        scores = self.teacher[candidates] @ self.teacher[anchor]
        order = np.lexsort((candidates, -scores))
        ranked = candidates[order]
        return ranked[ranked != anchor]

    def draw(self, available, size, rng) -> Draw:
        """The anchor, then available pairs from rank `skip` on (one per image when capped)."""
        free = np.flatnonzero(available)
        if not len(free):
            return Draw(np.zeros(0, dtype=np.int64), self.name)
        anchor = int(free[rng.integers(len(free))])
        candidates = self.ranked(anchor)[self.skip :]
        candidates = candidates[available[candidates]]
        if self.image_of is not None:
            candidates = candidates[self.image_of[candidates] != self.image_of[anchor]]
            _, first = np.unique(self.image_of[candidates], return_index=True)
            candidates = candidates[np.sort(first)]
        chosen = np.concatenate([[anchor], candidates[: size - 1]]).astype(np.int64)
        available[chosen] = False
        if len(chosen) < size:
            extra = self.random.draw(available, size - len(chosen), rng).indices
            chosen = np.concatenate([chosen, extra])
        return Draw(chosen, self.name)


MINE_TEACHERS = ("frozen", "current")


class TeacherSchedule:
    """Teacher rows by training step, for mined batches ranked by the model being trained.

    Version 0 is the frozen towers' rows (the model before it has trained). A refresh after step
    `k * every` (k >= 1) embeds every pair with the model as it is then; its rows rank the batches
    of steps `k * every + delay` on. The fixed `delay` (the curriculum callback's lookahead, more
    than the loader prefetches) makes the batches of a step independent of how far ahead the loader
    draws; a batch whose version is not made yet is an error, never a silent older teacher.
    """

    def __init__(
        self, initial: np.ndarray, every: int, steps_per_epoch: int, delay: int = 8
    ) -> None:
        """`initial`: version 0's rows; `every`: steps between refreshes; `steps_per_epoch`: the
        sampler's (a resumed sampler replays its epoch's draws from the epoch's first step, so the
        versions since then are kept); `delay`: see above."""
        if every < 1 or delay < 0 or steps_per_epoch < 1:
            raise ValueError(
                f"every and steps_per_epoch must be >= 1 and delay >= 0, got {every}, "
                f"{steps_per_epoch} and {delay}"
            )
        self.every = every
        self.steps_per_epoch = steps_per_epoch
        self.delay = delay
        self.versions: dict[int, np.ndarray] = {0: np.asarray(initial, dtype=np.float32)}

    def due(self, steps_done: int) -> bool:
        """Whether the model after `steps_done` steps makes a new version."""
        return steps_done > 0 and steps_done % self.every == 0

    def add(self, steps_done: int, rows: np.ndarray) -> None:
        """Record the version made after `steps_done` steps (a multiple of `every`)."""
        if not self.due(steps_done):
            raise ValueError(
                f"a refresh comes after a multiple of {self.every} steps, not {steps_done}"
            )
        self.versions[steps_done // self.every] = np.asarray(rows, dtype=np.float32)
        oldest = self._oldest_needed(steps_done)
        self.versions = {k: v for k, v in self.versions.items() if k >= oldest}

    def _oldest_needed(self, steps_done: int) -> int:
        """The oldest version the sampler can still ask for: that of its epoch's first step."""
        return self.version_at(steps_done - steps_done % self.steps_per_epoch)

    def version_at(self, step: int) -> int:
        """The version that ranks the batch of `step`."""
        return max(0, (step - self.delay) // self.every)

    def rows_for(self, step: int) -> np.ndarray:
        """The teacher rows for the batch of `step`."""
        version = self.version_at(step)
        if version not in self.versions:
            raise RuntimeError(
                f"mined batches: the teacher refreshed after step {version * self.every} is "
                f"needed for step {step} but is not made yet: the loader draws more than "
                f"{self.delay} steps ahead; raise curriculum.lookahead or lower "
                "data.loader.num_workers"
            )
        return self.versions[version]

    def state_dict(self, steps_done: int) -> dict:
        """The versions a run resumed at `steps_done` can ask for (the rest are never needed)."""
        oldest = self._oldest_needed(steps_done)  # as tensors: checkpoints load weights-only
        return {
            "versions": {k: torch.from_numpy(v) for k, v in self.versions.items() if k >= oldest}
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore saved versions (a resumed run ranks exactly as the uninterrupted one)."""
        self.versions.update({int(k): np.asarray(v) for k, v in state["versions"].items()})
        # np.asarray of a tensor shares its memory: the rows stay float32, as made
