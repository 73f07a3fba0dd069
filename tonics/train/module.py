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
from typing import Literal

import lightning.pytorch as pl
import torch

from tonics.errors import optional_import, require, require_choice, require_number
from tonics.model.alignment import HeadKind
from tonics.model.encoders import TextPooling, VisionPooling, load_tokenizer
from tonics.model.factory import ModelSpec, create_model
from tonics.model.loss import FALSE_NEGATIVE_MODES, FalseNegatives, make_loss
from tonics.sampling.curriculum import UnfreezeSpec
from tonics.sampling.openings import Openings, widest
from tonics.sampling.plan import RunPlan
from tonics.train.batch_stats import batch_statistics
from tonics.train.evaluation import RetrievalEvaluation
from tonics.train.feature_paths import CachedFeaturePaths
from tonics.train.optim import TOWERS, parameter_groups
from tonics.train.schedule import LrSchedule, group_lambdas, schedule_factor

log = logging.getLogger(__name__)


class AlignmentModule(CachedFeaturePaths, RetrievalEvaluation, pl.LightningModule):
    """Contrastive alignment of a pretrained text encoder and vision encoder.

    unfreeze_at_step: opens both encoders (top-k blocks, or wholly if unset) at that step.
    lr_schedule: 'per_stage' (warm-up + cosine within each curriculum stage) or 'run' (one
        warm-up + cosine over the whole run); `warmup_steps` is the warm-up of each segment.
    encoder_warmup_steps: linear warm-up of an encoder's learning rate from the step it opens.
    train_bn_stats: update pretrained BatchNorm statistics in opened blocks (default: fixed).
    loss: 'infonce' (CLIP's) or 'siglip' (pairwise sigmoid).
    false_negatives: pairs sharing an image or an identical caption are 'positive' (multi-
        positive InfoNCE), 'mask'ed out of the negatives, or 'ignore'd (plain InfoNCE).
    caption_loss_weight: above 0, loss = contrastive + weight * captioning (CoCa: 2), with a
        captioning head sized by `caption_decoder` (`tonics.model.captioner.CaptionSettings`).
    """

    def __init__(
        self,
        text_encoder: str = "packaged:minilm",
        vision_encoder: str = "packaged:mobilenet_v2",
        *,
        text_pooling: TextPooling = "mean",
        vision_pooling: VisionPooling = "pooled",
        embed_dim: int = 256,
        head: HeadKind = "linear",
        lr: float = 1e-3,
        encoder_lr: float = 1e-5,
        weight_decay: float = 0.05,
        warmup_steps: int = 0,
        lr_schedule: LrSchedule = "per_stage",
        min_lr_ratio: float = 0.0,
        encoder_warmup_steps: int = 10,
        unfreeze_at_step: int | None = None,
        unfreeze_top_k: int | None = None,
        train_bn_stats: bool = False,
        bn_momentum: float = 0.1,
        loss: Literal["infonce", "siglip"] = "infonce",
        false_negatives: FalseNegatives = "positive",
        local_loss: bool = False,
        retrieval_ks: tuple[int, ...] = (1, 5, 10),
        caption_loss_weight: float = 0.0,
        caption_decoder: dict | None = None,
    ) -> None:
        """The `model.*` keys of a config (each is described in the class docstring)."""
        super().__init__()
        self.save_hyperparameters()
        self._validate()
        if caption_loss_weight > 0:
            optional_import("pycocoevalcap", "model.caption_loss_weight > 0 (caption metrics)")
        self.model = create_model(self.model_spec())
        if self.model.captioner is not None:
            self.caption_tokenizer = load_tokenizer(text_encoder)
        for tower in TOWERS:
            self.check_unfreeze(tower, unfreeze_top_k, "model.unfreeze_top_k")
        self.loss = make_loss(loss, local_loss=local_loss, false_negatives=false_negatives)
        self._reset_state()

    def _reset_state(self) -> None:
        """Openings, plan, caches, feature paths and evaluation stores of a fresh module."""
        self.unfrozen: dict[str, UnfreezeSpec] = {"text": None, "vision": None}
        self.opened_at: dict[str, int | None] = {"text": None, "vision": None}
        self.last_stats: dict[str, float] = {}
        self.plan: RunPlan | None = None  # handed out by tonics.train.wiring.connect_run
        self._own_openings: Openings | None = None  # without a plan: unfreeze_at_step alone
        self._resumed_rng = None
        self.feature_cache = None  # set while both encoders are frozen and the data asks for it
        self.prefix_caches: dict = {}  # split -> PrefixCache, for stages opening top-k blocks
        self.stage_paths: dict[int, dict] = {}  # stage -> how its steps got features (summary)
        self.last_path = "live"
        self._pooled_info: dict = {}
        self._eval: dict[str, list] = {}
        self._captions: dict[str, dict] = {}  # split -> generated captions and references

    def _validate(self) -> None:
        """Every setting checked before anything is loaded, with its YAML key."""
        hp = self.hparams
        require_choice(hp.text_pooling, ("cls", "mean"), "model.text_pooling")
        require_choice(hp.vision_pooling, ("pooled", "cls", "mean"), "model.vision_pooling")
        require_choice(hp.head, ("linear", "mlp"), "model.head")
        require_choice(hp.lr_schedule, ("per_stage", "run"), "model.lr_schedule")
        require_choice(hp.loss, ("infonce", "siglip"), "model.loss")
        require_choice(hp.false_negatives, FALSE_NEGATIVE_MODES, "model.false_negatives")
        require_number(hp.embed_dim, "model.embed_dim", low=1, integer=True)
        require_number(hp.lr, "model.lr", low=0, low_open=True)
        require_number(hp.encoder_lr, "model.encoder_lr", low=0)
        require_number(hp.weight_decay, "model.weight_decay", low=0)
        require_number(hp.warmup_steps, "model.warmup_steps", low=0, integer=True)
        require_number(hp.min_lr_ratio, "model.min_lr_ratio", low=0, high=1)
        require_number(hp.encoder_warmup_steps, "model.encoder_warmup_steps", low=0, integer=True)
        require_number(hp.bn_momentum, "model.bn_momentum", low=0, high=1, low_open=True)
        require_number(hp.caption_loss_weight, "model.caption_loss_weight", low=0)
        if hp.unfreeze_at_step is not None:
            require_number(hp.unfreeze_at_step, "model.unfreeze_at_step", low=0, integer=True)
        if hp.unfreeze_top_k is not None:
            require_number(hp.unfreeze_top_k, "model.unfreeze_top_k", low=1, integer=True)
        require(
            len(hp.retrieval_ks) > 0 and all(isinstance(k, int) and k > 0 for k in hp.retrieval_ks),
            "model.retrieval_ks",
            f"must be positive integers; got {list(hp.retrieval_ks)}",
        )

    def model_spec(self) -> ModelSpec:
        """The architecture the `model.*` keys describe (`tonics.model.factory`); a captioning
        head only when `caption_loss_weight` > 0."""
        hp = self.hparams
        return ModelSpec(
            text_encoder=hp.text_encoder,
            vision_encoder=hp.vision_encoder,
            text_pooling=hp.text_pooling,
            vision_pooling=hp.vision_pooling,
            embed_dim=hp.embed_dim,
            head=hp.head,
            train_bn_stats=hp.train_bn_stats,
            bn_momentum=hp.bn_momentum,
            captioner=(hp.caption_decoder or {}) if hp.caption_loss_weight > 0 else None,
        )

    def check_unfreeze(self, tower: str, spec: UnfreezeSpec, key: str) -> None:
        """A stage's (or unfreeze_top_k's) opening spec must fit the tower: 'all' or 1..blocks."""
        if spec is None or spec == "all":
            return
        blocks = len((self.model.text if tower == "text" else self.model.vision).encoder.blocks)
        require(
            isinstance(spec, int) and not isinstance(spec, bool) and 1 <= spec <= blocks,
            key,
            f"'all' or a number of top blocks in 1..{blocks} ({self.hparams[tower + '_encoder']} "
            f"has {blocks}); got {spec!r}",
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
        """The step-triggered opening (`unfreeze_at_step`, `unfreeze_top_k`) and whether steps need
        the vision token map (a captioning head), for the run's plan."""
        return {
            "at_step": self.hparams.unfreeze_at_step,
            "top_k": self.hparams.unfreeze_top_k,
            "tokens": self.model.captioner is not None,
        }

    def use_plan(self, plan: RunPlan) -> None:
        """Train by the run's plan: its curriculum sets the learning-rate segments, its openings
        the caches to build, and its data the cache sources and evaluation annotations."""
        self.plan = plan

    def on_fit_start(self) -> None:
        """Without a run plan (a plain `trainer.fit(module, train_dataloaders=...)`), the module
        opens its towers itself at `unfreeze_at_step`."""
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
        hp = self.hparams
        return parameter_groups(
            self.model, self.loss, lr=hp.lr, encoder_lr=hp.encoder_lr, weight_decay=hp.weight_decay
        )

    def lr_factor(self, step: int) -> float:
        """The schedule's base factor at `step` (the curriculum's stages when there is one)."""
        hp, trainer = self.hparams, self._trainer
        total = max(1, int(trainer.estimated_stepping_batches)) if trainer else 1
        per_epoch = self.plan.steps_per_epoch() if self.plan else None
        return schedule_factor(
            step,
            kind=hp.lr_schedule,
            total_steps=total,
            warmup_steps=hp.warmup_steps,
            min_lr_ratio=hp.min_lr_ratio,
            curriculum=self.plan.curriculum if per_epoch is not None else None,
            steps_per_epoch=per_epoch if per_epoch is not None else total,
        )

    def configure_optimizers(self):
        """AdamW over `parameter_groups`, stepped by the per-stage (or run-long) schedule."""
        groups = self.parameter_groups()
        optimizer = torch.optim.AdamW(groups)
        lambdas = group_lambdas(
            groups, self.lr_factor, self.opened_at.get, self.hparams.encoder_warmup_steps
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
        return contrastive + self.hparams.caption_loss_weight * captioning

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
