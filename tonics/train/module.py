"""AlignmentModule: the LightningModule around AlignmentModel.

Trains projection heads and temperature from the first step, encoders only once unfrozen (at a
step set here, or at a curriculum stage), with their own learning rate in a second optimizer
group. Logs loss, temperature, in-batch accuracy both ways and batch hardness; evaluates
image<->text retrieval on the validation and test splits.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch

from tonics.eval.retrieval import collect_embeddings, retrieval_metrics
from tonics.model.alignment import AlignmentModel, HeadKind
from tonics.model.encoders import TextEncoder, TextPooling, VisionEncoder, VisionPooling
from tonics.model.loss import ClipLoss
from tonics.sampling.curriculum import UnfreezeSpec


def batch_statistics(
    image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor
) -> dict[str, float]:
    """In-batch accuracy both ways and hardness: mean / max off-diagonal cosine similarity."""
    with torch.no_grad():
        sims = image @ text.T
        n = sims.shape[0]
        target = torch.arange(n, device=sims.device)
        off = sims[~torch.eye(n, dtype=torch.bool, device=sims.device)]
        return {
            "acc_i2t": float((sims.argmax(1) == target).float().mean()),
            "acc_t2i": float((sims.argmax(0) == target).float().mean()),
            "hardness_mean": float(off.mean()) if n > 1 else 0.0,
            "hardness_max": float(off.max()) if n > 1 else 0.0,
            "temperature": float(1 / scale),
        }


class AlignmentModule(pl.LightningModule):
    """Contrastive alignment of a pretrained text encoder and vision encoder."""

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
        unfreeze_at_step: int | None = None,
        unfreeze_top_k: int | None = None,
        local_loss: bool = False,
        retrieval_ks: tuple[int, ...] = (1, 5, 10),
    ) -> None:
        """`unfreeze_at_step` opens both encoders (top-k blocks, or wholly if unset) at that step."""
        super().__init__()
        self.save_hyperparameters()
        self.model = AlignmentModel(
            TextEncoder.from_name(text_encoder, text_pooling),
            VisionEncoder.from_name(vision_encoder, vision_pooling),
            embed_dim=embed_dim,
            head=head,
        )
        self.loss = ClipLoss(local_loss=local_loss)
        self.unfrozen: dict[str, UnfreezeSpec] = {"text": None, "vision": None}
        self.last_stats: dict[str, float] = {}
        self.feature_cache = None  # set while both encoders are frozen and the data asks for it
        self._eval: dict[str, list] = {}

    # -- freezing -------------------------------------------------------------------------------
    def unfreeze(self, tower: str, spec: UnfreezeSpec) -> None:
        """Open `tower` ('text' or 'vision'): spec 'all' for the whole encoder, k for top-k blocks."""
        if spec is None:
            return
        encoder = self.model.text if tower == "text" else self.model.vision
        encoder.unfreeze(None if spec == "all" else int(spec))
        self.unfrozen[tower] = spec
        self.feature_cache = None  # features of a changing encoder are stale

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """Step-triggered unfreezing."""
        step = self.hparams.unfreeze_at_step
        opened = self.unfrozen["text"] is not None and self.unfrozen["vision"] is not None
        if step is not None and self.global_step >= step and not opened:
            spec = self.hparams.unfreeze_top_k or "all"
            self.unfreeze("text", spec)
            self.unfreeze("vision", spec)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Remember which encoders are open."""
        checkpoint["tonics_unfrozen"] = dict(self.unfrozen)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Re-open the encoders that were open when the checkpoint was written."""
        for tower, spec in checkpoint.get("tonics_unfrozen", {}).items():
            self.unfreeze(tower, spec)

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self):
        """AdamW: heads + temperature at `lr`, encoders at `encoder_lr`; warmup then cosine."""
        hp = self.hparams
        heads = [*self.model.text_head.parameters(), *self.model.vision_head.parameters()]
        groups = [
            {"params": heads, "lr": hp.lr, "weight_decay": hp.weight_decay, "name": "heads"},
            {"params": [self.model.logit_scale], "lr": hp.lr, "weight_decay": 0.0, "name": "temperature"},
            {"params": self.model.encoder_parameters(), "lr": hp.encoder_lr, "weight_decay": hp.weight_decay,
             "name": "encoders"},
        ]  # fmt: skip
        optimizer = torch.optim.AdamW(groups)
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self.trainer else 1

        def schedule(step: int) -> float:
            if step < hp.warmup_steps:
                return (step + 1) / hp.warmup_steps
            progress = (step - hp.warmup_steps) / max(1, total - hp.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # -- steps ----------------------------------------------------------------------------------
    def _features(self, batch):
        image = self.model.encode_image(batch["pixel_values"])
        text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        return image, text

    def on_train_start(self) -> None:
        """Build (or load) the frozen-stage feature cache when the data module asks for it."""
        dm = self.trainer.datamodule
        frozen = self.model.text.is_frozen and self.model.vision.is_frozen
        if getattr(dm, "feature_cache", False) and frozen:
            from tonics.train.feature_cache import load_or_compute

            self.feature_cache = load_or_compute(self.model, dm, self.device)

    def _cached_features(self, batch):
        if self.feature_cache is None:
            raise RuntimeError(
                "a batch marked 'features cached' arrived but the feature cache is gone (an encoder was "
                "opened outside the curriculum/unfreeze_at_step the sampler knows of); turn "
                "data.feature_cache off for this run"
            )
        image, text, usable = self.feature_cache.lookup(batch["indices"].cpu())
        for index in batch["indices"][~usable].tolist():
            batch["skipped"].append(self.feature_cache.failures[index])
        batch["has_image"] = usable
        image = torch.nn.functional.normalize(self.model.vision_head(image.to(self.device)), dim=-1)
        text = torch.nn.functional.normalize(self.model.text_head(text.to(self.device)), dim=-1)
        return image, text

    def training_step(self, batch, batch_idx: int):
        """InfoNCE over the batch; skipped if every image in it failed to load."""
        if batch.get("cached"):
            image, text = self._cached_features(batch)
            if image.shape[0] < 2:
                return None
        elif batch["pixel_values"] is None or len(batch["indices"]) < 2:
            return None
        else:
            image, text = self._features(batch)
        scale = self.model.scale()
        loss = self.loss(image, text, scale)
        stats = batch_statistics(image.detach(), text.detach(), scale.detach())
        self.last_stats = {"loss": float(loss.detach()), **stats}
        n = len(batch["indices"])
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        for key, value in stats.items():
            self.log(f"train/{key}", value, batch_size=n)
        return loss

    def _eval_step(self, batch, prefix: str) -> None:
        if not len(batch["indices"]):
            return
        text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        store = self._eval.setdefault(prefix, [])
        image = (
            self.model.encode_image(batch["pixel_values"])
            if batch["pixel_values"] is not None
            else None
        )
        has_image = batch["has_image"]
        store.append(
            (text.cpu(), image.cpu() if image is not None else None, batch["image_ids"], has_image)
        )
        if image is not None and image.shape[0] >= 2:
            loss = self.loss(image, text[has_image], self.model.scale())
            self.log(f"{prefix}/loss", loss, batch_size=image.shape[0], sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        """Embed captions (and each image once) for retrieval; contrastive loss on unique images."""
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        """As validation, on the test split."""
        self._eval_step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> dict:
        """Embeddings of a batch: text for every caption, images where loaded."""
        text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        image = (
            self.model.encode_image(batch["pixel_values"])
            if batch["pixel_values"] is not None
            else None
        )
        return {
            "indices": batch["indices"],
            "text": text,
            "image": image,
            "image_ids": batch["image_ids"],
        }

    def _retrieval(self, prefix: str) -> dict[str, float]:
        split = collect_embeddings(self._eval.pop(prefix, []))
        if split is None:
            return {}
        result = retrieval_metrics(
            split.images, split.texts, split.text_to_image, ks=self.hparams.retrieval_ks
        )
        metrics = {f"{prefix}/{k}": v for k, v in result.metrics.items()}
        metrics[f"{prefix}/images"] = float(len(split.image_ids))
        metrics[f"{prefix}/captions"] = float(len(split.text_to_image))
        return metrics

    def on_validation_epoch_end(self) -> None:
        """Retrieval recall on the validation split."""
        metrics = self._retrieval("val")
        if metrics:
            self.log_dict(metrics, sync_dist=True)
            self.log("val/R@1_mean", (metrics["val/text_to_image_R@1"] + metrics["val/image_to_text_R@1"]) / 2,
                     prog_bar=True, sync_dist=True)  # fmt: skip

    def on_test_epoch_end(self) -> None:
        """Retrieval recall on the test split."""
        metrics = self._retrieval("test")
        if metrics:
            self.log_dict(metrics, sync_dist=True)
