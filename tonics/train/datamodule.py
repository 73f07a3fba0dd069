"""The LightningDataModule: any reader, the ontology of its training pairs, the curriculum batch
sampler, and tokenisation/preprocessing from the chosen encoders.

`prepare_data` (once per machine) reads the dataset and builds the ontology cache; `setup` (every
rank) loads them. Training batches come from the CurriculumBatchSampler (rank-aware; Lightning's
sampler replacement must be off); evaluation batches are sequential.
"""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from tonics.cache.base import CacheSource
from tonics.data.batches import Collator, PairDataset
from tonics.data.images import ImageLimits, processor_draft_size
from tonics.data.readers.base import PairReader
from tonics.data.records import (
    PairRecord,
    group_codes,
    image_subset,
    pair_ids_of,
    select_split,
    splits_of,
)
from tonics.errors import ConfigError, require, require_choice
from tonics.ontology.graph import OBJECT_SOURCES, ObjectSource, Ontology
from tonics.ontology.index import ontology_for_records
from tonics.sampling.curriculum import Curriculum, Stage
from tonics.sampling.factory import ranks_by_teacher
from tonics.sampling.plan import RunData, RunPlan
from tonics.train.eval_data import EvaluationLoaders
from tonics.train.settings import (
    CacheSettings,
    EvalSettings,
    ImageSettings,
    LoaderSettings,
    SubsetSettings,
    as_settings,
)

log = logging.getLogger(__name__)


def _check_inputs(reader, object_source: str) -> None:
    """The reader is a `PairReader` and the object source one tonics knows (a ConfigError
    naming the key otherwise)."""
    require_choice(object_source, OBJECT_SOURCES, "data.object_source")
    require(
        isinstance(reader, PairReader),
        "data.reader",
        "must be a reader (class_path: tonics.data.readers.KarpathyReader, ...); got "
        + type(reader).__name__,
    )


class TonicsDataModule(EvaluationLoaders, pl.LightningDataModule):
    """Image-caption pairs for training (curriculum batches) and retrieval evaluation.

    reader: where the pairs come from; stages: the curriculum (`tonics.sampling.curriculum`);
    loader, cache, evaluation, images and subset: the `data.*` groups of a config, each
    documented and validated in `tonics.train.settings`; object_source: where a pair's objects
    come from; ontology_cache: where the ontology is kept; one_pair_per_image: no training batch
    holds two captions of one image; `text_encoder`/`vision_encoder` are linked from the model's
    spec in the CLI (its tokenizer and image processor).
    """

    def __init__(
        self,
        reader: PairReader,
        *,
        stages: list[Stage] | None = None,
        loader: LoaderSettings = LoaderSettings(),
        cache: CacheSettings = CacheSettings(),
        evaluation: EvalSettings = EvalSettings(),
        images: ImageSettings = ImageSettings(),
        subset: SubsetSettings = SubsetSettings(),
        object_source: ObjectSource = "caption",
        ontology_cache: str | None = None,
        seed: int = 0,
        one_pair_per_image: bool = False,
        text_encoder: str = "packaged:minilm",
        vision_encoder: str = "packaged:mobilenet_v2",
    ) -> None:
        """The `data.*` keys of a config (see the class docstring; groups given as mappings are
        built by keyword)."""
        super().__init__()
        _check_inputs(reader, object_source)
        self.loader: LoaderSettings = as_settings(LoaderSettings, loader)
        self.cache: CacheSettings = as_settings(CacheSettings, cache)
        self.evaluation: EvalSettings = as_settings(EvalSettings, evaluation)
        self.images: ImageSettings = as_settings(ImageSettings, images)
        self.subset: SubsetSettings = as_settings(SubsetSettings, subset)
        self.reader = reader
        self.curriculum = Curriculum(stages)
        self.object_source, self.ontology_cache, self.seed = object_source, ontology_cache, seed
        self.text_encoder, self.vision_encoder = text_encoder, vision_encoder
        self.one_pair_per_image = one_pair_per_image
        self._reset_state()

    def _reset_state(self) -> None:
        """What a fresh data module has read and built: nothing yet."""
        self.test_split = "test"  # what test_dataloader serves (`testing` changes it for a block)
        self.records: list[PairRecord] | None = None
        self.ontology: Ontology | None = None
        self.batch_sampler = None
        self.plan: RunPlan | None = None  # handed out by connect_run, else made in setup
        self._teacher_towers = None  # the model's towers, which rank mined batches
        self._tokenizer = None
        self._image_processor = None
        self._annotations: dict[str, tuple] = {}

    def check_against_model(self, model) -> None:
        """Settings that depend on the model: each stage's opening fits its tower's blocks."""
        for i, stage in enumerate(self.curriculum.stages):
            for tower in ("text", "vision"):
                opening = getattr(stage.opening, tower)
                model.check_unfreeze(tower, opening, f"data.stages[{i}].opening.{tower}")

    def use_plan(self, plan: RunPlan, towers=None) -> None:
        """Serve the run's plan: its sampler reads the plan's openings, and the plan's `data`
        becomes this data module's cache sources and evaluation annotations. `towers`: the
        model's `AlignmentModel`, whose frozen features rank mined batches."""
        self.plan = plan
        self._teacher_towers = towers
        plan.data = RunData(
            cache_source=self.cache_source,
            prefix_dtype=self.cache.prefix_dtype,
            feature_dtype=self.cache.feature_dtype,
            eval_feature_cache=self.cache.evaluation,
            split_evaluated=self.split_evaluated,
            annotations=self.eval_annotations,
        )

    def _build_ontology(self, train: list[PairRecord]) -> Ontology:
        return ontology_for_records(train, source=self.object_source, cache=self.ontology_cache)

    def prepare_data(self) -> None:
        """Read the dataset and build the ontology cache (once, on rank 0)."""
        self._build_ontology(self.split("train"))

    def _check_split(self, name: str, key: str) -> None:
        """A split a setting names must exist in the data (ConfigError naming the key)."""
        if not self.has_split(name):
            present = splits_of(self.records or [])
            raise ConfigError(key, f"the data has no '{name}' split (it has {present}); name one")

    def has_split(self, name: str) -> bool:
        """Whether the dataset holds any pair of this split."""
        try:
            return bool(self.split(name))
        except ValueError:
            return False

    def split(self, name: str) -> list[PairRecord]:
        """The records of one split (the dataset is read once)."""
        if self.records is None:
            self.records = self.reader.read()
            if self.reader.skipped:
                log.warning("reader skipped %s", dict(self.reader.skipped))
        chosen = select_split(self.records, name)
        if name == "train" and self.subset.fraction < 1:
            chosen = image_subset(chosen, self.subset.fraction, self.subset.seed)
        return chosen

    @property
    def tokenizer(self):
        """The text encoder's tokenizer."""
        if self._tokenizer is None:
            from tonics.model.encoders import load_tokenizer

            self._tokenizer = load_tokenizer(self.text_encoder)
        return self._tokenizer

    @property
    def image_processor(self):
        """The vision encoder's image processor."""
        if self._image_processor is None:
            from tonics.model.encoders import load_image_processor

            self._image_processor = load_image_processor(self.vision_encoder)
        return self._image_processor

    @property
    def image_limits(self) -> ImageLimits:
        """Header checks and JPEG draft size shared by every loader of this data module."""
        return ImageLimits(
            self.images.max_pixels,
            self.images.max_aspect,
            processor_draft_size(self.image_processor),
        )

    def cache_source(self, split: str = "train") -> CacheSource:
        """A split's pairs (training pairs; an evaluation split in `eval_records` order) and their
        reading settings, for the feature and prefix caches."""
        return CacheSource(
            self.split("train") if split == "train" else self.eval_records(split),
            self.tokenizer,
            self.image_processor,
            superset=self._whole_train() if split == "train" else None,
            max_text_length=self.loader.max_text_length,
            limits=self.image_limits,
            batch_size=self.loader.eval_batch_size,
            num_workers=self.loader.num_workers,
        )

    def _whole_train(self) -> list[PairRecord] | None:
        """Every training pair when `train_fraction` keeps a subset (its caches may copy from
        the whole split's), else None."""
        if self.subset.fraction >= 1:
            return None
        return select_split(self.records, "train") if self.records is not None else None

    def setup(self, stage: str | None = None) -> None:
        """Load records and the ontology; check that the ontology matches the training pairs."""
        if stage in ("fit", "validate", None):
            self._check_split(self.evaluation.split, "data.evaluation.split")
        if stage in ("fit", None) and self.ontology is None:
            train = self.split("train")
            self.ontology = self._build_ontology(train)
            if self.ontology.pair_ids != pair_ids_of(train):
                raise ValueError(
                    "data.ontology_cache: the ontology's pairs do not match the training split; "
                    "delete the cache file or point ontology_cache elsewhere"
                )
            from tonics.sampling.sampler import CurriculumBatchSampler

            pair_images, pair_captions = (np.asarray(codes) for codes in group_codes(train))
            rank = self.trainer.global_rank if self.trainer else 0
            world = self.trainer.world_size if self.trainer else 1
            if self.plan is None:  # no run plan handed out: the stages' openings alone
                self.use_plan(RunPlan.build(self.curriculum, feature_cache=self.cache.enabled))
            self.batch_sampler = CurriculumBatchSampler(
                self.ontology,
                self.curriculum,
                batch_size=self.loader.batch_size,
                seed=self.seed,
                rank=rank,
                world_size=world,
                openings=self.plan.openings,
                pair_images=pair_images,
                pair_captions=pair_captions,
                one_pair_per_image=self.one_pair_per_image,
                teacher=self._teacher() if self._mines() else None,
            )
            self.batch_sampler.teacher_schedule = self._teacher_schedule(self.batch_sampler)
            self.plan.sampler = self.batch_sampler

    def _mines(self) -> bool:
        return any(ranks_by_teacher(stage) for stage in self.curriculum.stages)

    def _teacher_schedule(self, sampler):
        """The rows by step for stages that mine with the model being trained (refreshed by the
        curriculum callback, `tonics.train.teacher`); None when no stage does."""
        every = self.curriculum.teacher_refresh()
        if every is None or sampler.teacher is None:
            return None
        if not self.cache.enabled:
            raise ConfigError(
                "data.cache.enabled",
                "mining.teacher: current re-embeds the training pairs from the feature or prefix "
                "cache; set data.cache.enabled: true",
            )
        from tonics.sampling.mined import TeacherSchedule

        return TeacherSchedule(sampler.teacher, every, len(sampler))

    def _teacher(self) -> np.ndarray | None:
        """Teacher rows for mined batches: the frozen towers' pooled features of every training
        pair (the feature cache on disk, computed once), text and image halves averaged; None
        when no towers were handed over (`use_plan`)."""
        if self._teacher_towers is None:
            return None
        import torch

        from tonics.cache.features import load_or_compute
        from tonics.sampling.mined import teacher_rows

        with torch.random.fork_rng(devices=[]):  # encoding draws loader seeds: leave them be
            features = load_or_compute(
                self._teacher_towers,
                self.cache_source(),
                self.cache.feature_dtype,
                "cpu",
                self.trainer,
            )
        pairs = torch.arange(features.store.num_pairs)
        text = features.store.per_pair("text", pairs).float().numpy()
        found, usable = features.store.images_of("image", pairs)
        image = np.zeros((len(pairs), found.shape[1]), dtype=np.float32)
        image[usable.numpy()] = found.float().numpy()
        return teacher_rows(text, image)

    def train_dataloader(self) -> DataLoader:
        """Curriculum batches over the training split."""
        dataset = PairDataset(self.split("train"), self.image_processor, limits=self.image_limits)
        return DataLoader(
            dataset,
            batch_sampler=self.batch_sampler,
            collate_fn=Collator(self.tokenizer, self.loader.max_text_length),
            num_workers=self.loader.num_workers,
            persistent_workers=self.loader.persistent_workers,
        )
