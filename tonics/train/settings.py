"""The data module's settings grouped by concept, each validated in one place.

A config writes them as `data.loader.*`, `data.cache.*`, `data.evaluation.*`, `data.images.*` and
`data.subset.*`; each check names that YAML key in its one-line error. A new loader, cache or
evaluation option is added, documented and validated here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tonics.data.images import DEFAULT_MAX_ASPECT, DEFAULT_MAX_PIXELS
from tonics.errors import require_choice, require_number

DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class LoaderSettings:
    """How batches are read: training and evaluation batch sizes, worker processes, and the
    tokenisation length (`data.loader.*`)."""

    batch_size: int = 32
    eval_batch_size: int = 64
    num_workers: int = 0
    persistent_workers: bool = False
    max_text_length: int = 64

    def __post_init__(self) -> None:
        require_number(self.batch_size, "data.loader.batch_size", low=2, integer=True)
        require_number(self.eval_batch_size, "data.loader.eval_batch_size", low=1, integer=True)
        require_number(self.num_workers, "data.loader.num_workers", low=0, integer=True)
        require_number(self.max_text_length, "data.loader.max_text_length", low=2, integer=True)
        # persistent workers need workers
        object.__setattr__(
            self, "persistent_workers", self.persistent_workers and self.num_workers > 0
        )


@dataclass(frozen=True)
class CacheSettings:
    """Cached features (`data.cache.*`).

    enabled: while both towers are frozen, train the heads from pooled features computed once
        (kept on disk); while only top-k blocks train, run them from the frozen prefix's cached
        activations (`tonics.sampling.openings` says which steps each path serves).
    prefix_dtype: storage of those activations, 'float16' (half the size; features agree with
        live ones to ~1e-3) or 'float32'.
    feature_dtype: storage of the frozen stages' pooled features, 'float32' or 'float16' (half
        the disk and page cache: 3.3 KB a pair for MobileNetV2 + MiniLM).
    evaluation: while both towers are frozen and `enabled`, validation and test embed from the
        evaluation split's own pooled-feature cache (computed once, then each evaluation of each
        seed runs the heads only). Off by default: cached and live features agree to float
        rounding, not bit for bit, and a rank tie may fall the other way.
    """

    enabled: bool = False
    prefix_dtype: str = "float16"
    feature_dtype: str = "float32"
    evaluation: bool = False

    def __post_init__(self) -> None:
        require_choice(self.prefix_dtype, DTYPES, "data.cache.prefix_dtype")
        require_choice(self.feature_dtype, DTYPES, "data.cache.feature_dtype")


@dataclass(frozen=True)
class EvalSettings:
    """What is evaluated (`data.evaluation.*`).

    split: the split validated during training (the checkpoint monitor's).
    transfer_split: a split held out of training entirely (the demo's OpenMoji renderings),
        evaluated zero-shot after fit beside the test split when the data has it; None: skip.
    max_pairs: evaluate only the first N pairs of a split (grouped by image); None: all.
    """

    split: str = "val"
    transfer_split: str | None = "transfer"
    max_pairs: int | None = None

    def __post_init__(self) -> None:
        if self.max_pairs is not None:
            require_number(self.max_pairs, "data.evaluation.max_pairs", low=1, integer=True)


@dataclass(frozen=True)
class ImageSettings:
    """Images beyond these limits (read from the header, before decoding) are skipped and
    counted, never decoded (`data.images.*`)."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_aspect: float = DEFAULT_MAX_ASPECT

    def __post_init__(self) -> None:
        require_number(self.max_pixels, "data.images.max_pixels", low=1, integer=True)
        require_number(self.max_aspect, "data.images.max_aspect", low=1)


@dataclass(frozen=True)
class SubsetSettings:
    """Train on a seeded fraction of the training images (`data.subset.*`): the
    data-efficiency experiments. Subsets are nested (10% inside 25%
    inside 50%) and the ontology is built on the subset; evaluation splits are untouched."""

    fraction: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        require_number(self.fraction, "data.subset.fraction", low=0, high=1, low_open=True)
        require_number(self.seed, "data.subset.seed", integer=True)


def as_settings(cls, value):
    """`value` as an instance of settings class `cls` (a mapping, as a checkpoint or a Python
    caller gives it, is built by keyword)."""
    return cls(**value) if isinstance(value, dict) else value
