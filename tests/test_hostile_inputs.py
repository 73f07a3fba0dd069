"""Hostile and damaged inputs beyond images: model directories, readers, caches, shard indexes,
checkpoints and evaluation counts. Each case is refused or counted by name, never run or crashed."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_sharded_store import IMAGE_IDS, _build

from tonics.cache import store as sharded_store
from tonics.cache.base import hash_records
from tonics.cache.store import ShardedStore, load_or_build
from tonics.data.readers import HFDatasetReader, KarpathyReader
from tonics.errors import InputError
from tonics.eval.retrieval import collect_embeddings
from tonics.model.directories import check_model_directory
from tonics.model.factory import ModelSpec


def _digest(records) -> str:
    import hashlib

    digest = hashlib.sha256()
    hash_records(digest, records)
    return digest.hexdigest()


def test_cache_key_changes_with_the_image_root(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    here = KarpathyReader(split_file, root).read()
    elsewhere = KarpathyReader(split_file, str(tmp_path / "nonexistent")).read()
    assert [r.caption for r in here] == [r.caption for r in elsewhere]
    assert _digest(here) != _digest(elsewhere)


def _imagefolder(tmp_path: Path, lines: list[str]) -> Path:
    from PIL import Image

    root = tmp_path / "ds"
    root.mkdir()
    Image.new("RGB", (8, 8), "red").save(root / "a.png")
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "secret.png")
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_hf_reader_refuses_paths_outside_and_counts_rows_without_text(tmp_path):
    root = _imagefolder(
        tmp_path,
        [
            json.dumps({"file_name": "a.png", "text": "a red square"}),
            json.dumps({"file_name": "../secret.png", "text": "a blue square"}),
            json.dumps({"file_name": str(tmp_path / "secret.png"), "text": "absolute"}),
            json.dumps({"file_name": "a.png"}),
        ],
    )
    reader = HFDatasetReader(str(root))
    records = reader.read()
    assert [r.caption for r in records] == ["a red square"]
    assert all("secret" not in (r.image.path or "") for r in records)
    assert sum(reader.skipped.values()) == 3


def test_dropped_pairs_count_the_pairs_the_collator_removed():
    text = torch.eye(4)[:3]
    # 5 pairs in the batch: two whose image failed were removed by the collator (counted apart),
    # caption b's image row is missing (its first pair failed): 3 of 5 pairs dropped
    chunk = (
        text,
        torch.eye(4)[:2],
        ["a", "b", "c"],
        torch.tensor([True, False, True]),
        torch.tensor([0, 3, 4]),
        2,
    )
    split = collect_embeddings([chunk])
    assert split.dropped == 3
    assert split.kept == [0, 4]  # dataset indices, not batch positions


def _store(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(sharded_store, "PART_PAIRS", 8)
    load_or_build(tmp_path / "c", "k", IMAGE_IDS, _build())
    return tmp_path / "c"


def _tamper_manifest(directory: Path, **changes) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**manifest, **changes}))


@pytest.mark.parametrize(
    "changes",
    [
        {"num_pairs": 10**11},
        {"num_pairs": 3},
        {"parts": ["../../etc/passwd"]},
        {"parts": ["/etc/passwd"]},
        {"parts": "part-00000-of-00004.safetensors"},
    ],
)
def test_a_lying_manifest_is_refused_by_name_and_rebuilt(tmp_path, monkeypatch, changes):
    directory = _store(tmp_path, monkeypatch)
    _tamper_manifest(directory, **changes)
    with pytest.raises(ValueError, match="manifest"):
        ShardedStore.open(directory, "k", len(IMAGE_IDS))
    calls = []
    store = load_or_build(directory, "k", IMAGE_IDS, _build(calls))
    assert store.num_pairs == len(IMAGE_IDS) and not calls  # parts were whole: only re-read


def _rewrite_header(path: Path, edit) -> None:
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    edit(header)
    new = json.dumps(header, separators=(",", ":")).encode().ljust(length)
    assert len(new) == length
    path.write_bytes(raw[:8] + new + raw[8 + length :])


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h.__setitem__("__metadata__", ["not", "a", "map"]),
        lambda h: h["pairs"].__setitem__("data_offsets", [-16, h["pairs"]["data_offsets"][1] - 16]),
    ],
)
def test_hostile_safetensors_headers_are_refused_by_name(tmp_path, monkeypatch, edit):
    directory = _store(tmp_path, monkeypatch)
    part = sorted(directory.glob("part-*.safetensors"))[0]
    _rewrite_header(part, edit)
    with pytest.raises(ValueError, match=part.name):
        ShardedStore.open(directory, "k", len(IMAGE_IDS))


def test_a_fifo_part_is_refused_without_blocking(tmp_path, monkeypatch):
    directory = _store(tmp_path, monkeypatch)
    part = sorted(directory.glob("part-*.safetensors"))[0]
    part.unlink()
    os.mkfifo(part)
    with pytest.raises(ValueError, match="regular file"):
        ShardedStore.open(directory, "k", len(IMAGE_IDS))


def test_a_damaged_automatic_shard_index_is_rebuilt_and_a_named_one_refused(tmp_path):
    import glob

    from test_shard_index import _shards

    from tonics.data.current_index import default_index_path, index_for
    from tonics.data.readers.base import DataFormatError

    shards = [Path(p) for p in sorted(glob.glob(_shards(tmp_path / "shards")))]
    first = index_for(shards)
    automatic = default_index_path([s.resolve() for s in shards], "txt")
    automatic.write_bytes(automatic.read_bytes()[:100])  # truncated Parquet
    assert len(index_for(shards)) == len(first)
    named = tmp_path / "named.parquet"
    index_for(shards, path=named)
    named.write_bytes(named.read_bytes()[:100])
    with pytest.raises(DataFormatError, match="damaged shard index"):
        index_for(shards, path=named)
    index_for(shards, path=named.with_suffix(".two.parquet"))
    with pytest.raises(DataFormatError, match="not among the shards given"):
        index_for(shards[:-1], path=named.with_suffix(".two.parquet"))


def _dead_pid() -> int:
    command = [sys.executable, "-c", "import os; print(os.getpid())"]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    return int(finished.stdout)


def test_temp_files_of_killed_writes_are_removed_and_live_ones_kept(tmp_path):
    """A killed checkpoint write leaves `.<name>.<pid>.<random>.partial`; the next start (a
    resume's load, or any write in that directory) removes those whose process is gone, of any
    checkpoint name, and never one a live process is still writing."""
    from tonics.train.checkpointing import AtomicCheckpointIO

    dead = tmp_path / f".epoch=0-step=100.ckpt.{_dead_pid()}.ab12cd34.partial"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = tmp_path / f".last.ckpt.{sleeper.pid}.zz99yy88.partial"
    foreign = tmp_path / ".notes.txt.partial"  # not our name pattern
    try:
        for planted in (dead, live, foreign):
            planted.write_bytes(b"x" * 1000)
        io = AtomicCheckpointIO()
        io.save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
        assert not dead.exists() and live.exists() and foreign.exists()
        resumed = tmp_path / f".best.ckpt.{_dead_pid()}.qq11ww22.partial"
        resumed.write_bytes(b"x")
        io.load_checkpoint(tmp_path / "last.ckpt")  # a resume cleans up before it trains
        assert not resumed.exists() and live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_fifo_checkpoint_is_refused_without_being_opened(tmp_path):
    from tonics.train.checkpointing import AtomicCheckpointIO, DamagedCheckpointError

    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, tmp_path / "epoch=0-step=1.ckpt")
    os.mkfifo(tmp_path / "zzz.ckpt")  # the newest "checkpoint" beside a damaged one
    (tmp_path / "last.ckpt").write_bytes(b"")
    with pytest.raises(DamagedCheckpointError) as err:  # would hang opening the FIFO
        io.load_checkpoint(tmp_path / "last.ckpt")
    assert "--ckpt_path " + str(tmp_path / "epoch=0-step=1.ckpt") in str(err.value)
    with pytest.raises(DamagedCheckpointError, match="zzz.ckpt is not a regular file"):
        io.load_checkpoint(tmp_path / "zzz.ckpt")


def _model_dir(tmp_path: Path, config: dict, files: dict[str, bytes]) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def _remote_code_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A model directory whose `auto_map` module creates a marker file when it is imported."""
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\n"
    directory = _model_dir(
        tmp_path,
        {
            "model_type": "evil",
            "auto_map": {
                "AutoConfig": "configuration_evil.EvilConfig",
                "AutoModel": "modeling_evil.EvilModel",
            },
        },
        {
            "configuration_evil.py": code.encode(),
            "modeling_evil.py": code.encode(),
            "model.safetensors": b"",
        },
    )
    return directory, marker


def test_the_remote_code_plant_runs_when_transformers_is_told_to_trust_it(tmp_path, monkeypatch):
    """The control: transformers with trust_remote_code=True imports the planted module (so a
    tonics entry point that did the same would create the marker)."""
    from transformers import AutoConfig

    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    directory, marker = _remote_code_dir(tmp_path)
    with contextlib.suppress(Exception):  # the plant defines no class: importing it is enough
        AutoConfig.from_pretrained(directory, trust_remote_code=True)
    assert marker.exists()


@pytest.mark.slow
def test_no_tonics_entry_point_runs_a_model_directorys_code(tmp_path, monkeypatch):
    """tonics.load, AutoModel through tonics' registration and every command taking --model
    refuse the directory (one line, exit 2) and leave the marker absent."""
    from transformers import AutoModel

    import tonics

    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    directory, marker = _remote_code_dir(tmp_path)
    with pytest.raises(InputError, match="auto_map"):
        check_model_directory(directory)
    with pytest.raises(InputError, match="auto_map"):
        tonics.load(directory)
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModel.from_pretrained(directory)
    picture = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(picture)
    commands = [
        ["retrieval", "--model", str(directory), "--csv", str(tmp_path / "x.csv")],
        ["caption", "--model", str(directory), str(picture)],
        ["zeroshot", "--model", str(directory), "--image-folder", str(tmp_path)],
        ["search", "index", "--model", str(directory), "--images", str(tmp_path), "--out",
         str(tmp_path / "ix")],
    ]  # fmt: skip
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")}
    env.pop("TONICS_DEBUG", None)
    for argv in commands:
        finished = subprocess.run(
            [sys.executable, "-m", "tonics.cli", *argv], capture_output=True, text=True, env=env
        )
        assert finished.returncode == 2, (argv, finished.stderr)
        assert finished.stderr.count("\n") == 1 and "auto_map" in finished.stderr, finished.stderr
    assert not marker.exists()


def test_pickled_weights_are_refused_unless_asked(tmp_path):
    directory = _model_dir(tmp_path, {"model_type": "clip"}, {"pytorch_model.bin": b"pickle"})
    with pytest.raises(InputError, match="pytorch_model.bin"):
        check_model_directory(directory)
    assert check_model_directory(directory, allow_pickle=True)["model_type"] == "clip"


def test_exported_model_card_has_no_placeholder_and_loading_prints_no_warning(tmp_path):
    from tonics.export import export_model
    from tonics.train.module import AlignmentModule

    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    out = export_model(module.model, tmp_path / "export", text_name="packaged:minilm",
                       vision_name="tiny:vit", text_pooling="mean", vision_pooling="pooled",
                       head="linear", run=None)  # fmt: skip
    card = (out / "README.md").read_text()
    assert "github.com/)" not in card and "(None" not in card and ": None" not in card
    assert "tiny:vit: unknown" in card
    # warnings are read where they are written: the stderr of a fresh process (transformers'
    # logger does not propagate to caplog); the plant shows that stderr does carry them
    plant = "import transformers; transformers.logging.get_logger('transformers').warning('x')"
    loading = f"from tonics.model.exported import load; load({str(out)!r}); print('loaded')"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    planted, loaded = (
        subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                       text=True, env=env, check=True)
        for code in (plant, loading)
    )  # fmt: skip
    assert planted.stderr.strip().endswith(" x") or planted.stderr.strip() == "x"
    assert loaded.stdout == "loaded\n" and loaded.stderr == "", loaded.stderr
