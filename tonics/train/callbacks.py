"""Callbacks that connect the curriculum sampler to the training loop.

CurriculumCallback: sets the sampler's epoch (Lightning does so only for plain samplers), saves and
restores the curriculum and sampler position in checkpoints (exact mid-epoch resume), advances a
plateau stage when the monitored metric stops improving, opens encoders when a stage asks, saves
the model as it is at the end of each stage (`checkpoints/stage{i}-{name}-end.ckpt`, to compare
what each stage added), and writes per-step diagnostics (`curriculum_steps.csv`) and a
per-stage summary (`stage_summary.json`).
(SkippedImagesCallback, which counts images that failed to load, is in `tonics.train.skipped`.)
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import lightning.pytorch as pl

from tonics.errors import require_choice, require_number
from tonics.train.step_log import STEP_FIELDS, read_step_rows, stage_summary

log = logging.getLogger(__name__)


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's log directory (the first logger's, else the trainer's default root).

    Read from the logger, not `trainer.log_dir`: that property is a collective under DDP and
    would deadlock when, as here, only rank 0 asks.
    """
    directory = None
    if trainer.loggers:
        directory = getattr(trainer.loggers[0], "log_dir", None) or trainer.loggers[0].save_dir
    path = Path(directory or trainer.default_root_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


class CurriculumCallback(pl.Callback):
    """Drives the curriculum sampler from the training loop; see the module docstring."""

    def __init__(
        self,
        monitor: str = "val/recall_mean",
        mode: str = "max",
        min_delta: float = 0.0,
        lookahead: int = 8,
        save_stage_checkpoints: bool = True,
    ) -> None:
        """`monitor`/`mode`: the validation metric of the plateau rule and whether higher ('max')
        or lower ('min') is better. `lookahead`: steps between a plateau decision and the stage
        change it causes, more than the loader prefetches, so that every rank switches at the same
        step. `save_stage_checkpoints`: keep the model as it is when each stage ends."""
        require_choice(mode, ("min", "max"), "curriculum.mode")
        require_number(lookahead, "curriculum.lookahead", low=0, integer=True)
        self.monitor = monitor
        self.mode = mode
        self.save_stage_checkpoints = save_stage_checkpoints
        self.min_delta = min_delta
        self.lookahead = lookahead
        self.best = float("inf")
        self.bad_checks = 0
        self.steps_done = 0  # per-rank batches trained since the first step of the run
        self.applied_stage = -1
        self._pending: dict | None = None
        self.plan = None  # the run plan (tonics.sampling.plan.RunPlan), handed out by connect_run
        self._csv: Path | None = None  # this run's curriculum_steps.csv (rank 0)
        self._previous_csv: str | None = None  # the resumed run's, from the checkpoint
        self._t_end = None
        self._t_start = None
        self._data_s = 0.0

    def use_plan(self, plan) -> None:
        """Drive the run's plan: its curriculum, sampler, openings and teacher schedule."""
        self.plan = plan

    def _plan(self):
        """The run plan, once the data module has built its sampler."""
        if self.plan is None or self.plan.sampler is None:
            raise RuntimeError(
                "CurriculumCallback needs the run plan with its batch sampler: hand the module, "
                "data module and callbacks one plan with tonics.train.wiring.connect_run before "
                "trainer.fit"
            )
        return self.plan

    def state_dict(self) -> dict:
        """Curriculum stage starts, position and plateau counters, for exact resume."""
        plan = self.plan
        curriculum = plan.curriculum.state_dict() if plan is not None else {}
        schedule = plan.teacher_schedule if plan is not None else None
        return {
            "steps_done": self.steps_done,
            "best": self.best,
            "bad_checks": self.bad_checks,
            "curriculum": curriculum,
            "steps_csv": str(self._csv) if self._csv else None,
            "teacher": schedule.state_dict(self.steps_done) if schedule else None,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Keep the saved state until the datamodule is ready (applied in on_fit_start)."""
        self._pending = state_dict

    def setup(self, trainer, pl_module, stage: str) -> None:
        """A fit needs the plan's sampler (built by the data module's setup)."""
        if stage == "fit":
            self._plan()

    def on_fit_start(self, trainer, pl_module) -> None:
        """Restore a resumed run's curriculum and position before the loader's first batch.

        Lightning creates (and prefetches from) the training iterator before `on_train_start`, so
        the sampler's epoch and skip count must be set here, right after the checkpoint is read.
        """
        plan = self._plan()
        sampler, schedule = plan.sampler, plan.teacher_schedule
        if self._pending:
            self.steps_done = self._pending["steps_done"]
            self.best, self.bad_checks = self._pending["best"], self._pending["bad_checks"]
            if self._pending.get("curriculum"):
                plan.curriculum.load_state_dict(self._pending["curriculum"])
            self._previous_csv = self._pending.get("steps_csv")
            if schedule is not None and self._pending.get("teacher"):
                schedule.load_state_dict(self._pending["teacher"])
            self._pending = None
        if schedule is not None:
            schedule.delay = self.lookahead
        sampler.start_at(self.steps_done)
        if trainer.global_rank == 0:  # the run directory keeps its ontology for the analysis
            sampler.ontology.keep(run_dir(trainer) / "ontology.npz")
            self._start_csv(run_dir(trainer) / "curriculum_steps.csv")

    def _start_csv(self, path: Path) -> None:
        """A fresh step CSV, or, on resume, the resumed run's rows up to the checkpoint's step."""
        earlier = []
        source = Path(self._previous_csv) if self._previous_csv else None
        if self.steps_done and source is not None and source.is_file():
            earlier = [r for r in read_step_rows(source) if int(r["step"]) < self.steps_done]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=STEP_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(earlier)
        self._csv = path

    def on_train_start(self, trainer, pl_module) -> None:
        """Open the towers as the plan has them at the first step to train."""
        self._open_towers(pl_module, self._plan().stage_at(self.steps_done))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        """Tell the sampler where it is, from our own step count.

        Lightning also calls `set_epoch` on batch samplers, with an epoch number that after a
        mid-epoch resume is one ahead of the uninterrupted run's; our count is authoritative.
        """
        self._plan().sampler.start_at(self.steps_done)
        self._t_end = time.perf_counter()

    def _open_towers(self, pl_module, stage_index: int) -> None:
        """Open the towers as far as the run's plan has them at this step."""
        pl_module.open_towers(self.plan.openings.at(self.steps_done, stage_index))
        for index in range(self.applied_stage + 1, stage_index + 1):
            name = self.plan.curriculum.stages[index].name
            log.info("curriculum: stage %d '%s' begins at step %d", index, name, self.steps_done)
        self.applied_stage = max(self.applied_stage, stage_index)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Open the towers the plan opens at this step; note data-loading time."""
        self._t_start = time.perf_counter()
        self._data_s = self._t_start - (self._t_end or self._t_start)
        draw = self._plan().sampler.draws.get(self.steps_done)
        if draw is not None:
            self._open_towers(pl_module, draw.stage)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Record this step's diagnostics and count it."""
        now = time.perf_counter()
        plan = self._plan()
        draw = plan.sampler.draws.pop(self.steps_done, None)
        stats = pl_module.last_stats
        if draw is not None:
            row = {
                "step": self.steps_done,
                "epoch": trainer.current_epoch,
                "stage": draw.stage,
                "stage_name": plan.curriculum.stages[draw.stage].name,
                "kind": draw.kind,
                "node": draw.node or "",
                "depth": "" if draw.depth is None else draw.depth,
                **{k: round(v, 6) for k, v in stats.items()},
                "data_s": round(self._data_s, 5),
                "step_s": round(now - self._t_start, 5),
                "path": pl_module.last_path,
            }
            if self._csv is not None:  # one row at a time: a killed run keeps what it trained
                with open(self._csv, "a", newline="") as handle:
                    csv.DictWriter(handle, fieldnames=STEP_FIELDS, extrasaction="ignore").writerow(
                        row
                    )
            pl_module.log("curriculum/stage", float(draw.stage), batch_size=len(batch["indices"]))
            if draw.depth is not None:
                pl_module.log(
                    "curriculum/node_depth", float(draw.depth), batch_size=len(batch["indices"])
                )
            pl_module.log("time/data_s", self._data_s, batch_size=len(batch["indices"]))
            pl_module.log("time/step_s", now - self._t_start, batch_size=len(batch["indices"]))
            pl_module.log(
                "time/samples_per_s",
                len(batch["indices"]) / max(1e-9, now - self._t_start),
                batch_size=len(batch["indices"]),
            )
        self.steps_done += 1
        self._refresh_teacher(plan.teacher_schedule, pl_module)
        self._save_if_stage_ends(trainer, plan, draw)
        self._t_end = time.perf_counter()

    def _refresh_teacher(self, schedule, pl_module) -> None:
        """Re-embed the pairs for mined batches ranked by the current model, when one is due."""
        if schedule is not None and schedule.due(self.steps_done):
            from tonics.train.teacher import current_teacher_rows

            started = time.perf_counter()
            schedule.add(self.steps_done, current_teacher_rows(pl_module))
            log.info(
                "mined batches: teacher re-embedded after step %d in %.1f s (used from step %d)",
                self.steps_done,
                time.perf_counter() - started,
                self.steps_done + schedule.delay,
            )

    def _save_if_stage_ends(self, trainer, plan, draw) -> None:
        """After the last step of a stage, save the model as that stage leaves it."""
        if not self.save_stage_checkpoints or draw is None:
            return
        following = plan.stage_at(self.steps_done)
        if following == draw.stage or trainer.max_steps == self.steps_done:
            return
        directory = getattr(trainer.checkpoint_callback, "dirpath", None) or run_dir(trainer)
        name = plan.curriculum.stages[draw.stage].name
        path = str(Path(directory) / f"stage{draw.stage}-{name}-end.ckpt")
        trainer.save_checkpoint(path, weights_only=False)  # whole state: a run can resume from it

    def on_validation_end(self, trainer, pl_module) -> None:
        """Plateau rule: after `plateau_patience` checks without improvement, move on; refresh
        the stage summary."""
        if trainer.sanity_checking or not trainer.training:
            return
        self._write_summary(trainer, pl_module)
        curriculum = self._plan().curriculum
        value = trainer.callback_metrics.get(self.monitor)
        stage = curriculum.stages[curriculum.current]
        if value is None or stage.plateau_patience is None:
            return
        score = float(value) if self.mode == "min" else -float(value)
        if score < self.best - self.min_delta:
            self.best, self.bad_checks = score, 0
            return
        self.bad_checks += 1
        if self.bad_checks >= stage.plateau_patience:
            at = self.steps_done + self.lookahead
            if curriculum.request_advance(at):
                log.info("curriculum: %s plateaued; next stage from step %d", self.monitor, at)
            self.best, self.bad_checks = float("inf"), 0

    def _write_summary(self, trainer, pl_module) -> None:
        if self._csv is None or trainer.global_rank != 0:  # (only rank 0 has a CSV)
            return
        caches = pl_module.cache_summary()
        summary = stage_summary(read_step_rows(self._csv), self.plan.curriculum, caches)
        (self._csv.parent / "stage_summary.json").write_text(json.dumps(summary, indent=2))

    def on_train_end(self, trainer, pl_module) -> None:
        """Write the stage summary of the whole run (resumed parts included)."""
        self._write_summary(trainer, pl_module)
        if trainer.global_rank == 0 and self._csv is not None:
            log.info(
                "curriculum: stage summary written to %s", self._csv.parent / "stage_summary.json"
            )
