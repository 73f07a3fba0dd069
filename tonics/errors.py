"""Errors a user can act on. Each names what to change: a `ConfigError` starts with the YAML key as
the user writes it (`data.loader.batch_size`, `data.stages[2].opening.vision`), and the `tonics`
command prints it as one line with exit code 2 (a traceback only with TONICS_DEBUG=1)."""

from __future__ import annotations


class InputError(ValueError):
    """Data that cannot be used (files, images, formats); the message names the file and the fix."""


class UsageError(ValueError):
    """A command-line argument that cannot work; the message names the argument and the fix."""


class ConfigError(ValueError):
    """A setting that cannot work; the message starts with its YAML key and says what to do."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def require(condition: bool, key: str, message: str) -> None:
    """Raise ConfigError(key, message) unless `condition` holds."""
    if not condition:
        raise ConfigError(key, message)


def require_choice(value, choices, key: str) -> None:
    """`value` must be one of `choices`."""
    require(value in choices, key, f"must be one of {', '.join(map(str, choices))}; got {value!r}")


def require_number(value, key: str, *, low=None, high=None, integer=False, low_open=False) -> None:
    """`value` must be a number (an int if `integer`) within [low, high] (low exclusive if
    `low_open`)."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    require(ok_type and not isinstance(value, bool), key, f"must be {kind}; got {value!r}")
    if low is not None:
        bad = value <= low if low_open else value < low
        require(not bad, key, f"must be {'>' if low_open else '>='} {low}; got {value!r}")
    if high is not None:
        require(value <= high, key, f"must be <= {high}; got {value!r}")


EXTRAS = {  # optional import -> (the distribution that provides it, the tonics extra installing it)
    "faiss": ("faiss-cpu", "search"),
    "fastapi": ("fastapi", "search"),
    "uvicorn": ("uvicorn", "search"),
    "pycocoevalcap": ("pycocoevalcap", "captioning"),
    "resvg_py": ("resvg-py", "demo"),
    "imagehash": ("imagehash", "demo"),
}


def optional_import(module: str, needed_for: str):
    """Import a dependency a training-only install leaves out, or raise an InputError naming the
    extra that installs it (`pip install 'tonics[search]'`...) and what needed it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package, extra = EXTRAS[module.split(".")[0]]
        raise InputError(
            f"{needed_for} needs the optional package {package}, which is not installed; "
            f"install it with: pip install 'tonics[{extra}]'"
        ) from None
