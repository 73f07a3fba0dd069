"""SkippedImagesCallback: training pairs dropped because their image failed, counted once per pair
and reason, kept in checkpoints, written to the run directory; stops a run where no image loads."""

from __future__ import annotations

import json
import logging
from collections import Counter

import lightning.pytorch as pl

from tonics.errors import InputError
from tonics.train.callbacks import run_dir

log = logging.getLogger(__name__)

EARLY_FAILURE_DRAWS = 256  # this many failed draws and not one image loaded: stop at once


class SkippedImagesCallback(pl.Callback):
    """Counts training pairs dropped because their image failed: per distinct pair and reason
    (a broken file drawn in three epochs is one pair, three draws), kept in checkpoints so a
    resumed run reports the whole run; written to `skipped_images.json` after every epoch."""

    def __init__(self) -> None:
        self.failed: dict[int, tuple[str, str]] = {}  # pair index -> (location, reason)
        self.draws = 0  # skipped draws, repeats included
        self.loaded = 0
        self.epoch_new: Counter[str] = Counter()
        self.epoch_loaded = 0
        self.epoch_skipped = 0

    def state_dict(self) -> dict:
        """What a resumed run needs to keep counting."""
        return {
            "failed": {str(k): list(v) for k, v in self.failed.items()},
            "draws": self.draws,
            "loaded": self.loaded,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue the counts of the run this checkpoint came from."""
        self.failed = {int(k): tuple(v) for k, v in state_dict.get("failed", {}).items()}
        self.draws, self.loaded = state_dict.get("draws", 0), state_dict.get("loaded", 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Count this batch's failures and successes."""
        for index, location, reason in batch.get("skipped", []):
            self.draws += 1
            self.epoch_skipped += 1
            if index not in self.failed:
                self.failed[index] = (location, reason)
                self.epoch_new[reason] += 1
        loaded = int(batch["has_image"].sum()) if "has_image" in batch else 0
        self.loaded += loaded
        self.epoch_loaded += loaded
        if self.loaded == 0 and self.draws >= EARLY_FAILURE_DRAWS:  # no need to wait an epoch
            self._fail(self.draws)

    def _fail(self, tried: int) -> None:
        examples = [f"{loc}: {why}" for loc, why in list(self.failed.values())[:3]]
        raise InputError(
            f"every image failed to load ({tried} tried, e.g. {examples}); check the dataset's "
            "image root / paths"
        )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Log the epoch's skips; stop when no image at all could be loaded."""
        pl_module.log("data/skipped_pairs", float(len(self.failed)), sync_dist=True)
        if self.epoch_new:
            log.warning(
                "epoch %d: %d more pairs with unusable images %s (%d in all)",
                trainer.current_epoch,
                sum(self.epoch_new.values()),
                dict(self.epoch_new),
                len(self.failed),
            )
        if self.epoch_loaded == 0 and self.epoch_skipped:
            self._fail(self.epoch_skipped)
        self.epoch_new.clear()
        self.epoch_loaded = self.epoch_skipped = 0
        self._write(trainer)

    def report(self) -> dict:
        """Distinct pairs and images skipped, by reason, with examples."""
        return {
            "skipped_total": len(self.failed),
            "by_reason": dict(Counter(reason for _, reason in self.failed.values())),
            "distinct_images": len({loc for loc, _ in self.failed.values()}),
            "skipped_draws": self.draws,
            "loaded": self.loaded,
            "examples": [f"{loc}: {why}" for loc, why in list(self.failed.values())[:20]],
        }

    def _write(self, trainer) -> None:
        if trainer.global_rank == 0:
            (run_dir(trainer) / "skipped_images.json").write_text(
                json.dumps(self.report(), indent=2)
            )
