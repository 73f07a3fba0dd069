"""Config keys that moved into groups, and the one-line error that names each one's new place.

The model's and the data's keys are grouped (`model.spec.embed_dim`, `model.optimizer.lr`,
`data.loader.batch_size`, `data.stages[i].nodes.granularity`...). A config or a command-line
override that still writes an old flat key (`model.lr`, `data.batch_size`,
`data.stages[2].unfreeze_vision`) fails before parsing with a `ConfigError` naming the file,
the old key and where it lives now, instead of the parser's list of accepted options.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tonics.errors import ConfigError

MODEL_MOVED = {
    **{
        key: f"spec.{key}"
        for key in (
            "text_encoder",
            "vision_encoder",
            "text_pooling",
            "vision_pooling",
            "embed_dim",
            "head",
            "train_bn_stats",
            "bn_momentum",
        )
    },
    "caption_decoder": "spec.captioner",
    "lr": "optimizer.lr",
    "encoder_lr": "optimizer.encoder_lr",
    "weight_decay": "optimizer.weight_decay",
    "lr_schedule": "schedule.kind",
    "warmup_steps": "schedule.warmup_steps",
    "min_lr_ratio": "schedule.min_lr_ratio",
    "encoder_warmup_steps": "schedule.encoder_warmup_steps",
    "unfreeze_at_step": "opening.at_step",
    "unfreeze_top_k": "opening.top_k",
    "false_negatives": "loss.false_negatives",
    "local_loss": "loss.local",
    "caption_loss_weight": "loss.caption_weight",
}
DATA_MOVED = {
    "batch_size": "loader.batch_size",
    "eval_batch_size": "loader.eval_batch_size",
    "num_workers": "loader.num_workers",
    "persistent_workers": "loader.persistent_workers",
    "max_text_length": "loader.max_text_length",
    "feature_cache": "cache.enabled",
    "eval_feature_cache": "cache.evaluation",
    "prefix_cache_dtype": "cache.prefix_dtype",
    "feature_cache_dtype": "cache.feature_dtype",
    "eval_split": "evaluation.split",
    "transfer_split": "evaluation.transfer_split",
    "max_eval_pairs": "evaluation.max_pairs",
    "max_image_pixels": "images.max_pixels",
    "max_image_aspect": "images.max_aspect",
    "train_fraction": "subset.fraction",
    "train_fraction_seed": "subset.seed",
}
STAGE_MOVED = {
    **{
        key: f"nodes.{key}"
        for key in (
            "granularity",
            "min_depth",
            "max_depth",
            "alpha",
            "object_nodes_only",
            "min_distinct",
            "siblings",
        )
    },
    "mine_skip": "mining.skip",
    "mine_within": "mining.within",
    "mine_teacher": "mining.teacher",
    "mine_refresh": "mining.refresh",
    "unfreeze_text": "opening.text",
    "unfreeze_vision": "opening.vision",
}


def _new_place(table: dict, key: str, value) -> str | None:
    """Where flat key `key` of a block whose moves `table` lists lives now (None: not moved);
    the model's `loss` moved only when its value is a loss name (now `loss.kind`)."""
    if table is MODEL_MOVED and key == "loss" and isinstance(value, str):
        return "loss.kind"
    return table.get(key)


def moved_key(key: str, value=None) -> str | None:
    """The new place of an old flat key written as `key` (`model.lr`, `data.stages[2].mine_skip`),
    or None when `key` is current. `model.loss` moved only when its value is a loss name
    (`model.loss: siglip`, now `model.loss.kind`)."""
    section, _, rest = key.partition(".")
    if section == "model":
        new = _new_place(MODEL_MOVED, rest, value)
        return f"model.{new}" if new else None
    if section == "data":
        if rest.startswith("stages[") and "]." in rest:
            stage, field = rest.split("].", 1)
            return f"data.{stage}].{STAGE_MOVED[field]}" if field in STAGE_MOVED else None
        return f"data.{DATA_MOVED[rest]}" if rest in DATA_MOVED else None
    return None


def _written_keys(config: dict) -> list[tuple[str, object]]:
    """(key, value) for each key a config writes under `model:` and `data:` (one level, and
    each stage's keys), as the user would write them on the command line."""
    keys = []
    for section in ("model", "data"):
        block = config.get(section)
        if isinstance(block, dict) and "init_args" in block:
            block = block["init_args"]
        if not isinstance(block, dict):
            continue
        keys += [(f"{section}.{key}", value) for key, value in block.items()]
        if section == "data" and isinstance(block.get("stages"), list):
            for i, stage in enumerate(block["stages"]):
                if isinstance(stage, dict):
                    keys += [(f"data.stages[{i}].{key}", value) for key, value in stage.items()]
    return keys


def check_config(config: dict, source: str) -> None:
    """Raise a `ConfigError` for the first old flat key in `config` (read from `source`)."""
    for key, value in _written_keys(config):
        new = moved_key(key, value)
        if new is not None:
            raise ConfigError(
                key,
                f"moved to {new} (in {source}); write it there, or rewrite every flat key of "
                f"the file with `tonics upgrade-config {source}`",
            )


def check_arguments(args: list[str]) -> None:
    """Check every `--config FILE` and every `--model.KEY` / `--data.KEY` override of a
    LightningCLI command line for old flat keys, before the parser sees them."""
    for i, arg in enumerate(args):
        name, _, inline = arg.partition("=")
        if name in ("--config", "-c"):
            path = inline or (args[i + 1] if i + 1 < len(args) else "")
            _check_file(path)
        elif name.startswith(("--model.", "--data.")):
            key = name[2:]
            value = inline if inline else (args[i + 1] if i + 1 < len(args) else None)
            new = moved_key(key, value if key != "model.loss" else _loss_value(value))
            if new is not None:
                raise ConfigError(key, f"moved to {new} (on the command line); write --{new}")


def _loss_value(value):
    """A `--model.loss` value: a loss name (old) or a mapping of the group (new)."""
    return value if isinstance(value, str) and not value.lstrip().startswith("{") else None


def _check_file(path: str) -> None:
    """A config file's old flat keys (a file that cannot be read is left to the parser)."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return
    if isinstance(config, dict):
        check_config(config, path)


def _regrouped(block: dict, table: dict) -> dict:
    """`block`'s flat keys of `table` moved into their groups (current keys kept as they are)."""
    grouped: dict = {}
    for key, value in block.items():
        new = _new_place(table, key, value)
        if new is None:
            if isinstance(value, dict) and isinstance(grouped.get(key), dict):
                value = {**grouped[key], **value}
            grouped[key] = value
            continue
        group, field = new.split(".")
        grouped.setdefault(group, {})[field] = value
    return grouped


def grouped_config(config: dict) -> dict:
    """A saved run config (a run directory's `config.yaml`) with the flat keys of a run from
    before the grouping moved into their groups, so older runs are read like new ones."""
    config = dict(config)
    if isinstance(config.get("model"), dict):
        config["model"] = _regrouped(config["model"], MODEL_MOVED)
    if isinstance(config.get("data"), dict):
        data = _regrouped(config["data"], DATA_MOVED)
        if isinstance(data.get("stages"), list):
            data["stages"] = [
                _regrouped(stage, STAGE_MOVED) if isinstance(stage, dict) else stage
                for stage in data["stages"]
            ]
        config["data"] = data
    return config


def grouped_hparams(hparams: dict) -> dict:
    """A checkpoint's hyperparameters in the grouped form `AlignmentModule` takes: a checkpoint
    written before the grouping keeps the flat keys, each moved here to its group (its
    captioning head, as then, exists only with a captioning loss)."""
    if not any(_new_place(MODEL_MOVED, key, value) for key, value in hparams.items()):
        return dict(hparams)
    grouped = _regrouped(hparams, MODEL_MOVED)
    spec, loss = grouped.setdefault("spec", {}), grouped.get("loss", {})
    spec["captioner"] = (spec.get("captioner") or {}) if loss.get("caption_weight", 0) > 0 else None
    return grouped
