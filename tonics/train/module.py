"""AlignmentModule: the LightningModule around AlignmentModel.

Trains projection heads and temperature from the first step, encoders only once unfrozen (at a
step set here, or at a curriculum stage), with their own learning rate and an opening warm-up in
their own optimizer groups; no weight decay on biases, norms or the temperature. The learning rate
restarts at each curriculum stage by default (`tonics.train.schedule`). The loss knows which pairs
of a batch are true matches (shared image or identical caption). Logs loss, temperature, in-batch
accuracy both ways and batch hardness; evaluates image<->text retrieval on the validation and test
splits (`val/recall_mean`, the mean of R@1/5/10 both ways, is the default checkpoint monitor).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import lightning.pytorch as pl
import torch

from tonics.errors import optional_import, require
from tonics.model.encoders import load_tokenizer
from tonics.model.factory import ModelSpec, create_model
from tonics.model.loss import make_loss
from tonics.sampling.curriculum import UnfreezeSpec
from tonics.sampling.openings import Openings, widest
from tonics.sampling.plan import RunPlan
from tonics.train.batch_stats import batch_statistics
from tonics.train.checkpointing import AtomicCheckpointIO
from tonics.train.evaluation import RetrievalEvaluation
from tonics.train.feature_paths import CachedFeaturePaths
from tonics.train.model_settings import (
    LossSettings,
    OptimizerSettings,
    ScheduleSettings,
    StepOpening,
    check_spec,
)
from tonics.train.old_keys import grouped_hparams
from tonics.train.optim import TOWERS, parameter_groups
from tonics.train.schedule import group_lambdas, schedule_factor
from tonics.train.settings import as_settings

log = logging.getLogger(__name__)


class AlignmentModule(CachedFeaturePaths, RetrievalEvaluation, pl.LightningModule):
    """Contrastive alignment of a pretrained text encoder and vision encoder.

    spec: the model's architecture (`model.spec.*`: towers, pooling, embedding size, head,
        captioning head), built by `tonics.model.factory.create_model`; optimizer, schedule,
        opening and loss: the training settings (`model.optimizer.*`, ...), each group documented
        and validated in `tonics.train.model_settings`, kept as `optimizer_settings`,
        `schedule_settings`, `opening_settings` and `loss_settings` (`loss` is the loss module);
        retrieval_ks: the recalls evaluated.
    """

    def __init__(
        self,
        spec: ModelSpec = ModelSpec(),
        *,
        optimizer: OptimizerSettings = OptimizerSettings(),
        schedule: ScheduleSettings = ScheduleSettings(),
        opening: StepOpening = StepOpening(),
        loss: LossSettings = LossSettings(),
        retrieval_ks: tuple[int, ...] = (1, 5, 10),
    ) -> None:
        """The `model.*` groups of a config (mappings, as a checkpoint keeps them, are accepted)."""
        super().__init__()
        self.spec: ModelSpec = as_settings(ModelSpec, spec)
        self.optimizer_settings: OptimizerSettings = as_settings(OptimizerSettings, optimizer)
        self.schedule_settings: ScheduleSettings = as_settings(ScheduleSettings, schedule)
        self.opening_settings: StepOpening = as_settings(StepOpening, opening)
        self.loss_settings: LossSettings = as_settings(LossSettings, loss)
        self.retrieval_ks = tuple(retrieval_ks)
        self._validate()
        self.save_hyperparameters(self.settings())
        if self.loss_settings.caption_weight > 0:
            optional_import("pycocoevalcap", "model.loss.caption_weight > 0 (caption metrics)")
        self.model = create_model(self.spec)
        if self.model.captioner is not None:
            self.caption_tokenizer = load_tokenizer(self.spec.text_encoder)
        for tower in TOWERS:
            self.check_unfreeze(tower, self.opening_settings.top_k, "model.opening.top_k")
        self.loss = make_loss(
            self.loss_settings.kind,
            local_loss=self.loss_settings.local,
            false_negatives=self.loss_settings.false_negatives,
        )
        self._reset_state()

    @classmethod
    def from_checkpoint(cls, path) -> AlignmentModule:
        """The module a `tonics fit` checkpoint holds, built from its hyperparameters (flat keys
        of an older checkpoint moved to their groups) with its weights, read as data only
        (`AtomicCheckpointIO`: a damaged or pickled file is a one-line error naming it)."""
        checkpoint = AtomicCheckpointIO().load_checkpoint(path, map_location="cpu")
        module = cls(**grouped_hparams(checkpoint.get("hyper_parameters") or {}))
        module.on_load_checkpoint(checkpoint)  # as Lightning's load_from_checkpoint: reopen towers
        module.load_state_dict(checkpoint["state_dict"])
        return module

    def settings(self) -> dict:
        """Every `model.*` group as plain data: a checkpoint's hyperparameters, from which
        `from_checkpoint` (or Lightning's `load_from_checkpoint`) builds the module again."""
        return {
            "spec": asdict(self.spec),
            "optimizer": asdict(self.optimizer_settings),
            "schedule": asdict(self.schedule_settings),
            "opening": asdict(self.opening_settings),
            "loss": asdict(self.loss_settings),
            "retrieval_ks": list(self.retrieval_ks),
        }

    def _reset_state(self) -> None:
        """Openings, plan, caches, feature paths and evaluation stores of a fresh module."""
        self.unfrozen: dict[str, UnfreezeSpec] = {"text": None, "vision": None}
        self.opened_at: dict[str, int | None] = {"text": None, "vision": None}
        self.last_stats: dict[str, float] = {}
        self.plan: RunPlan | None = None  # handed out by tonics.train.wiring.connect_run
        self._own_openings: Openings | None = None  # without a plan: the step opening alone
        self._resumed_rng = None
        self.feature_cache = None  # set while both encoders are frozen and the data asks for it
        self.prefix_caches: dict = {}  # split -> PrefixCache, for stages opening top-k blocks
        self.stage_paths: dict[int, dict] = {}  # stage -> how its steps got features (summary)
        self.last_path = "live"
        self._pooled_info: dict = {}
        self._eval: dict[str, list] = {}
        self._captions: dict[str, dict] = {}  # split -> generated captions and references

    def _validate(self) -> None:
        """The architecture and the recalls checked before anything is loaded, with their YAML
        keys (each settings group checks itself)."""
        check_spec(self.spec, self.loss_settings)
        ks = self.retrieval_ks
        require(
            len(ks) > 0 and all(isinstance(k, int) and k > 0 for k in ks),
            "model.retrieval_ks",
            f"must be positive integers; got {list(ks)}",
        )

    def check_unfreeze(self, tower: str, spec: UnfreezeSpec, key: str) -> None:
        """A stage's (or model.opening.top_k's) opening must fit the tower: 'all' or 1..blocks."""
        if spec is None or spec == "all":
            return
        blocks = len((self.model.text if tower == "text" else self.model.vision).encoder.blocks)
        name = self.spec.text_encoder if tower == "text" else self.spec.vision_encoder
        require(
            isinstance(spec, int) and not isinstance(spec, bool) and 1 <= spec <= blocks,
            key,
            f"'all' or a number of top blocks in 1..{blocks} ({name} has {blocks}); got {spec!r}",
        )

    # -- freezing -------------------------------------------------------------------------------
    def unfreeze(self, tower: str, spec: UnfreezeSpec) -> None:
        """Open `tower` ('text' or 'vision'): spec 'all' for the whole encoder, k for its top-k
        blocks."""
        if spec is None:
            return
        encoder = self.model.text if tower == "text" else self.model.vision
        encoder.unfreeze(None if spec == "all" else int(spec))
        if self.unfrozen[tower] is None:
            self.opened_at[tower] = self.global_step
        self.unfrozen[tower] = widest(self.unfrozen[tower], spec)
        self.feature_cache = None  # pooled features of a changing encoder are stale

    def step_opening(self) -> dict:
        """The step-triggered opening (`model.opening`) and whether steps need the vision token
        map (a captioning head), for the run's plan."""
        return {
            "at_step": self.opening_settings.at_step,
            "top_k": self.opening_settings.top_k,
            "tokens": self.model.captioner is not None,
        }

    def use_plan(self, plan: RunPlan) -> None:
        """Train by the run's plan: its curriculum sets the learning-rate segments, its openings
        the caches to build, and its data the cache sources and evaluation annotations."""
        self.plan = plan

    def on_fit_start(self) -> None:
        """Without a run plan (a plain `trainer.fit(module, train_dataloaders=...)`), the module
        opens its towers itself at `model.opening.at_step`."""
        self._own_openings = None if self.plan else Openings.plan((), **self.step_opening())

    def open_towers(self, openings: dict[str, UnfreezeSpec]) -> None:
        """Open each tower as far as `openings` says (openings never close)."""
        for tower in TOWERS:
            if openings[tower] != self.unfrozen[tower]:
                self.unfreeze(tower, openings[tower])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Remember which encoders are open, and since when (their learning-rate warm-up), and
        the random stream (dropout draws from it: a resumed run continues it exactly)."""
        checkpoint["tonics_unfrozen"] = dict(self.unfrozen)
        checkpoint["tonics_opened_at"] = dict(self.opened_at)
        checkpoint["tonics_rng"] = {"torch": torch.get_rng_state()}  # dropout: exact resume

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Re-open the encoders that were open when the checkpoint was written; keep the random
        stream for the first step."""
        for tower, spec in checkpoint.get("tonics_unfrozen", {}).items():
            self.unfreeze(tower, spec)
        self.opened_at.update(checkpoint.get("tonics_opened_at", {}))
        self._resumed_rng = checkpoint.get("tonics_rng", {}).get("torch")

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """The first step after a resume continues the saved random stream (whatever loading
        and loader start-up drew from it since)."""
        if self._resumed_rng is not None:
            torch.set_rng_state(self._resumed_rng)
            self._resumed_rng = None
        if self._own_openings is not None:
            self.open_towers(self._own_openings.at(self.global_step, None))

    # -- optimisation ---------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        """AdamW groups: heads, temperature (and the loss's own bias), each encoder; no decay on
        biases, norms and scalars. Encoder groups carry their tower for the opening warm-up."""
        settings = self.optimizer_settings
        return parameter_groups(
            self.model,
            self.loss,
            lr=settings.lr,
            encoder_lr=settings.encoder_lr,
            weight_decay=settings.weight_decay,
        )

    def lr_factor(self, step: int) -> float:
        """The schedule's base factor at `step` (the curriculum's stages when there is one)."""
        schedule, trainer = self.schedule_settings, self._trainer
        total = max(1, int(trainer.estimated_stepping_batches)) if trainer else 1
        per_epoch = self.plan.steps_per_epoch() if self.plan else None
        return schedule_factor(
            step,
            kind=schedule.kind,
            total_steps=total,
            warmup_steps=schedule.warmup_steps,
            min_lr_ratio=schedule.min_lr_ratio,
            curriculum=self.plan.curriculum if per_epoch is not None else None,
            steps_per_epoch=per_epoch if per_epoch is not None else total,
        )

    def configure_optimizers(self):
        """AdamW over `parameter_groups`, stepped by the per-stage (or run-long) schedule."""
        groups = self.parameter_groups()
        optimizer = torch.optim.AdamW(groups)
        lambdas = group_lambdas(
            groups, self.lr_factor, self.opened_at.get, self.schedule_settings.encoder_warmup_steps
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # -- steps ----------------------------------------------------------------------------------
    def _features(self, batch):
        image = self.model.encode_image(batch["pixel_values"])
        text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        return image, text

    def _with_caption_loss(self, contrastive, tokens, batch, n: int) -> torch.Tensor:
        """contrastive + weight * captioning (each image's caption, teacher-forced); both logged."""
        rows = batch["has_image"].to(self.device)
        captioning = self.model.captioner.loss(
            tokens, batch["input_ids"][rows], batch["attention_mask"][rows]
        )
        self.log("train/contrastive_loss", contrastive, batch_size=n)
        self.log("train/caption_loss", captioning, batch_size=n)
        return contrastive + self.loss_settings.caption_weight * captioning

    def training_step(self, batch, batch_idx: int):
        """InfoNCE over the batch (plus the weighted captioning loss when a captioning head
        trains); skipped if every image in it failed to load."""
        tokens = None
        if batch.get("cached"):
            image, text, tokens = self._cached_features(batch)
            if image.shape[0] < 2:
                return None
        elif batch["pixel_values"] is None or len(batch["indices"]) < 2:
            return None
        elif self.model.captioner is not None:
            image, tokens = self.model.image_features_and_tokens(batch["pixel_values"])
            text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
            self.last_path = "live"
        else:
            image, text = self._features(batch)
            self.last_path = "live"
        keys = batch["pair_keys"].to(self.device)
        if batch.get("has_image") is not None and len(keys) != image.shape[0]:
            keys = keys[batch["has_image"].to(self.device)]
        scale = self.model.scale()
        loss = self.loss(image, text, scale, keys)
        stats = batch_statistics(image.detach(), text.detach(), scale.detach(), keys)
        n = len(batch["indices"])
        if tokens is not None:
            loss = self._with_caption_loss(loss, tokens, batch, n)
        self.last_stats = {"loss": float(loss.detach()), **stats}
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        for key, value in stats.items():
            self.log(f"train/{key}", value, batch_size=n)
        return loss
