"""Map a picklable function over tasks in worker processes, in order, with a progress bar: how the
built-in datasets draw their images (fork on Linux, spawn elsewhere; in-process for one worker)."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence

from tqdm.auto import tqdm


def parallel_map(
    function: Callable, tasks: Sequence, workers: int, description: str, chunksize: int = 16
) -> list:
    """`[function(t) for t in tasks]`, computed by `workers` processes, results in task order."""
    progress = dict(desc=description, unit="image", total=len(tasks), mininterval=2.0)
    if workers <= 1:
        return [function(t) for t in tqdm(tasks, **progress)]
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        return list(tqdm(pool.imap(function, tasks, chunksize=chunksize), **progress))
