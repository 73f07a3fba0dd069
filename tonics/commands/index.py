"""`tonics index 'shards/*.tar'`: a random-access index of img2dataset shards."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tonics.commands.parsing import CommandParser
from tonics.errors import UsageError


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("index")
    parser.add_argument("shards", help="glob of .tar or .parquet shards, e.g. 'cc3m/*.tar'")
    parser.add_argument("--out", help="index file (default: kept in the tonics cache)")
    parser.add_argument("--caption-extension", default="txt")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="processes indexing shards in parallel (default: cores, at most 8)",
    )
    args = parser.parse_args(argv)
    from tonics.data.readers import WebDatasetReader
    from tonics.data.shard_index import build_index, save_index

    shards = WebDatasetReader(args.shards).shard_paths()
    if not shards:
        raise UsageError(f"tonics index: no shards match '{args.shards}'; check the glob")
    started = time.perf_counter()
    if args.out:
        index = build_index(
            [s.resolve() for s in shards], args.caption_extension, Path(args.out), args.workers
        )
        path = save_index(index, args.out, args.caption_extension)
    else:
        from tonics.data.shard_index import default_index_path, index_for

        index = index_for(shards, args.caption_extension)
        path = default_index_path([s.resolve() for s in shards], args.caption_extension)
    print(
        json.dumps(
            {
                "index": str(path),
                "shards": len(shards),
                "pairs": len(index),
                "skipped": len(index.skipped),
                "bytes": path.stat().st_size,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    )
    return 0
