"""Checkpoint callback whose `last.ckpt` is always the latest state of the run.

Lightning's ModelCheckpoint (2.6) updates `last.ckpt` only at validations where a top-k checkpoint
was also written, so when the monitored metric stops improving `last.ckpt` silently stays at an
older step: a resume would then replay steps, and "the last checkpoint" would not be the last
model. This subclass also writes `last.ckpt` at every other validation and when training ends.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class LastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose `last.ckpt` follows every validation and the end of training."""

    def _save_last_if_stale(self, trainer) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        """Top-k as usual; then `last.ckpt`, whether or not a top-k checkpoint was written."""
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_stale(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        """The final step's state, when no validation saved it."""
        super().on_train_end(trainer, pl_module)
        self._save_last_if_stale(trainer)
