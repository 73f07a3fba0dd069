"""The argument parser of every tool: a bad argument is a `UsageError` (one line on stderr, exit
2, through `tonics.cli`), not argparse's usage block and exit."""

from __future__ import annotations

import argparse

from tonics.commands import summary
from tonics.errors import UsageError


class CommandParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` that raises `UsageError` instead of printing usage and exiting."""

    def __init__(self, name: str | None = None, **kwargs) -> None:
        """`name`: the tool (`tonics NAME`); without it (sub-parsers), argparse's own arguments."""
        if name is not None:
            kwargs = {"prog": f"tonics {name}", "description": summary(name), **kwargs}
        super().__init__(**kwargs)

    def error(self, message: str):
        """Raise the parse error as one line naming the tool (`tonics TOOL --help` for usage)."""
        raise UsageError(f"{self.prog}: {message} (`{self.prog} --help` for usage)")
