"""`tonics fit|validate|test|predict`: the LightningCLI subcommands (`tonics.train.cli`)."""

from __future__ import annotations


def main(subcommand: str, argv: list[str] | None) -> int:
    """Run a LightningCLI subcommand; `argv` None lets LightningCLI read `sys.argv` itself."""
    from tonics.train.cli import lightning_main

    lightning_main(None if argv is None else [subcommand, *argv])
    return 0
