"""The cached feature paths of training steps (a LightningModule mixin): the pooled-feature
cache for frozen steps and a frozen-prefix cache per top-k split the run plan opens, built (or
loaded) once when training starts, and the features of a batch the sampler marked as cached.
"""

from __future__ import annotations

import logging
import time

import torch

from tonics.sampling.openings import Openings, split_of

log = logging.getLogger(__name__)


_NO_CACHE = (
    "a batch marked 'features cached' arrived but no cache serves the encoders as they are now "
    "(text {text}, vision {vision}: an encoder was opened outside the curriculum/model.opening "
    "the sampler knows of); turn data.cache.enabled off for this run"
)


class CachedFeaturePaths:
    """Builds the caches the run plan asks for and serves cached batches from them."""

    def on_train_start(self) -> None:
        """Build (or load) the caches the run's plan asks for: the pooled-feature cache for
        frozen stages, and a frozen-prefix cache for each split of a stage that opens top-k
        blocks. Stages whose split cannot be cached train live (one line says why)."""
        plan = self.plan
        if plan is None or plan.data is None or not plan.openings.feature_cache:
            return
        # building (loaders draw seeds) or loading a cache must leave the run's random stream as
        # it was: a run that computes the cache and one that loads it then train identically
        with torch.random.fork_rng(devices=[]):
            self._build_caches(plan.openings, plan.data)
        plan.openings.use_prefix_caches(self.prefix_caches)

    def _build_caches(self, openings: Openings, data) -> None:
        from tonics.cache.prefix import (
            UnsupportedSplit,
            derive_feature_cache,
            load_or_compute_prefix,
        )

        splits, whole = openings.cache_splits()
        if whole:
            log.info(
                "feature cache: stage(s) %s open a whole tower and run live (a prefix cache "
                "needs top-k openings: a stage's opening.text/vision: k)",
                whole,
            )
        source = data.cache_source("train")
        for split in splits:
            try:
                self.prefix_caches[split] = load_or_compute_prefix(
                    self.model, source, split, data.prefix_dtype, self.device, self.trainer
                )
            except UnsupportedSplit as why:
                log.warning(
                    "prefix cache (text top %d, vision top %d) not used, those steps run live: %s",
                    split[0],
                    split[1],
                    why,
                )
        frozen = self.model.text.is_frozen and self.model.vision.is_frozen
        frozen = frozen and self.model.captioner is None  # a captioner's frozen steps: a prefix
        started = time.perf_counter()
        if frozen and self.prefix_caches:  # derive pooled features: no second encoding pass
            prefix = next(iter(self.prefix_caches.values()))
            self.feature_cache = derive_feature_cache(
                prefix, self.model, source, self.device, self.trainer
            )
        elif frozen:
            from tonics.cache.features import load_or_compute

            self.feature_cache = load_or_compute(
                self.model, source, data.feature_dtype, self.device, self.trainer
            )
        if self.feature_cache is not None:
            self._pooled_info = {
                "bytes": self.feature_cache.nbytes,
                "build_s": round(time.perf_counter() - started, 3),
                "source": "derived from the prefix cache"
                if self.prefix_caches
                else "computed or loaded",
            }

    def cache_summary(self) -> dict[str, dict]:
        """Each feature path's cache: bytes in memory, seconds to build or load, and source."""
        caches = {"pooled": self._pooled_info} if self._pooled_info else {}
        for (text_k, vision_k), cache in self.prefix_caches.items():
            caches[f"prefix text={text_k} vision={vision_k}"] = {
                "bytes": cache.nbytes,
                "build_s": round(cache.build_s, 3),
                "source": cache.source,
            }
        return caches

    def _cached_features(self, batch):
        split = split_of(self.unfrozen)
        tokens = None
        if self.model.captioner is not None:
            split = self.plan.openings.token_split() if split == (0, 0) else split
            cache = self.prefix_caches.get(split)
            if cache is None:
                raise RuntimeError(_NO_CACHE.format(**self.unfrozen))
            image, text, usable, tokens = cache.features(
                batch["indices"].cpu(), self.device, tokens=True
            )
            self.last_path = f"prefix text={split[0]} vision={split[1]}"
        elif split == (0, 0) and self.feature_cache is not None:
            image, text, usable = self.feature_cache.lookup(batch["indices"].cpu())
            self.last_path, cache = "pooled", self.feature_cache
        elif split in self.prefix_caches:
            cache = self.prefix_caches[split]
            image, text, usable = cache.features(batch["indices"].cpu(), self.device)
            self.last_path = f"prefix text={split[0]} vision={split[1]}"
        else:
            raise RuntimeError(_NO_CACHE.format(**self.unfrozen))
        for index in batch["indices"][~usable].tolist():
            batch["skipped"].append((index, *cache.failures[index]))
        batch["has_image"] = usable
        image = torch.nn.functional.normalize(self.model.vision_head(image.to(self.device)), dim=-1)
        text = torch.nn.functional.normalize(self.model.text_head(text.to(self.device)), dim=-1)
        return image, text, tokens
