"""A curriculum: an ordered list of stages, each with its batch-kind mix and granularity, and a rule
for moving on (after N steps, after N epochs, or when validation loss plateaus).

The curriculum's state is the list of steps at which each reached stage began. That list, saved in
checkpoints, is all a resumed run needs to replay exactly the batches of the uninterrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tonics.errors import ConfigError
from tonics.sampling.factory import KINDS, ranks_by_teacher

UnfreezeSpec = int | str | None  # None: no change; "all": whole encoder; k: its top-k blocks


@dataclass(frozen=True)
class HardNodes:
    """Which ontology nodes a stage's hard (`ontology`) batches come from.

    granularity: "fine" (the deepest nodes that can fill a batch: the objects themselves on a
        large corpus) or "depth" (nodes with min_depth <= depth <= max_depth: coarse categories).
    alpha: a node's probability ~ its subtree's pairs ** alpha; 0: uniform over nodes.
    object_nodes_only: only real, depicted objects (`tonics.sampling.nodes`).
    min_distinct: distinct images and captions a node needs (None: the batch size).
    siblings: above 1, a batch from that many sibling nodes (batch/siblings pairs each).
    """

    granularity: str = "fine"
    min_depth: int = 0
    max_depth: int = 100
    alpha: float = 1.0
    object_nodes_only: bool = False
    min_distinct: int | None = None
    siblings: int = 1


@dataclass(frozen=True)
class Mining:
    """How a stage's `mined` batches rank pairs (B3).

    skip: the teacher's nearest neighbours left out of a batch (B3's p).
    within: rank all pairs ("global") or only those of the anchor's main "object".
    teacher: the "frozen" towers rank pairs, or the "current" model, re-embedding all pairs every
        `refresh` steps.
    """

    skip: int = 30
    within: str = "global"
    teacher: str = "frozen"
    refresh: int = 100


@dataclass(frozen=True)
class TowerOpening:
    """The encoders a stage opens when it starts: per tower None (no change), 'all' (the whole
    encoder) or k (its top-k blocks). Openings never close."""

    text: UnfreezeSpec = None
    vision: UnfreezeSpec = None


@dataclass
class Stage:
    """One curriculum stage, made of small groups.

    mix: batch kinds and their shares, e.g. {"ontology": 0.7, "random": 0.3}; ramp_steps: above
        0, the non-random shares grow from 0 to the mix's over that many steps.
    nodes: where hard batches come from (`HardNodes`); mining: how mined batches rank pairs
        (`Mining`); opening: the towers opened when the stage starts (`TowerOpening`).
    steps / epochs / plateau_patience: when to move on (exactly one, except on the last stage).
    """

    name: str = "stage"
    mix: dict[str, float] = field(default_factory=lambda: {"random": 1.0})
    ramp_steps: int = 0
    nodes: HardNodes = field(default_factory=HardNodes)
    mining: Mining = field(default_factory=Mining)
    opening: TowerOpening = field(default_factory=TowerOpening)
    steps: int | None = None
    epochs: int | None = None
    plateau_patience: int | None = None

    def __post_init__(self) -> None:
        """Groups given as mappings (a Python caller, a saved config) become their classes."""
        for name, group in (("nodes", HardNodes), ("mining", Mining), ("opening", TowerOpening)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, group(**value))


def default_stages(steps_per_stage: int = 100) -> list[Stage]:
    """TOnICS's default: object-diverse batches, then coarse ontology nodes, then leaf objects."""
    coarse = HardNodes(granularity="depth", min_depth=4, max_depth=7)
    return [
        Stage(name="diverse", mix={"diverse": 0.5, "random": 0.5}, steps=steps_per_stage),
        Stage(
            name="coarse", mix={"ontology": 0.7, "random": 0.3}, nodes=coarse, steps=steps_per_stage
        ),
        Stage(name="fine", mix={"ontology": 1.0}),
    ]


class CurriculumError(ConfigError):
    """A curriculum that cannot run; the message names the stage field (`data.stages[i].field`)."""


def _check_unfreeze_spec(spec, key: str) -> None:
    ok = (
        spec is None
        or spec == "all"
        or (isinstance(spec, int) and not isinstance(spec, bool) and spec > 0)
    )
    if not ok:
        raise CurriculumError(key, f"'all' or a positive number of top blocks; got {spec!r}")


def _check_stage_fields(stage: Stage, where: str) -> None:
    """The per-stage settings beyond the mix and the advance rule, each named by its key."""
    nodes, mining = stage.nodes, stage.mining
    _require_all(where, [("ramp_steps", stage.ramp_steps, _is_int(stage.ramp_steps, low=0))])
    _require_all(
        f"{where}.nodes",
        [
            ("granularity", nodes.granularity, nodes.granularity in ("fine", "depth")),
            ("min_depth", nodes.min_depth, nodes.min_depth <= nodes.max_depth),
            ("alpha", nodes.alpha, nodes.alpha >= 0),
            ("siblings", nodes.siblings, _is_int(nodes.siblings, low=1)),
            (
                "min_distinct",
                nodes.min_distinct,
                nodes.min_distinct is None or _is_int(nodes.min_distinct, low=1),
            ),
        ],
    )
    _require_all(
        f"{where}.mining",
        [
            ("skip", mining.skip, _is_int(mining.skip, low=0)),
            ("within", mining.within, mining.within in ("global", "object")),
            ("teacher", mining.teacher, mining.teacher in ("frozen", "current")),
            ("refresh", mining.refresh, _is_int(mining.refresh, low=1)),
        ],
    )
    _check_unfreeze_spec(stage.opening.text, f"{where}.opening.text")
    _check_unfreeze_spec(stage.opening.vision, f"{where}.opening.vision")


RULES = {  # what each checked stage field must be, as the error says it
    "ramp_steps": "an integer >= 0",
    "granularity": "'fine' or 'depth'",
    "min_depth": "at most max_depth",
    "alpha": "must be >= 0",
    "siblings": "a positive integer",
    "min_distinct": "must be >= 1",
    "skip": "an integer >= 0",
    "within": "'global' or 'object'",
    "teacher": "'frozen' or 'current'",
    "refresh": "a positive integer",
}


def _require_all(where: str, checks: list[tuple[str, object, bool]]) -> None:
    """Raise a CurriculumError for the first (field, value, ok) whose `ok` is false."""
    for field_name, value, ok in checks:
        if not ok:
            raise CurriculumError(f"{where}.{field_name}", f"{RULES[field_name]}; got {value!r}")


def _is_int(value, *, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


class Curriculum:
    """Stages plus the steps at which each reached stage began."""

    def __init__(self, stages: list[Stage] | None = None) -> None:
        self.stages = list(stages) if stages else default_stages()
        self.validate()
        self.starts: list[int] = [0]

    def validate(self) -> None:
        """Reject unknown kinds, empty mixes, stages that can never advance and bad fields, naming
        the key as it is written in a config (`data.stages[i].field`)."""
        for i, stage in enumerate(self.stages):
            where = f"data.stages[{i}]"
            known_kinds = tuple(KINDS)
            unknown = [k for k in stage.mix if k not in known_kinds]
            if unknown:
                raise CurriculumError(
                    f"{where}.mix", f"unknown sampler {unknown}; choose from {known_kinds}"
                )
            shares = list(stage.mix.values())
            if (
                not shares
                or any(not isinstance(v, (int, float)) or v < 0 for v in shares)
                or sum(shares) <= 0
            ):
                raise CurriculumError(f"{where}.mix", f"needs positive shares, got {stage.mix}")
            rules = {
                k: v
                for k in ("steps", "epochs", "plateau_patience")
                if (v := getattr(stage, k)) is not None
            }
            if i < len(self.stages) - 1 and len(rules) != 1:
                raise CurriculumError(
                    where,
                    f"stage '{stage.name}' never advances: set exactly one of steps, epochs, "
                    "plateau_patience (only the last stage may have none); got "
                    f"{sorted(rules) or 'none'}",
                )
            for key, value in rules.items():
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    raise CurriculumError(
                        f"{where}.{key}", f"must be a positive integer; got {value!r}"
                    )
            _check_stage_fields(stage, where)
        self.teacher_refresh()

    def teacher_refresh(self) -> int | None:
        """Steps between re-embeddings of the pairs for mined batches ranked by the model being
        trained (`mining.teacher: current`); None when no stage mines that way. One schedule serves
        the run, so every such stage must give the same `mining.refresh`."""
        refresh = {
            (i, s.mining.refresh)
            for i, s in enumerate(self.stages)
            if ranks_by_teacher(s) and s.mining.teacher == "current"
        }
        if len({every for _, every in refresh}) > 1:
            last = max(refresh)[0]
            raise CurriculumError(
                f"data.stages[{last}].mining.refresh",
                f"stages mining with the current teacher refresh at different intervals "
                f"{sorted(refresh)}; give them one mining.refresh",
            )
        return next(iter(refresh))[1] if refresh else None

    @property
    def current(self) -> int:
        """Index of the latest stage reached."""
        return len(self.starts) - 1

    def stage_index(self, step: int, steps_per_epoch: int) -> int:
        """The stage in force at `step`, advancing by the steps/epochs rules when due."""
        while self.current < len(self.stages) - 1:
            length = self._length(self.current, steps_per_epoch)
            if length is None or step < self.starts[-1] + length:
                break
            self.starts.append(self.starts[-1] + length)
        return max(i for i, start in enumerate(self.starts) if start <= step)

    def _length(self, index: int, steps_per_epoch: int) -> int | None:
        stage = self.stages[index]
        if stage.steps is not None:
            return stage.steps
        return stage.epochs * steps_per_epoch if stage.epochs is not None else None

    def stage_bounds(
        self, step: int, steps_per_epoch: int, total_steps: int | None = None
    ) -> tuple[int, int, int | None]:
        """(stage index, its first step, its end step or None) at `step`: the end is known for
        steps/epochs stages, a plateau stage that has already been told to advance, and the last
        stage (`total_steps`); a plateau stage still running has no known end."""
        index = self.stage_index(step, steps_per_epoch)
        start = self.starts[index]
        if index + 1 < len(self.starts):
            return index, start, self.starts[index + 1]
        if index == len(self.stages) - 1:
            return index, start, total_steps
        length = self._length(index, steps_per_epoch)
        return index, start, None if length is None else start + length

    def shares(self, step: int, steps_per_epoch: int) -> dict[str, float]:
        """The batch-kind shares in force at `step` (normalised), with the stage's ramp applied."""
        index = self.stage_index(step, steps_per_epoch)
        stage = self.stages[index]
        total = sum(stage.mix.values())
        shares = {k: v / total for k, v in stage.mix.items()}
        if stage.ramp_steps:
            ramp = min(1.0, (step - self.starts[index] + 1) / stage.ramp_steps)
            shares = {k: (v if k == "random" else v * ramp) for k, v in shares.items()}
            shares["random"] = 1.0 - sum(v for k, v in shares.items() if k != "random")
        return {k: v for k, v in shares.items() if v > 0}

    def request_advance(self, at_step: int) -> bool:
        """Plateau rule: begin the next stage at `at_step`; False on the last stage."""
        if self.current >= len(self.stages) - 1 or at_step <= self.starts[-1]:
            return False
        self.starts.append(at_step)
        return True

    def state_dict(self) -> dict:
        """What a checkpoint keeps."""
        return {"starts": list(self.starts), "num_stages": len(self.stages)}

    def load_state_dict(self, state: dict) -> None:
        """Restore from a checkpoint of the same curriculum."""
        if state.get("num_stages") != len(self.stages):
            raise CurriculumError(
                "data.stages",
                f"the checkpoint has a {state.get('num_stages')}-stage curriculum, the config "
                f"{len(self.stages)}; resume with the config the run was started with",
            )
        self.starts = list(state["starts"])
