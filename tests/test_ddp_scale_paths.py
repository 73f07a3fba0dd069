"""Two CPU processes under DDP through the paths a CC-scale run takes: webdataset shards read by a
written index, the feature and prefix caches built in parts by both ranks, and a resumed run that
continues exactly (same batches on each rank, caches mapped from disk)."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

from conftest import NOUNS, PLACES
from helpers import tiny_config
from PIL import Image

from tonics.cli import cli_main


def write_shards(directory: Path, n_shards: int = 3, per_shard: int = 16) -> str:
    """img2dataset-style shards (KEY.jpg + KEY.txt) of coloured squares named by real objects."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for s in range(n_shards):
        with tarfile.open(directory / f"{s:05d}.tar", "w") as tar:
            for i in range(per_shard):
                key, n = f"{s:05d}{i:04d}", s * per_shard + i
                jpeg = io.BytesIO()
                Image.new("RGB", (40, 30), tuple(rng.randrange(256) for _ in range(3))).save(jpeg, "JPEG")  # fmt: skip
                caption = f"a {NOUNS[n % len(NOUNS)]} {rng.choice(PLACES)}".encode()
                for name, data in ((f"{key}.jpg", jpeg.getvalue()), (f"{key}.txt", caption)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return str(directory / "*.tar")


def test_two_ranks_share_index_and_caches_and_resume_exactly(tmp_path):
    shards = write_shards(tmp_path / "data")
    index = tmp_path / "data" / "index.parquet"
    cli_main(["index", shards, "--out", str(index)])
    cache = tmp_path / "cache"
    env = {**os.environ, "TONICS_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    stages = [{"name": "frozen", "mix": {"random": 1.0}, "steps": 2},
              {"name": "open", "mix": {"random": 1.0}, "unfreeze_text": 1, "unfreeze_vision": 1}]  # fmt: skip
    reader = {"class_path": "tonics.data.readers.WebDatasetReader",
              "init_args": {"shards": shards, "index": str(index)}}  # fmt: skip

    def run(name, max_steps, ckpt=None):
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        record = {"class_path": "helpers.RecordBatches", "init_args": {"path": str(directory / "batches.jsonl")}}  # fmt: skip
        config = tiny_config(directory / "c.yaml", "unused", "unused", directory,
                             **{"data.reader": reader, "data.eval_split": "train", "data.stages": stages,
                                "data.feature_cache": True, "data.batch_size": 4, "trainer.max_steps": max_steps,
                                "trainer.limit_val_batches": 0, "trainer.callbacks": [record],
                                "trainer.strategy": "ddp", "trainer.devices": 2})  # fmt: skip
        command = [sys.executable, "-m", "tonics.cli", "fit", "--config", config, "--no_test",
                   "true", "--checkpoint.monitor", "null"]  # fmt: skip
        if ckpt:
            command += ["--ckpt_path", str(ckpt)]
        subprocess.run(command, check=True, env=env, cwd=tmp_path, timeout=300, capture_output=True)
        return sorted((directory / "tonics").glob("version_*"))[-1]

    full = run("full", 6)
    # both caches were written in parts by both ranks: rank 0 wrote the manifests
    manifests = sorted(cache.glob("features/*/manifest.json"))
    kinds = sorted(p.parent.name.split("-")[0] for p in manifests)
    assert kinds == ["features", "prefix"]  # pooled features derived from the prefix cache
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["written_by_ranks"] == 2 and len(manifest["parts"]) == 2
    part = run("part", 4)
    run("part", 6, ckpt=part / "checkpoints" / "last.ckpt")

    def batches(name):  # each rank's batches in step order
        rows = [json.loads(line) for line in (tmp_path / name / "batches.jsonl").read_text().splitlines()]  # fmt: skip
        return {rank: [r["indices"] for r in rows if r["rank"] == rank] for rank in (0, 1)}

    full_batches = batches("full")
    assert len(full_batches[0]) == len(full_batches[1]) == 6
    assert batches("part") == full_batches  # 4 steps, then 2 more after the resume
    assert not set(full_batches[0][0]) & set(full_batches[1][0])  # distinct pairs per rank
    summary = json.loads((full / "stage_summary.json").read_text())
    assert summary[0]["feature_paths"] == {"pooled": 2}
    assert summary[1]["feature_paths"] == {"prefix text=1 vision=1": 4}
