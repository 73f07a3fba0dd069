"""`TonicsCLI`: LightningCLI with the curriculum callbacks forced in, atomic checkpoint writes, and
a test pass after `fit` (the test split with the last weights and the best checkpoint, and the
held-out transfer split) printed and saved as `retrieval_test.json` + `retrieval_report.md`.

`tonics fit|validate|test|predict` land here through `tonics.commands.lightning`.
"""

from __future__ import annotations

import json
import sys

from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningCLI

from tonics.train.callbacks import CurriculumCallback, run_dir
from tonics.train.checkpointing import AtomicCheckpointIO, LastCheckpoint
from tonics.train.datamodule import TonicsDataModule
from tonics.train.module import AlignmentModule
from tonics.train.old_keys import check_arguments
from tonics.train.skipped import SkippedImagesCallback
from tonics.train.wiring import connect_run


def _loggers() -> list[dict]:
    """CSV always; TensorBoard too when it is installed."""
    loggers = [
        {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": "runs", "name": "tonics"},
        }
    ]
    try:
        import tensorboard  # noqa: F401

        loggers.append(
            {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": "runs", "name": "tonics"},
            }
        )
    except ImportError:
        pass
    return loggers


def share_run_directory(loggers: list) -> None:
    """Loggers writing under the same save_dir/name (CSV and TensorBoard by default) share the
    first one's version, so one run is one directory (each would otherwise number its own)."""
    if not loggers or not hasattr(loggers[0], "version"):
        return
    first = loggers[0]
    for other in loggers[1:]:
        same_place = (getattr(other, "save_dir", None), getattr(other, "name", None)) == (
            first.save_dir,
            first.name,
        )
        if same_place and getattr(other, "_version", "unset") is None:
            other._version = first.version


def format_retrieval(metrics: dict[str, float], prefix: str = "test") -> str:
    """A small Markdown table of R@1/5/10 both directions (and caption BLEU-4/CIDEr, if any)."""
    lines = ["| direction | R@1 | R@5 | R@10 | mean rank |", "|---|---|---|---|---|"]
    if f"{prefix}/recall_mean" in metrics:
        lines.insert(0, f"mean recall (R@1/5/10 both ways): {metrics[f'{prefix}/recall_mean']:.2f}")
    for direction in ("image_to_text", "text_to_image"):
        cells = [metrics.get(f"{prefix}/{direction}_R@{k}", float("nan")) for k in (1, 5, 10)]
        rank = metrics.get(f"{prefix}/{direction}_mean_rank", float("nan"))
        lines.append(
            f"| {direction.replace('_', ' ')} | "
            + " | ".join(f"{c:.2f}" for c in cells)
            + f" | {rank:.1f} |"
        )
    if f"{prefix}/caption_CIDEr" in metrics:
        lines.append(
            f"captions (greedy, {int(metrics.get(f'{prefix}/caption_images', 0))} images): "
            f"BLEU-4 {metrics[f'{prefix}/caption_BLEU-4']:.2f}, "
            f"CIDEr {metrics[f'{prefix}/caption_CIDEr']:.2f}"
        )
    return "\n".join(lines)


class TonicsCLI(LightningCLI):
    """LightningCLI with the curriculum wired in and a test pass after `fit`."""

    def add_arguments_to_parser(self, parser) -> None:
        """Link encoder names to the data (tokenizer, image processor); force our callbacks."""
        parser.link_arguments("model.spec.text_encoder", "data.text_encoder")
        parser.link_arguments("model.spec.vision_encoder", "data.vision_encoder")
        parser.add_lightning_class_args(CurriculumCallback, "curriculum")
        parser.add_lightning_class_args(SkippedImagesCallback, "skipped_images")
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults(
            {
                "checkpoint.save_last": True,
                "checkpoint.monitor": "val/recall_mean",
                "checkpoint.mode": "max",
                "checkpoint.save_top_k": 1,
            }
        )
        parser.set_defaults({"trainer.logger": _loggers(), "trainer.default_root_dir": "runs"})
        parser.add_argument(
            "--no_test", type=bool, default=False, help="skip the test pass after fit"
        )

    def _parse_ckpt_path(self) -> None:
        """Lightning reads `--ckpt_path` here, before any CheckpointIO: a damaged or pickled file
        becomes the same one-line error (naming the newest loadable checkpoint) as at resume."""
        from tonics.train.checkpointing import AtomicCheckpointIO

        try:
            super()._parse_ckpt_path()
        except Exception:
            ckpt_path = self.config[self.config.subcommand].get("ckpt_path")
            AtomicCheckpointIO().load_checkpoint(ckpt_path, map_location="cpu")  # names the damage
            raise

    def instantiate_trainer(self, **kwargs):
        """The Trainer, with atomic checkpoint writes unless the config names its own
        CheckpointIO."""
        from lightning.pytorch.plugins.io import CheckpointIO

        plugins = self._get(self.config_init, "trainer", default={}).get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        trainer = super().instantiate_trainer(**{**kwargs, "plugins": plugins})
        share_run_directory(trainer.loggers)
        return trainer

    def instantiate_classes(self) -> None:
        """Build the module, data module and trainer, then hand them one run plan
        (`tonics.train.wiring.connect_run`, which checks stage openings against the towers)."""
        super().instantiate_classes()
        connect_run(self.model, self.datamodule, self.trainer.callbacks)

    def before_instantiate_classes(self) -> None:
        """Our batch sampler is rank-aware: Lightning must not replace it."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.trainer.use_distributed_sampler = False

    def after_fit(self) -> None:
        """Evaluate the test split with the last weights and the best checkpoint; print both and
        save them (`retrieval_test.json`: the best checkpoint's figures, the last's under
        "last")."""
        if self.config["fit"].get("no_test") or self.trainer.fast_dev_run:
            return
        if not self.datamodule.has_split("test"):
            print("No test split in this dataset: skipping the test pass.")
            return
        callback = self.trainer.checkpoint_callback
        best = callback.best_model_path if callback else ""
        last = self._test(None)  # the weights in memory: the last step's
        transfer = self._transfer()  # the same, last weights
        metrics = self._test(best) if best else last
        if self.trainer.global_rank == 0 and metrics:
            directory = run_dir(self.trainer)
            (directory / "retrieval_test.json").write_text(
                json.dumps(
                    {
                        "checkpoint": best or "last weights",
                        **metrics,
                        "last": last,
                        **({"transfer": transfer} if transfer else {}),
                    },
                    indent=2,
                )
            )
            images, captions = (
                int(metrics.get("test/images", 0)),
                int(metrics.get("test/captions", 0)),
            )
            print(f"\nRetrieval on the test split ({images} images, {captions} captions)")
            print(f"last weights (step {self.trainer.global_step}):")
            print(format_retrieval(last))
            if best:
                print(f"best checkpoint by {callback.monitor} ({best}):")
                print(format_retrieval(metrics))
            if transfer:
                split = self.datamodule.evaluation.transfer_split
                print(
                    f"\nZero-shot transfer, last weights: the '{split}' split, held out of "
                    f"training ({int(transfer.get(f'{split}/images', 0))} images, "
                    f"{int(transfer.get(f'{split}/captions', 0))} captions)"
                )
                print(format_retrieval(transfer, prefix=split))
            self._report(directory, metrics, checkpoint=best or "last weights")
            print(f"Run directory: {directory} (retrieval_report.md beside the references)")

    def _transfer(self) -> dict[str, float]:
        """The transfer split's figures with the weights in memory, renamed `<split>/...`; empty
        when the data has no such split."""
        split = self.datamodule.evaluation.transfer_split
        if not split or not self.datamodule.has_split(split):
            return {}
        with self.datamodule.testing(split):
            metrics = self._test(None)
        return {f"{split}/" + k.removeprefix("test/"): v for k, v in metrics.items()}

    def _test(self, checkpoint: str | None) -> dict[str, float]:
        results = self.trainer.test(
            self.model, datamodule=self.datamodule, ckpt_path=checkpoint, verbose=False
        )
        return {k: float(v) for k, v in results[0].items()} if results else {}

    def _report(self, directory, metrics: dict, **extra) -> None:
        from tonics.eval.report import write_report

        config = self.parser.dump(self.config, skip_none=False)
        name = f"{self.model.spec.text_encoder} + {self.model.spec.vision_encoder}"
        write_report(
            directory,
            {k: float(v) for k, v in metrics.items()},
            config,
            name,
            split="test",
            **extra,
        )

    def after_test(self) -> None:
        """`tonics test`: print and save the retrieval figures of the test split."""
        metrics = {
            k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("test/")
        }
        if self.trainer.global_rank == 0 and metrics:
            print(format_retrieval(metrics))
            self._report(
                run_dir(self.trainer), metrics, checkpoint=str(self.config["test"].get("ckpt_path"))
            )


LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# parse errors raise (and are printed as one line by cli_main) instead of printing usage and exiting
NO_EXIT = {"exit_on_error": False, **{c: {"exit_on_error": False} for c in LIGHTNING_COMMANDS}}


def lightning_main(args: list[str] | None = None) -> TonicsCLI:
    """Run the LightningCLI subcommands (fit, validate, test, predict); a config or override that
    writes an old flat key fails first, naming the key's new place (`tonics.train.old_keys`)."""
    check_arguments(sys.argv[1:] if args is None else list(args))
    return TonicsCLI(
        AlignmentModule,
        TonicsDataModule,
        save_config_kwargs={"overwrite": True},
        parser_kwargs=NO_EXIT,
        args=args,
    )
