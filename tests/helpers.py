"""Test helpers importable from configs (tests/ is on sys.path under pytest)."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import yaml


class RecordBatches(pl.Callback):
    """Appends each trained batch's dataset indices to a JSON-lines file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        record = batch["indices"].tolist()
        if trainer.world_size > 1:
            record = {"rank": trainer.global_rank, "step": batch_idx, "indices": record}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


class RecordEvalBatches(pl.Callback):
    """Appends each validation batch's rank and dataset indices to a JSON-lines file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args) -> None:
        record = {"rank": trainer.global_rank, "indices": batch["indices"].tolist()}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def tiny_config(path, split_file, image_root, run_dir, **overrides) -> str:
    """A `tonics fit` YAML for the tiny dataset with tiny random encoders."""
    config = {
        "seed_everything": 0,
        "model": {
            "spec": {"text_encoder": "tiny:bert", "vision_encoder": "tiny:vit", "embed_dim": 16},
            "optimizer": {"lr": 0.01},
        },
        "data": {
            "reader": {
                "class_path": "tonics.data.readers.KarpathyReader",
                "init_args": {"split_file": split_file, "image_root": image_root},
            },
            "loader": {"batch_size": 8, "eval_batch_size": 16, "num_workers": 0},
            "ontology_cache": str(run_dir / "ontology"),
            "stages": [
                {"name": "diverse", "mix": {"diverse": 1.0}, "steps": 2},
                {
                    "name": "coarse",
                    "mix": {"ontology": 0.7, "random": 0.3},
                    "nodes": {"granularity": "depth", "min_depth": 3, "max_depth": 8},
                    "steps": 2,
                },
                {
                    "name": "fine",
                    "mix": {"ontology": 1.0},
                    "nodes": {"granularity": "fine"},
                    "opening": {"vision": 1},
                },
            ],
        },
        "trainer": {
            "max_steps": 6,
            "val_check_interval": 3,
            "check_val_every_n_epoch": None,
            "default_root_dir": str(run_dir),
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": str(run_dir), "name": "tonics"},
                }
            ],
            "accelerator": "cpu",
            "devices": 1,
        },
    }
    for dotted, value in overrides.items():
        node = config
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path.write_text(yaml.safe_dump(config))
    return str(path)


def drawn_pair_ids_digest(records, cache_dir, batch_size: int, seed: int = 0) -> str:
    """A SHA-256 of the pair ids a seeded curriculum sampler draws over `records` (the first 24
    batches of epoch 0, six batch kinds four steps each, then 6 of epoch 1): a fingerprint that
    changes if any stored form of the records, the ontology or the codes changes what is drawn."""
    import hashlib

    import numpy as np
    from tonics.ontology.index import ontology_for_records

    from tonics.data.records import group_codes
    from tonics.sampling import Curriculum, Stage
    from tonics.sampling.sampler import CurriculumBatchSampler

    curriculum = Curriculum(
        [
            Stage(name="random", mix={"random": 1.0}, steps=4),
            Stage(name="diverse", mix={"diverse": 1.0}, steps=4),
            Stage(name="fine", mix={"ontology": 1.0}, steps=4, nodes={"granularity": "fine"}),
            Stage(
                name="depth",
                mix={"ontology": 1.0},
                steps=4,
                nodes={"granularity": "depth", "min_depth": 4, "max_depth": 7},
            ),
            Stage(
                name="objects",
                mix={"ontology": 1.0},
                steps=4,
                nodes={"granularity": "fine", "object_nodes_only": True},
            ),
            Stage(
                name="siblings", mix={"ontology": 1.0}, nodes={"granularity": "fine", "siblings": 4}
            ),
        ]
    )
    ontology = ontology_for_records(records, cache=cache_dir)
    images, captions = (np.asarray(codes) for codes in group_codes(records))
    sampler = CurriculumBatchSampler(
        ontology,
        curriculum,
        batch_size=batch_size,
        seed=seed,
        pair_images=images,
        pair_captions=captions,
    )
    digest = hashlib.sha256()
    for epoch, count in ((0, 24), (1, 6)):
        sampler.set_epoch(epoch)
        for _, batch in zip(range(count), sampler):
            digest.update("\n".join(records[i].pair_id for i in batch).encode() + b"\x1e")
    return digest.hexdigest()
