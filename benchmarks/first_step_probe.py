"""A Lightning callback for `benchmarks/fit_startup.py`: at the end of the first optimiser step,
rank 0 writes the wall-clock time and the memory of every process of the run (itself, the other
ranks it launched, every DataLoader worker) to a JSON file, which the benchmark waits for.

    tonics fit ... --trainer.callbacks+=first_step_probe.FirstStepProbe
        --trainer.callbacks.out=/tmp/probe.json      (benchmarks/ on PYTHONPATH)

Memory per process from `/proc/PID/smaps_rollup`: PSS (private pages plus an equal share of each
shared page, so the PSS of all processes sums to the memory they use together), USS (private
pages only) and RSS. A process's role: a rank (the launching process, or a child whose environment
sets LOCAL_RANK when the launcher's does not), or a worker of the rank it descends from.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found.extend(int(c) for c in text.split())
    return found


def _memory_kb(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0])
    return {
        "pss_kb": fields["Pss"],
        "uss_kb": fields["Private_Clean"] + fields["Private_Dirty"],
        "rss_kb": fields["Rss"],
    }


def _has_local_rank(pid: int) -> bool:
    try:
        return b"LOCAL_RANK=" in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _is_rank(child: int, parent: int) -> bool:
    """A rank the parent launched: started with LOCAL_RANK in its environment when the parent was
    not (a forked DataLoader worker keeps its parent's start-up environment)."""
    return _has_local_rank(child) and not _has_local_rank(parent)


def process_tree(root: int) -> list[dict]:
    """Every live process under `root` (itself included) with its role and memory."""
    rows, stack = [], [(root, "rank", root)]
    while stack:
        pid, role, rank = stack.pop()
        try:
            rows.append({"pid": pid, "role": role, "rank_pid": rank, **_memory_kb(pid)})
            children = _children(pid)
        except (OSError, KeyError):
            continue  # ended while we looked
        for child in children:
            if role == "rank" and _is_rank(child, pid):
                stack.append((child, "rank", child))
            else:
                stack.append((child, "worker", rank))
    return rows


class FirstStepProbe(Callback):
    """Rank 0 notes when the run reaches each point on the way to its first step (the callbacks
    built, `setup` done (distributed start, data set up), training starting, the first batch in
    hand) and, at the end of the first training batch (after its optimiser step), writes
    {"first_step_at": unix time, "marks": {...}, "processes": [...]} to `out`."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.marks = {"built_at": time.time()}
        self.written = False

    def _mark(self, trainer, name: str) -> None:
        if trainer.global_rank == 0:
            self.marks.setdefault(name, time.time())

    def setup(self, trainer, pl_module, stage) -> None:
        """After the distributed start and the data module's setup."""
        self._mark(trainer, "setup_at")

    def on_train_start(self, trainer, pl_module) -> None:
        """The training loop begins (the model on its device, the loaders built)."""
        self._mark(trainer, "train_start_at")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """The first batch has come from the workers."""
        self._mark(trainer, "first_batch_at")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Write the probe once, from rank 0."""
        if self.written or trainer.global_rank != 0:
            return
        self.written = True
        at = time.time()
        record = {"first_step_at": at, "marks": self.marks, "processes": process_tree(os.getpid())}
        partial = Path(self.out).with_suffix(".partial")
        partial.write_text(json.dumps(record))
        partial.replace(self.out)
