"""The `tonics` commands: a registry of small modules, one per tool.

Each tool module has `main(argv) -> exit code` and imports its heavy dependencies (torch,
Lightning, transformers) inside `main`, after its arguments are parsed, so that `tonics --help`
and `tonics TOOL --help` answer at once. The Lightning subcommands (fit, validate, test, predict)
go to `tonics.commands.lightning`. The help text is generated from `COMMANDS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One `tonics` subcommand: its name, the module that runs it, and one line of help."""

    name: str
    module: str
    summary: str
    lightning: bool = False  # a LightningCLI subcommand (its module gets the subcommand too)


COMMANDS = (
    Command(
        "fit", "lightning", "train (LightningCLI): tonics fit --config configs/demo.yaml", True
    ),
    Command("validate", "lightning", "evaluate a checkpoint on the validation split", True),
    Command("test", "lightning", "evaluate a checkpoint on the test split, with a report", True),
    Command("predict", "lightning", "embeddings of the test split (LightningCLI)", True),
    Command("ontology", "ontology", "build or inspect the WordNet object ontology of a dataset"),
    Command("export", "export", "write a trained checkpoint as a Hugging Face model directory"),
    Command(
        "retrieval", "retrieval", "retrieval figures of an exported or any local CLIP-like model"
    ),
    Command(
        "zeroshot", "zeroshot", "zero-shot top-1/top-5 accuracy on an image folder or HF dataset"
    ),
    Command("demo", "demo", "build the offline demo dataset (--stats: its data card)"),
    Command("index", "index", "index img2dataset shards (.tar or .parquet) for random access"),
    Command("report", "report", "curriculum-stage figures (PNG) of a finished run"),
    Command("compare", "compare", "recipes over paired seeds: means and paired 95% intervals"),
    Command("caption", "caption", "captions of pictures by a model trained with a captioning head"),
    Command(
        "search", "search", "search a folder of images by words or by a picture (index, query)"
    ),
    Command("upgrade-config", "upgrade_config", "rewrite a config's flat keys into their groups"),
)
BY_NAME = {command.name: command for command in COMMANDS}


def summary(name: str) -> str:
    """The one-line help of command `name` (argparse descriptions use it too)."""
    return BY_NAME[name].summary


def help_text() -> str:
    """`tonics --help`: every command, one line each."""
    lines = ["usage: tonics COMMAND [options]   (tonics COMMAND --help for its options)", ""]
    lines += [f"  {c.name:<10} {c.summary}" for c in COMMANDS]
    lines += [
        "",
        "Config and data errors print one line (exit 2); TONICS_DEBUG=1 shows the traceback.",
    ]
    return "\n".join(lines)


def run(name: str, argv: list[str] | None) -> int:
    """Run command `name` with its arguments (`argv` None: a Lightning command reads sys.argv)."""
    command = BY_NAME[name]
    module = importlib.import_module(f"tonics.commands.{command.module}")
    if command.lightning:
        return module.main(name, argv)
    return module.main(argv or [])
