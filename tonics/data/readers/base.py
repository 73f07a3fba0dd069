"""The reader interface and its error/skip bookkeeping."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tonics.data.records import PairRecord
from tonics.errors import InputError


class DataFormatError(InputError):
    """A dataset file that cannot be read; the message names the file, the field and the fix."""


def load_json(path: str | Path, required: tuple[str, ...]) -> dict:
    """Parse a JSON file and check its top-level fields, with errors that name both."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not valid UTF-8 JSON ({err})") from err
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object at the top level")
    for name in required:
        if name not in data:
            raise DataFormatError(
                f"{path}: missing the '{name}' field; is this the right file for this reader?"
            )
    return data


def clean_caption(text: object) -> str:
    """Caption text with whitespace collapsed; '' for None, non-strings and undecodable bytes."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return ""
    if not isinstance(text, str):
        return ""
    return " ".join(text.split())


class PairReader:
    """Base class: `read()` returns the pairs; `skipped` counts what was dropped and why."""

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()
        self.skip_examples: list[str] = []  # where, for the first few skips

    def read(self) -> list[PairRecord]:
        """All pairs of the dataset (every split it holds)."""
        raise NotImplementedError

    def skip(self, reason: str, where: str | None = None) -> None:
        """Count one dropped record (and remember where, for the first 20)."""
        self.skipped[reason] += 1
        if where is not None and len(self.skip_examples) < 20:
            self.skip_examples.append(f"{where}: {reason}")
