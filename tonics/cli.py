"""The `tonics` command.

  tonics fit --config configs/demo.yaml          train (LightningCLI; also validate/test/predict)
  tonics fit --config configs/demo.yaml --print_config
  tonics ontology build|stats --demo             the WordNet object graph of a dataset
  tonics export CKPT OUT                          a model that loads without the training code
  tonics retrieval --model OUT --demo             retrieval figures of an exported model
  tonics retrieval --model OUT --demo-transfer    zero-shot on the demo's held-out style
  tonics demo [--stats]                           build the offline demo dataset (its data card)
  tonics index 'SHARDS/*.tar' [--out FILE]         random-access index of webdataset shards
  tonics report RUN_DIR                           curriculum-stage figures (PNG) of a finished run
  tonics compare A.yaml B.yaml --seeds 0 1 2 3 4   paired-seed comparison of recipes, with intervals

After `fit`, the test split is evaluated and its retrieval figures printed (unless --no_test),
and a held-out `transfer` split (the demo's OpenMoji renderings) beside it when the data has one.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys

from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningCLI

from tonics.data.datamodule import TonicsDataModule
from tonics.train.callbacks import CurriculumCallback, run_dir
from tonics.train.checkpointing import AtomicCheckpointIO, LastCheckpoint
from tonics.train.module import AlignmentModule
from tonics.train.skipped import SkippedImagesCallback

TOOL_COMMANDS = (
    "ontology",
    "export",
    "retrieval",
    "zeroshot",
    "demo",
    "index",
    "report",
    "compare",
)


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

        loggers.append({"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                        "init_args": {"save_dir": "runs", "name": "tonics"}})  # fmt: skip
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
        same_place = (getattr(other, "save_dir", None), getattr(other, "name", None)) == (first.save_dir, first.name)  # fmt: skip
        if same_place and getattr(other, "_version", "unset") is None:
            other._version = first.version


def format_retrieval(metrics: dict[str, float], prefix: str = "test") -> str:
    """A small Markdown table of R@1/5/10 both directions."""
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
    return "\n".join(lines)


class TonicsCLI(LightningCLI):
    """LightningCLI with the curriculum wired in and a test pass after `fit`."""

    def add_arguments_to_parser(self, parser) -> None:
        """Link encoder names to the data (tokenizer, image processor); force our callbacks."""
        parser.link_arguments("model.text_encoder", "data.text_encoder")
        parser.link_arguments("model.vision_encoder", "data.vision_encoder")
        parser.link_arguments("model.unfreeze_at_step", "data.unfreeze_at_step")
        parser.add_lightning_class_args(CurriculumCallback, "curriculum")
        parser.add_lightning_class_args(SkippedImagesCallback, "skipped_images")
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.monitor": "val/recall_mean",
                             "checkpoint.mode": "max", "checkpoint.save_top_k": 1})  # fmt: skip
        parser.set_defaults({"trainer.logger": _loggers(), "trainer.default_root_dir": "runs"})
        parser.add_argument(
            "--no_test", type=bool, default=False, help="skip the test pass after fit"
        )

    def instantiate_trainer(self, **kwargs):
        """The Trainer, with atomic checkpoint writes unless the config names its own CheckpointIO."""
        from lightning.pytorch.plugins.io import CheckpointIO

        plugins = self._get(self.config_init, "trainer", default={}).get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        trainer = super().instantiate_trainer(**{**kwargs, "plugins": plugins})
        share_run_directory(trainer.loggers)
        return trainer

    def before_fit(self) -> None:
        """Check the settings that need the model (stage openings against its blocks)."""
        self.datamodule.check_against_model(self.model)

    def before_instantiate_classes(self) -> None:
        """Our batch sampler is rank-aware: Lightning must not replace it."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.trainer.use_distributed_sampler = False

    def after_fit(self) -> None:
        """Evaluate the test split with the last weights and the best checkpoint; print both and
        save them (`retrieval_test.json`: the best checkpoint's figures, the last's under "last")."""
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
                split = self.datamodule.transfer_split
                print(f"\nZero-shot transfer, last weights: the '{split}' split, held out of "
                      f"training ({int(transfer.get(f'{split}/images', 0))} images, "
                      f"{int(transfer.get(f'{split}/captions', 0))} captions)")  # fmt: skip
                print(format_retrieval(transfer, prefix=split))
            self._report(directory, metrics, checkpoint=best or "last weights")
            print(f"Run directory: {directory} (retrieval_report.md beside the references)")

    def _transfer(self) -> dict[str, float]:
        """The transfer split's figures with the weights in memory, renamed `<split>/...`; empty
        when the data has no such split."""
        split = getattr(self.datamodule, "transfer_split", None)
        if not split or not self.datamodule.has_split(split):
            return {}
        self.datamodule.test_split = split
        try:
            metrics = self._test(None)
        finally:
            self.datamodule.test_split = "test"
        return {f"{split}/" + k.removeprefix("test/"): v for k, v in metrics.items()}

    def _test(self, checkpoint: str | None) -> dict[str, float]:
        results = self.trainer.test(
            self.model, datamodule=self.datamodule, ckpt_path=checkpoint, verbose=False
        )
        return {k: float(v) for k, v in results[0].items()} if results else {}

    def _report(self, directory, metrics: dict, **extra) -> None:
        from tonics.eval.report import write_report

        config = self.parser.dump(self.config, skip_none=False)
        name = f"{self.model.hparams.text_encoder} + {self.model.hparams.vision_encoder}"
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
    """Run the LightningCLI subcommands (fit, validate, test, predict)."""
    return TonicsCLI(
        AlignmentModule,
        TonicsDataModule,
        save_config_kwargs={"overwrite": True},
        parser_kwargs=NO_EXIT,
        args=args,
    )


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the config or the data is wrong", not "tonics has a bug"."""
    from jsonargparse import ArgumentError

    from tonics.errors import ConfigError, InputError
    from tonics.model.encoders import ModelNotFoundError
    from tonics.train.checkpointing import DamagedCheckpointError

    return (ArgumentError, ConfigError, InputError, ModelNotFoundError, DamagedCheckpointError,
            pickle.UnpicklingError)  # fmt: skip


def one_line(err: BaseException) -> str:
    """An error message folded onto one line (jsonargparse's span several)."""
    if isinstance(err, pickle.UnpicklingError):  # torch.load(weights_only=True) met a pickle
        unsupported = [
            line.strip() for line in str(err).splitlines() if "Unsupported global" in line
        ]
        return ("a checkpoint holds pickled objects beyond tensors and plain data; refused (loading "
                f"it could run code). {unsupported[0][:160] if unsupported else ''}").strip()  # fmt: skip
    text = " ".join(str(err).split())
    return text if len(text) <= 400 else text[:397] + "..."


COMMANDS = {
    "fit": "train (LightningCLI): tonics fit --config configs/demo.yaml",
    "validate": "evaluate a checkpoint on the validation split (LightningCLI)",
    "test": "evaluate a checkpoint on the test split, with a retrieval report (LightningCLI)",
    "predict": "embeddings of the test split (LightningCLI)",
    "ontology": "build or inspect the WordNet object ontology of a dataset",
    "export": "write a trained checkpoint as a Hugging Face model directory (+ model card)",
    "retrieval": "retrieval figures of an exported model, any local CLIP-like model, or a baseline",
    "zeroshot": "zero-shot top-1/top-5 accuracy on an image folder or a local HF dataset",
    "demo": "build the offline demo dataset (--stats: its data card)",
    "index": "index img2dataset shards (.tar or .parquet) for random access (tonics index 'shards/*.tar')",
    "report": "curriculum-stage figures (PNG) of a finished run",
    "compare": "recipes over paired seeds: means, paired differences with 95% intervals",
}


def print_commands() -> None:
    """`tonics --help`: every command, Lightning's and ours, one line each."""
    print("usage: tonics COMMAND [options]   (tonics COMMAND --help for its options)\n")
    for name, text in COMMANDS.items():
        print(f"  {name:<10} {text}")
    print("\nConfig and data errors print one line (exit 2); TONICS_DEBUG=1 shows the traceback.")


def quiet_known_noise() -> None:
    """Silence start-up messages a user cannot act on (each explained here).

    - "Found N module(s) in eval mode": the frozen encoders are held in eval mode on purpose.
    - lightning's `_pytree` DeprecationWarning: inside Lightning, nothing for a user to change.
    - Lightning's "Tip: ... litlogger" advertisement.
    - LightningCLI's warning that `args` and `sys.argv` are both given: `tonics compare` (and
      the tests) pass each run's arguments on purpose while their own command line is in argv.
    """
    import warnings

    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
    warnings.filterwarnings(
        "ignore", category=DeprecationWarning, module=r"lightning\.pytorch\.utilities\._pytree"
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")

    class _NoAdverts(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "litlogger" not in record.getMessage().lower()

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NoAdverts())


def cli_main(args: list[str] | None = None) -> None:
    """Entry point of the `tonics` console script.

    A configuration or data error is printed as one line on stderr with exit code 2; set
    TONICS_DEBUG=1 to see the traceback instead.
    """
    import os

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_known_noise()
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_commands()
        return None
    try:
        if argv and argv[0] in TOOL_COMMANDS:
            from tonics.commands import run_tool

            code = run_tool(argv)
            if code:
                raise SystemExit(code)
            return None
        lightning_main(None if args is None else argv)  # None: LightningCLI reads sys.argv
    except _user_errors() as err:
        if os.environ.get("TONICS_DEBUG"):
            raise
        kind = (
            "config"
            if type(err).__name__ in ("ArgumentError", "ConfigError", "CurriculumError")
            else "input"
        )
        print(
            f"tonics: {kind} error: {one_line(err)} (TONICS_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    return None


if __name__ == "__main__":
    cli_main()
