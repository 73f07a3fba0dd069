"""Start-up time of the `tonics` console script: `tonics --help` and `tonics TOOL --help` must
answer without importing torch, Lightning or transformers (target < 0.5 s on 2 CPU cores).

    python benchmarks/cli_startup.py [--repeats 7]

Prints one JSON line: median and max wall seconds per command, and `python -c pass` measured in
the same run as the floor (interpreter start-up alone).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _seconds(command: list[str], repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}


def main() -> None:
    """Time each command `--repeats` times and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    script = shutil.which("tonics") or str(Path(sys.executable).parent / "tonics")
    results = {"python -c pass": _seconds([sys.executable, "-c", "pass"], args.repeats)}
    for tool in ([], ["retrieval"], ["compare"], ["export"]):
        results[" ".join(["tonics", *tool, "--help"])] = _seconds(
            [script, *tool, "--help"], args.repeats
        )
    print(json.dumps({"benchmark": "cli_startup", "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
