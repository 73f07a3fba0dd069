"""Read a model directory as data, never as code.

A directory handed to tonics (`--model DIR`, `tonics.load(DIR)`, an encoder path) may come from
anywhere. It is read only through its JSON files and safetensors weights: transformers is always
told `trust_remote_code=False`; a config that names code of its own (`auto_map`) is refused before
transformers sees it (its custom-code prompt would otherwise appear, and answering yes runs the
directory's Python); pickled weights (`pytorch_model.bin`, ...) are refused by name unless the
caller opts in. Image processors load with PIL (no torchvision here, and no deprecation notice).
"""

from __future__ import annotations

import json
from pathlib import Path

from tonics.errors import InputError

SAFE = {"trust_remote_code": False}
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "model.ckpt")
SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


def pil_processor_options() -> dict:
    """`from_pretrained` options for a slow (PIL) image processor in any transformers version."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"backend": "pil"} if major >= 5 else {"use_fast": False}


def check_model_directory(directory: str | Path, *, allow_pickle: bool = False) -> dict:
    """The directory's `config.json` (as data) after the checks of the module docstring; an
    `InputError` naming the file otherwise. Returns the parsed config."""
    directory = Path(directory)
    config_file = directory / "config.json"
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory; give a model directory (tonics export)")
    if not config_file.is_file():
        raise InputError(f"{directory}: no config.json; give a model directory (tonics export)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{config_file}: not readable JSON ({err})") from None
    if not isinstance(config, dict):
        raise InputError(f"{config_file}: expected a JSON object")
    if "auto_map" in config:
        raise InputError(
            f"{config_file}: names custom code (auto_map); tonics never runs code from a model "
            "directory: remove auto_map or load a standard architecture"
        )
    has_safetensors = any((directory / name).is_file() for name in SAFETENSORS_WEIGHTS)
    pickled = [name for name in PICKLED_WEIGHTS if (directory / name).is_file()]
    if pickled and not has_safetensors and not allow_pickle:
        raise InputError(
            f"{directory / pickled[0]}: pickled weights (loading them could run code); convert "
            "them to model.safetensors, or pass --allow-pickle-weights if you trust the file"
        )
    return config
