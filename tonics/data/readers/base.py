"""The reader interface: every reader fills the columns of a pair table (`PairColumns`) once,
kept in the tonics cache under a key of the reader's settings and its files' sizes and mtimes, and
returns it memory-mapped (`PairTable`); plus the error and skip bookkeeping."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

from tonics.data.pair_columns import TABLE_VERSION, PairColumns, stat_of
from tonics.data.pair_table import PairTable
from tonics.errors import InputError

log = logging.getLogger(__name__)


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
    """Base class: `read()` returns the pairs (every split the data holds) as a memory-mapped pair
    table; `skipped` counts what was dropped and why. A reader names the files it reads
    (`sources`) and fills the table's columns from them (`fill`)."""

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()
        self.skip_examples: list[str] = []  # where, for the first few skips

    def prepare(self) -> None:
        """Make the files `sources` names, where the reader builds its data (the demo)."""

    def sources(self) -> list[Path]:
        """The files the table is made from: a change to any of them writes it again."""
        raise NotImplementedError

    def fill(self, columns: PairColumns) -> None:
        """Add every usable pair to `columns`, counting what is skipped."""
        raise NotImplementedError

    def read(self) -> PairTable:
        """The pair table: the one kept in the cache when its sources have not changed, else
        written from them first."""
        from tonics.paths import cache_dir

        self.prepare()
        source, current = self._table_source()
        key = hashlib.blake2b(json.dumps(source, sort_keys=True).encode(), digest_size=10)
        path = cache_dir() / "pair-tables" / f"{type(self).__name__}-{key.hexdigest()}.arrow"
        if current and path.is_file():
            try:
                table = PairTable(path)
                if table.meta.get("source") == source:
                    self.restore_skips(table.skipped)
                    return table
            except InputError as err:
                log.warning("%s: writing it again", err)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = PairColumns(path)
        self.fill(columns)
        skipped = {"counts": dict(self.skipped), "examples": self.skip_examples}
        columns.write(skipped=skipped, source=source)
        return PairTable(path)

    def _table_source(self) -> tuple[dict, bool]:
        """What the table is made from (the reader, its settings, its files' versions), and
        whether every file exists (a missing one is the reader's error to raise)."""
        settings = {k: v for k, v in vars(self).items() if k not in ("skipped", "skip_examples")}
        files = [Path(p) for p in self.sources()]
        source = {
            "reader": type(self).__qualname__,
            "settings": json.loads(json.dumps(settings, default=str, sort_keys=True)),
            "files": [stat_of(p) for p in files if p.is_file()],
            "table_version": TABLE_VERSION,
            "code": _reader_code_digest(type(self)),
        }
        return source, all(p.is_file() for p in files)

    def restore_skips(self, skipped: dict) -> None:
        """Count what the table's reading skipped (`PairTable.skipped`) as this reader's skips."""
        self.skipped.update(skipped["counts"])
        self.skip_examples += skipped["examples"][: 20 - len(self.skip_examples)]

    def skip(self, reason: str, where: str | None = None) -> None:
        """Count one dropped record (and remember where, for the first 20)."""
        self.skipped[reason] += 1
        if where is not None and len(self.skip_examples) < 20:
            self.skip_examples.append(f"{where}: {reason}")


def _reader_code_digest(reader: type) -> str:
    """A hash of the source of the modules that turn files into this reader's table (its classes'
    modules, this one, the column writer): a changed reader writes its tables again."""
    import inspect
    import sys

    from tonics.data import pair_columns

    modules = {sys.modules[c.__module__] for c in reader.__mro__ if c.__module__ in sys.modules}
    modules.add(pair_columns)
    digest = hashlib.blake2b(digest_size=8)
    for module in sorted(modules, key=lambda m: m.__name__):
        if module.__name__.startswith("tonics."):
            digest.update(Path(inspect.getfile(module)).read_bytes())
    return digest.hexdigest()
