"""Atomic checkpoints: kills during a write never damage the previous file, on the same filesystem
or with TMPDIR elsewhere; a damaged checkpoint is named with the newest loadable one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tonics.train.checkpointing import AtomicCheckpointIO, DamagedCheckpointError

WRITER = """
import sys, torch
from tonics.atomic import atomic_torch_save  # what AtomicCheckpointIO.save_checkpoint calls
step = 0
print("ready", flush=True)
while True:
    step += 1
    atomic_torch_save({"step": step, "w": torch.full((4_000_000,), float(step))}, sys.argv[1])
"""


def _good(path) -> bool:
    state = torch.load(path, weights_only=True)
    return float(state["w"][0]) == state["step"] and state["w"].numel() == 4_000_000


@pytest.mark.slow
@pytest.mark.parametrize("tmpdir_elsewhere", [False, True], ids=["same-fs", "tmpdir-elsewhere"])
def test_ten_kills_during_writes_leave_a_loadable_checkpoint(tmp_path, tmpdir_elsewhere):
    target = tmp_path / "ckpt" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 0, "w": torch.zeros(4_000_000)}, target)
    env = dict(os.environ)
    if tmpdir_elsewhere:
        env["TMPDIR"] = "/dev/shm" if os.path.isdir("/dev/shm") else str(tmp_path / "other")
    rng = random.Random(0)
    steps = []
    for _ in range(10):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], env=env, stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))  # somewhere inside one of the writes
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert _good(target)
        steps.append(torch.load(target, weights_only=True)["step"])
    assert any(s > 0 for s in steps)  # writes did complete between kills
    leftovers = [p for p in target.parent.iterdir() if p.name != "last.ckpt"]
    assert all(p.name.endswith(".partial") for p in leftovers)  # never a half-written .ckpt


def test_damaged_checkpoint_names_itself_and_the_newest_loadable_one(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, tmp_path / "epoch=0-step=1.ckpt")
    (tmp_path / "last.ckpt").write_bytes(b"")  # a zero-byte file, as a non-atomic kill leaves
    with pytest.raises(DamagedCheckpointError) as err:
        io.load_checkpoint(tmp_path / "last.ckpt")
    message = str(err.value)
    assert "last.ckpt is damaged" in message and "epoch=0-step=1.ckpt" in message
    assert "\n" not in message


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_checkpoint_never_runs(tiny_dataset, tmp_path, capsys):
    from helpers import tiny_config

    from tonics.cli import cli_main

    marker = tmp_path / "pwned"
    planted = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "evil": _Payload(str(marker))}, planted)
    split_file, root = tiny_dataset
    config = tiny_config(tmp_path / "c.yaml", split_file, root, tmp_path)
    for command in ("fit", "test"):
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, "--config", config, "--ckpt_path", str(planted)])
        assert exit_info.value.code == 2
        assert "refused" in capsys.readouterr().err
    assert not marker.exists()
