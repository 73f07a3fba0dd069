"""Checkpoints: a callback whose `last.ckpt` is always the latest state of the run, and a
CheckpointIO that writes atomically and names a damaged file when asked to read it.

Lightning's ModelCheckpoint (2.6) updates `last.ckpt` only at validations where a top-k checkpoint
was also written, so when the monitored metric stops improving `last.ckpt` silently stays at an
older step: a resume would then replay steps, and "the last checkpoint" would not be the last
model. This subclass also writes `last.ckpt` at every other validation and when training ends.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tonics.atomic import atomic_torch_save, remove_stale_temporaries


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


class DamagedCheckpointError(RuntimeError):
    """A checkpoint file that cannot be read; the message names it and the newest loadable one."""


def _loadable(path: Path) -> bool:
    if not path.is_file():  # a FIFO or device named *.ckpt: never opened
        return False
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not loadable"
        return False


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written so that a kill at any moment leaves the previous file intact.

    The new checkpoint goes to a temporary file in the destination directory (never `TMPDIR`,
    which on clusters is often another filesystem), is fsynced and renamed over the old one
    (`tonics.atomic`). Remote (fsspec URL) paths use Lightning's own writer.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        """Write `checkpoint` to `path` atomically (`tonics.atomic`)."""
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        remove_stale_temporaries(Path(path).parent)  # left by a killed write of any checkpoint
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        """Read a checkpoint as data only (`weights_only=True` whatever the caller asks: a
        checkpoint that would need unpickling objects could run code and is refused); a damaged
        file is an error naming it and the newest loadable one."""
        if "://" not in str(path) and Path(path).parent.is_dir():
            remove_stale_temporaries(Path(path).parent)  # a resume after a killed write
            if Path(path).exists() and not Path(path).is_file():  # a FIFO would block
                raise DamagedCheckpointError(
                    f"checkpoint {path} is not a regular file; give the path of a .ckpt file"
                )
        try:
            kwargs = {} if map_location is None else {"map_location": map_location}
            return super().load_checkpoint(path, weights_only=True, **kwargs)
        except FileNotFoundError:
            raise
        except pickle.UnpicklingError as err:
            if "weights only" in str(err).lower() or "weights_only" in str(err):
                raise DamagedCheckpointError(
                    f"checkpoint {path} holds pickled objects beyond tensors and plain data; "
                    "refused "
                    "(loading it could run code). Use a checkpoint written by tonics"
                ) from err
            raise DamagedCheckpointError(damaged_message(Path(path), err)) from err
        except (EOFError, RuntimeError, OSError, zipfile.BadZipFile) as err:
            raise DamagedCheckpointError(damaged_message(Path(path), err)) from err


def damaged_message(path: Path, err: BaseException) -> str:
    """One line: the damaged file, why, and the newest loadable checkpoint beside it."""
    others = sorted(
        (p for p in path.parent.glob("*.ckpt") if p != path and p.is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    newest = next((p for p in others if _loadable(p)), None)
    hint = (
        f"resume from the newest loadable one instead: --ckpt_path {newest}"
        if newest
        else "no other loadable checkpoint is in that directory"
    )
    reason = str(err).splitlines()[0].split(". ")[0][:120] if str(err) else type(err).__name__
    return f"checkpoint {path} is damaged ({type(err).__name__}: {reason}); {hint}"
