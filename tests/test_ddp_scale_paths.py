"""Two "nodes" (one CPU process each, launched as a scheduler would: NODE_RANK, MASTER_ADDR...)
under DDP with `configs/multinode.yaml`'s layout, through the paths a CC-scale run takes:
webdataset shards read by a written index, the feature and prefix caches built in parts by both
ranks, and a resumed run that continues exactly (same batches on each rank, caches mapped from
disk). Nodes that do not share the cache directory stop with an error naming the missing part."""

from __future__ import annotations

import io
import json
import os
import random
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import NOUNS, PLACES
from helpers import tiny_config
from PIL import Image

from tonics.cli import cli_main

pytestmark = pytest.mark.slow  # builds the demo, the scenes or several processes


def write_shards(directory: Path, n_shards: int = 3, per_shard: int = 16) -> str:
    """img2dataset-style shards (KEY.jpg + KEY.txt) of coloured squares named by real objects."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for s in range(n_shards):
        with tarfile.open(directory / f"{s:05d}.tar", "w") as tar:
            for i in range(per_shard):
                key, n = f"{s:05d}{i:04d}", s * per_shard + i
                jpeg = io.BytesIO()
                Image.new("RGB", (40, 30), tuple(rng.randrange(256) for _ in range(3))).save(
                    jpeg, "JPEG"
                )
                caption = f"a {NOUNS[n % len(NOUNS)]} {rng.choice(PLACES)}".encode()
                for name, data in ((f"{key}.jpg", jpeg.getvalue()), (f"{key}.txt", caption)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return str(directory / "*.tar")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch_nodes(command, caches, cwd, timeout=300):
    """Start `command` once per node (node n with cache directory caches[n]); their exit codes."""
    port = _free_port()
    processes = []
    for node, cache in enumerate(caches):
        env = {
            **os.environ,
            "TONICS_CACHE": str(cache),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "NODE_RANK": str(node),
            "LOCAL_RANK": "0",
            "WORLD_SIZE": str(len(caches)),
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
            ),
        }
        log = open(Path(cwd) / f"node{node}.log", "w")  # noqa: SIM115 - closed with the process
        processes.append(
            (subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT), log)
        )
    codes = []
    for process, log in processes:
        codes.append(process.wait(timeout=timeout))
        log.close()
    return codes


STAGES = [
    {"name": "frozen", "mix": {"random": 1.0}, "steps": 2},
    {"name": "open", "mix": {"random": 1.0}, "opening": {"text": 1, "vision": 1}},
]


def _command(tmp_path, name, max_steps, ckpt=None):
    shards = str(tmp_path / "data" / "*.tar")
    reader = {
        "class_path": "tonics.data.readers.WebDatasetReader",
        "init_args": {"shards": shards, "index": str(tmp_path / "data" / "index.parquet")},
    }
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    record = {
        "class_path": "helpers.RecordBatches",
        "init_args": {"path": str(directory / "batches.jsonl")},
    }
    config = tiny_config(
        directory / "c.yaml",
        "unused",
        "unused",
        directory,
        **{
            "data.reader": reader,
            "data.evaluation.split": "train",
            "data.stages": STAGES,
            "data.cache.enabled": True,
            "data.loader.batch_size": 4,
            "trainer.max_steps": max_steps,
            "trainer.limit_val_batches": 0,
            "trainer.callbacks": [record],
            "trainer.strategy": "ddp",
            "trainer.num_nodes": 2,
            "trainer.devices": 1,
        },
    )
    command = [
        sys.executable,
        "-m",
        "tonics.cli",
        "fit",
        "--config",
        config,
        "--no_test",
        "true",
        "--checkpoint.monitor",
        "null",
    ]
    return command + (["--ckpt_path", str(ckpt)] if ckpt else []), directory


def test_two_nodes_share_index_and_caches_and_resume_exactly(tmp_path):
    write_shards(tmp_path / "data")
    cli_main(
        [
            "index",
            str(tmp_path / "data" / "*.tar"),
            "--out",
            str(tmp_path / "data" / "index.parquet"),
        ]
    )
    cache = tmp_path / "cache"

    def run(name, max_steps, ckpt=None):
        command, directory = _command(tmp_path, name, max_steps, ckpt)
        codes = _launch_nodes(command, [cache, cache], tmp_path)
        assert codes == [0, 0], (tmp_path / "node1.log").read_text()[-3000:]
        return sorted((directory / "tonics").glob("version_*"))[-1]

    full = run("full", 6)
    # both caches were written in parts by both ranks, and rank 0 wrote their manifests
    manifests = sorted(cache.glob("features/*/manifest.json"))
    kinds = sorted(p.parent.name.split("-")[0] for p in manifests)
    assert kinds == ["features", "prefix"]  # pooled features derived from the prefix cache
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["written_by_ranks"] == 2 and len(manifest["parts"]) == 2
    part = run("part", 4)
    run("part", 6, ckpt=part / "checkpoints" / "last.ckpt")

    def batches(name):  # each rank's batches in step order
        rows = [
            json.loads(line)
            for line in (tmp_path / name / "batches.jsonl").read_text().splitlines()
        ]
        return {rank: [r["indices"] for r in rows if r["rank"] == rank] for rank in (0, 1)}

    full_batches = batches("full")
    assert len(full_batches[0]) == len(full_batches[1]) == 6
    assert batches("part") == full_batches  # 4 steps, then 2 more after the resume
    assert not set(full_batches[0][0]) & set(full_batches[1][0])  # distinct pairs per rank
    summary = json.loads((full / "stage_summary.json").read_text())
    assert summary[0]["feature_paths"] == {"pooled": 2}
    assert summary[1]["feature_paths"] == {"prefix text=1 vision=1": 4}


def test_nodes_without_a_shared_cache_stop_naming_the_missing_part(tmp_path):
    write_shards(tmp_path / "data")
    cli_main(
        [
            "index",
            str(tmp_path / "data" / "*.tar"),
            "--out",
            str(tmp_path / "data" / "index.parquet"),
        ]
    )
    command, _ = _command(tmp_path, "run", 2)
    codes = _launch_nodes(command, [tmp_path / "cache0", tmp_path / "cache1"], tmp_path)
    assert codes[0] != 0 and codes[1] != 0
    log = (tmp_path / "node0.log").read_text()
    assert "part-00001-of-00002" in log and "TONICS_CACHE" in log
