"""`tonics index 'shards/*.tar'`: a random-access index of img2dataset shards, and the
memory-mapped pair table beside it that every rank opens at start-up."""

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
    parser.add_argument(
        "--split",
        default="train",
        help="the split name of these pairs in the pair table written beside the index "
        "(the reader's `split`; default train)",
    )
    args = parser.parse_args(argv)
    from tonics.data.current_index import current_index_path
    from tonics.data.readers import WebDatasetReader
    from tonics.data.readers.webdataset import pair_table_for
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
        path = current_index_path(shards, args.caption_extension)
    table = pair_table_for(path, args.split)  # what every rank maps at start-up
    print(
        json.dumps(
            {
                "index": str(path),
                "pair_table": str(table.path),
                "shards": len(shards),
                "pairs": len(table),
                "skipped": sum(table.skipped["counts"].values()),
                "bytes": path.stat().st_size,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    )
    return 0
