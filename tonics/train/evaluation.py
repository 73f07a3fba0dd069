"""Retrieval evaluation inside the Lightning loop: the validation, test and predict steps of
`AlignmentModule`, gathered per split and scored when the epoch ends.

Each caption is embedded, each image once; the contrastive loss is logged on the images that
loaded. At the epoch's end: R@1/5/10 both ways, mean/median rank, `recall_mean` (the default
checkpoint monitor), and within-object and caption-novel figures when the data module can
annotate the split (and R@K on seen and unseen object combinations where images hold several
annotated objects); with a captioning head, BLEU-4 and CIDEr of greedy captions of the split's
images against their captions (`caption_BLEU-4`, `caption_CIDEr`). Under DDP each rank encodes
(and captions) a contiguous share of the split; the shares are gathered in rank order before
scoring, so the figures equal one process's. Expects `self.model` (an `AlignmentModel`),
`self.loss`, `self.retrieval_ks`, `self._captions`, `self.caption_tokenizer` and
`self.plan` from the module it is mixed into.
"""

from __future__ import annotations

import logging

import torch

from tonics.eval.composition import composition_metrics
from tonics.eval.retrieval import collect_embeddings, retrieval_metrics
from tonics.eval.within_object import caption_novel_metrics, within_object_metrics

log = logging.getLogger(__name__)


class RetrievalEvaluation:
    """Validation/test/predict steps and their retrieval metrics (a LightningModule mixin)."""

    def _eval_step(self, batch, prefix: str) -> None:
        store = self._eval.setdefault(prefix, [])
        removed = len(batch["skipped"])  # pairs whose own image failed: not in the batch
        if not len(batch["indices"]):
            store.append((None, None, [], batch["has_image"], batch["indices"], removed))
            return
        text, image, tokens = self._eval_embeddings(prefix, batch)
        has_image = batch["has_image"]
        if self.model.captioner is not None:
            self._caption_batch(prefix, batch, tokens)
        image = image.cpu() if image is not None else None
        store.append((text.cpu(), image, batch["image_ids"], has_image, batch["indices"], removed))
        if image is not None and image.shape[0] >= 2:
            keys = batch["pair_keys"].to(self.device)[has_image.to(self.device)]
            loss = self.loss(image, text[has_image], self.model.scale(), keys)
            self.log(f"{prefix}/loss", loss, batch_size=image.shape[0], sync_dist=True)

    def _eval_embeddings(self, prefix: str, batch):
        """(text, image or None, captioner tokens or None) of an evaluation batch."""
        cached = self._cached_eval_embeddings(prefix, batch)
        if cached is not None:
            return (*cached, None)
        text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        if batch["pixel_values"] is None:
            return text, None, None
        if self.model.captioner is not None:
            return (text, *self.model.image_features_and_tokens(batch["pixel_values"]))
        return text, self.model.encode_image(batch["pixel_values"]), None

    def _run_data(self):
        """What the run's data supplies (`tonics.sampling.plan.RunData`), or None without a plan."""
        return self.plan.data if self.plan is not None else None

    def _cached_eval_embeddings(self, prefix: str, batch):
        """(text, image) embeddings of an evaluation batch from the split's pooled-feature cache,
        when the data asks for it (`data.cache.evaluation`) and both towers are frozen (the
        training feature cache is in use); None to embed live. The cache is built on first use."""
        data = self._run_data()
        if self.feature_cache is None or data is None or not data.eval_feature_cache:
            return None
        if self.model.captioner is not None or not len(batch["indices"]):
            return None
        name = data.split_evaluated(prefix)
        caches = self.__dict__.setdefault("_eval_feature_caches", {})
        if name not in caches:
            from tonics.cache.features import load_or_compute

            with torch.random.fork_rng(devices=[]):  # the run's random stream stays as it was
                caches[name] = load_or_compute(
                    self.model,
                    data.cache_source(name),
                    data.feature_dtype,
                    self.device,
                    self.trainer,
                )
        image, text, usable = caches[name].lookup(batch["indices"].cpu())
        if not bool(usable.all()):
            return None  # the cache and the loader disagree on an image: embed live
        normalize = torch.nn.functional.normalize
        text = normalize(self.model.text_head(text.to(self.device)), dim=-1)
        rows = batch["has_image"].to(image.device)
        image = normalize(self.model.vision_head(image[rows].to(self.device)), dim=-1)
        return text, image if len(image) else None

    def _caption_batch(self, prefix: str, batch, tokens) -> None:
        """Keep the batch's captions as references and caption its images (greedy)."""
        from tonics.model.generation import generate

        store = self._captions.setdefault(prefix, {"generated": {}, "references": {}})
        decode = self.caption_tokenizer.decode
        for image_id, ids in zip(batch["image_ids"], batch["input_ids"].tolist()):
            store["references"].setdefault(image_id, []).append(
                decode(ids, skip_special_tokens=True)
            )
        if tokens is None:
            return
        owners = [i for i, h in zip(batch["image_ids"], batch["has_image"].tolist()) if h]
        for image_id, ids in zip(owners, generate(self.model.captioner, tokens)):
            store["generated"][image_id] = decode(ids, skip_special_tokens=True)

    def _caption_metrics(self, prefix: str) -> dict[str, float]:
        """BLEU-4 and CIDEr of the split's generated captions (empty without a captioning head)."""
        from tonics.eval.captioning import caption_scores

        if self.model.captioner is None:  # the same on every rank: no gather needed
            return {}
        stores = [s for s in self._gathered(self._captions, prefix, None) if s]
        if not stores:
            return {}
        generated, references = {}, {}
        for store in stores:  # rank order: an image's references keep the dataset's order
            generated.update(store["generated"])
            for image_id, captions in store["references"].items():
                references.setdefault(image_id, []).extend(captions)
        scores = caption_scores(generated, references)
        return {f"{prefix}/caption_{k}": v for k, v in scores.items()}

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

    def _gathered(self, store: dict, prefix: str, empty):
        """This split's store of every rank, in rank order (this rank's alone without DDP)."""
        import torch.distributed as dist

        mine = store.pop(prefix, empty)
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return [mine]
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, mine)
        return everyone

    def _retrieval(self, prefix: str) -> dict[str, float]:
        chunks = [c for rank in self._gathered(self._eval, prefix, []) for c in rank]
        split = collect_embeddings(chunks)
        if split is None:
            return {}
        result = retrieval_metrics(
            split.images, split.texts, split.text_to_image, ks=self.retrieval_ks
        )
        metrics = {f"{prefix}/{k}": v for k, v in result.metrics.items()}
        metrics.update(
            {f"{prefix}/{k}": v for k, v in self._hard_metrics(prefix, split, result).items()}
        )
        metrics[f"{prefix}/images"] = float(len(split.image_ids))
        metrics[f"{prefix}/dropped_pairs"] = float(split.dropped)
        if split.dropped:
            log.warning(
                "%s: %d pairs left out of retrieval (their image failed to load)",
                prefix,
                split.dropped,
            )
        metrics[f"{prefix}/captions"] = float(len(split.text_to_image))
        metrics.update(self._caption_metrics(prefix))
        return metrics

    def _hard_metrics(self, prefix: str, split, result) -> dict[str, float]:
        """Within-object, caption-novel and seen/unseen-combination retrieval, when the data module
        can annotate the split."""
        data = self._run_data()
        if data is None or data.annotations is None or split.kept is None:
            return {}
        objects, novel, unseen = data.annotations(data.split_evaluated(prefix))
        ks = self.retrieval_ks
        return {
            **composition_metrics(
                result.text_to_image_ranks,
                result.image_to_text_ranks,
                split.text_to_image,
                [unseen[k] for k in split.kept],
                ks,
            ),
            **within_object_metrics(
                split.images, split.texts, split.text_to_image, [objects[k] for k in split.kept], ks
            ),
            **caption_novel_metrics(
                split.images, split.texts, split.text_to_image, [novel[k] for k in split.kept], ks
            ),
        }

    def on_validation_epoch_end(self) -> None:
        """Retrieval recall on the validation split (all captions); `val/recall_mean` on the bar."""
        metrics = self._retrieval("val")
        if metrics:
            bar = metrics.pop("val/recall_mean")
            self.log_dict(metrics, sync_dist=True)
            self.log("val/recall_mean", bar, prog_bar=True, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        """Retrieval recall on the test split."""
        metrics = self._retrieval("test")
        if metrics:
            self.log_dict(metrics, sync_dist=True)
