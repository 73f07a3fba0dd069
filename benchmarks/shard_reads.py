"""Random-access image reads from webdataset shards: through the shard index (one seek + read),
against the same bytes as plain files and against a tar member lookup by name (what the reader did
before the index), plus index build and load times. All measured in one run on the same data.

    python benchmarks/shard_reads.py [--pairs 20000] [--per-shard 1000]

Writes synthetic shards (small JPEGs + captions) to a temporary directory, reads 2,000 random
pairs each way (a curriculum batch touches pairs scattered over many shards), and prints one JSON
line. The issue's target: a read by index <= 2x a plain file read.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image

from tonics.data.readers import WebDatasetReader
from tonics.data.shard_index import build_index, load_index, save_index


def _add(tar, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_corpus(root: Path, pairs: int, per_shard: int) -> None:
    """Shards of `per_shard` pairs (a 32x32 JPEG and a caption each) and the same JPEGs as files."""
    (root / "files").mkdir(parents=True)
    rng = random.Random(0)
    for start in range(0, pairs, per_shard):
        with tarfile.open(root / f"shard-{start // per_shard:05d}.tar", "w") as tar:
            for n in range(start, min(pairs, start + per_shard)):
                buffer = io.BytesIO()
                colour = tuple(rng.randrange(256) for _ in range(3))
                Image.new("RGB", (32, 32), colour).save(buffer, "JPEG")
                data = buffer.getvalue()
                _add(tar, f"{n:08d}.jpg", data)
                _add(tar, f"{n:08d}.txt", f"a square of colour {colour}".encode())
                (root / "files" / f"{n:08d}.jpg").write_bytes(data)


def main() -> None:
    """Build a corpus, time the three ways of reading, print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--per-shard", type=int, default=1_000)
    parser.add_argument("--reads", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_corpus(root, args.pairs, args.per_shard)
        shards = sorted(root.glob("shard-*.tar"))
        started = time.perf_counter()
        index = build_index(shards)
        build_s = time.perf_counter() - started
        path = save_index(index, root / "index.parquet", "txt")
        started = time.perf_counter()
        load_index(path)
        load_s = time.perf_counter() - started
        records = WebDatasetReader(str(root / "shard-*.tar"), index=str(path)).read()
        chosen = random.Random(1).sample(records, min(args.reads, len(records)))

        def by_index() -> None:
            for r in chosen:
                with open(r.image.path, "rb") as handle:
                    handle.seek(r.image.offset)
                    handle.read(r.image.size)

        def plain_files() -> None:
            for r in chosen:
                (root / "files" / Path(r.image.tar_member).name).read_bytes()

        def tar_lookup() -> None:
            for r in chosen[: len(chosen) // 10]:  # slow: a tenth, scaled below
                with tarfile.open(r.image.path) as tar:
                    tar.extractfile(r.image.tar_member).read()

        timings = {}
        for name, fn, scale in (
            ("plain_file", plain_files, 1),
            ("index", by_index, 1),
            ("tar_lookup", tar_lookup, 10),
        ):
            fn()  # warm the page cache: both ways read from memory, as a second epoch would
            started = time.perf_counter()
            fn()
            timings[name] = (time.perf_counter() - started) * scale / len(chosen)
        print(
            json.dumps(
                {
                    "benchmark": "shard_reads",
                    "pairs": len(records),
                    "shards": len(shards),
                    "index_build_s": round(build_s, 3),
                    "index_load_s": round(load_s, 4),
                    "index_bytes_per_pair": round(path.stat().st_size / len(records), 1),
                    "read_us": {k: round(v * 1e6, 1) for k, v in timings.items()},
                    "index_over_plain_file": round(timings["index"] / timings["plain_file"], 2),
                    "tar_lookup_over_index": round(timings["tar_lookup"] / timings["index"], 1),
                }
            )
        )


if __name__ == "__main__":
    main()
