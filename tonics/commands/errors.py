"""How a command's failure reaches the user: a configuration or data error is one line on stderr
with exit code 2 (`TONICS_DEBUG=1` for the traceback); anything else is a bug and keeps its
traceback."""

from __future__ import annotations

import pickle


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the config or the data is wrong", not "tonics has a bug"."""
    from jsonargparse import ArgumentError

    from tonics.errors import ConfigError, InputError, UsageError
    from tonics.model.encoders import ModelNotFoundError
    from tonics.train.checkpointing import DamagedCheckpointError

    return (
        ArgumentError,
        ConfigError,
        InputError,
        UsageError,
        OSError,  # a missing, unreadable or wrong file or directory: its message names it
        ModelNotFoundError,
        DamagedCheckpointError,
        pickle.UnpicklingError,
    )


def kind_of(err: BaseException) -> str:
    """'config' for a setting that is wrong, 'input' for data or files that are."""
    config = ("ArgumentError", "ConfigError", "CurriculumError")
    if type(err).__name__ == "UsageError":
        return "usage"
    return "config" if type(err).__name__ in config else "input"


def one_line(err: BaseException) -> str:
    """An error message folded onto one line (jsonargparse's span several)."""
    if isinstance(err, pickle.UnpicklingError):  # torch.load(weights_only=True) met a pickle
        lines = [line.strip() for line in str(err).splitlines() if "Unsupported global" in line]
        detail = lines[0][:160] if lines else ""
        return (
            "a checkpoint holds pickled objects beyond tensors and plain data; refused (loading "
            f"it could run code). {detail}"
        ).strip()
    text = " ".join(str(err).split())
    return text if len(text) <= 400 else text[:397] + "..."
