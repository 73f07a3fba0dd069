"""Load WordNet 3.0 through nltk, offline: nltk's own corpus, Debian's `wordnet-base`
(/usr/share/wordnet), or any WordNet database directory the user names.

Debian's files need three fixes with nltk 3.10, done here without writing to /usr:
- nltk refuses paths outside `nltk.data.path` ("Security Violation"): the directory is registered;
- Debian ships no `lexnames` file: one is generated from the `lexnames.5WN` man page (or a built-in
  copy of WordNet 3.0's 45 lexicographer files) into a cache directory and served from there;
- nltk's `map_wn` looks for its own corpus to map versions: skipped (we only read WordNet 3.0).
"""

from __future__ import annotations

import gzip
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path

from tonics.paths import cache_dir

DEBIAN_WORDNET = Path("/usr/share/wordnet")
LEXNAMES_MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")
_REQUIRED = ("index.noun", "data.noun", "noun.exc")
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

INSTALL_HINT = (
    "install WordNet 3.0: `apt-get install wordnet-base` (Debian/Ubuntu), or on a connected "
    "machine "
    "`python -m nltk.downloader wordnet`, or set TONICS_WORDNET_DIR to a WordNet dict directory"
)


class WordNetNotFoundError(RuntimeError):
    """No usable WordNet database was found; the message says how to get one."""


def lexnames_text(man_page: Path = LEXNAMES_MAN_PAGE) -> str:
    """nltk's `lexnames` format ("NN<TAB>name<TAB>pos-number") from WordNet's lexnames(5WN) page."""
    with gzip.open(man_page, "rt", encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    rows = []
    for line in lines:
        match = re.match(r"^(\d{2})\t([a-z]+)\.([A-Za-z]+)\s", line)
        if match:
            number, pos, name = match.groups()
            rows.append(f"{number}\t{pos}.{name}\t{_POS_NUMBER[pos]}")
    if len(rows) != 45:
        raise WordNetNotFoundError(
            f"{man_page}: expected 45 lexicographer files, found {len(rows)}"
        )
    return "\n".join(rows) + "\n"


def _lexnames_file(directory: Path) -> Path:
    own = directory / "lexnames"
    if own.is_file():
        return own
    target = cache_dir() / "wordnet" / "lexnames"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(lexnames_text())
    return target


def _candidate_dirs(directory: str | Path | None) -> list[Path]:
    if directory is not None:
        return [Path(directory)]
    found = []
    if os.environ.get("TONICS_WORDNET_DIR"):
        found.append(Path(os.environ["TONICS_WORDNET_DIR"]))
    found.append(DEBIAN_WORDNET)
    return found


def _reader_class():
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class DirectoryWordNetReader(WordNetCorpusReader):
        """nltk's reader over a plain WordNet directory with an external `lexnames` file."""

        def __init__(self, root: str, lexnames: Path) -> None:
            self._lexnames_path = lexnames
            super().__init__(root, None)

        def open(self, fileid):
            if fileid == "lexnames":
                return open(self._lexnames_path, encoding="utf-8")
            return super().open(fileid)

        def map_wn(self, version="oewn"):
            return None  # version mapping needs nltk's own corpus; we read WordNet 3.0 as is

    return DirectoryWordNetReader


def _nltk_own_wordnet():
    """nltk's downloaded `wordnet` corpus, or None when it is not installed."""
    try:
        import nltk

        nltk.data.find("corpora/wordnet")
    except LookupError:
        return None
    from nltk.corpus import wordnet

    wordnet.ensure_loaded()
    return wordnet


@lru_cache(maxsize=4)
def load_wordnet(directory: str | None = None):
    """An nltk WordNetCorpusReader for the first usable WordNet directory (cached per process)."""
    import nltk

    if directory is None and not os.environ.get("TONICS_WORDNET_DIR"):
        own = _nltk_own_wordnet()
        if own is not None:
            return own
    for candidate in _candidate_dirs(directory):
        if not all((candidate / name).is_file() for name in _REQUIRED):
            continue
        if str(candidate) not in nltk.data.path:
            nltk.data.path.append(str(candidate))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multilingual functions are not available"
            return _reader_class()(str(candidate), _lexnames_file(candidate))
    tried = ", ".join(
        ["nltk's wordnet corpus"] * (directory is None)
        + [str(p) for p in _candidate_dirs(directory)]
    )
    raise WordNetNotFoundError(f"no WordNet database found (tried {tried}); {INSTALL_HINT}")
