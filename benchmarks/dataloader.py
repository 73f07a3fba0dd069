"""Data loading throughput: demo images decoded and preprocessed (MobileNetV2 processor) per
second, with 0, 1 and 2 workers, through the real PairDataset + Collator.

    python benchmarks/dataloader.py [--images 1024] [--demo-root DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from torch.utils.data import DataLoader

from tonics.data.batches import Collator, PairDataset
from tonics.data.readers import DemoReader
from tonics.model import load_image_processor, load_tokenizer


def main() -> None:
    """Iterate the first demo pairs with each worker count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--demo-root", help="a built demo (default: the tonics cache's)")
    args = parser.parse_args()
    records = DemoReader(args.demo_root).read()[: args.images]
    dataset = PairDataset(records, load_image_processor("packaged:mobilenet_v2"))
    collate = Collator(load_tokenizer("packaged:minilm"))
    result = {"benchmark": "dataloader", "images": len(records), "batch_size": 32}
    for workers in (0, 1, 2):
        loader = DataLoader(dataset, batch_size=32, collate_fn=collate, num_workers=workers)
        started = time.perf_counter()
        count = sum(len(batch["indices"]) for batch in loader)
        seconds = time.perf_counter() - started
        result[f"images_per_s_{workers}_workers"] = round(count / seconds, 1)
    result["images_per_s_per_worker"] = result["images_per_s_1_workers"]
    print(json.dumps(result))
    print(
        f"| dataloader | {len(records)} demo images | {result['images_per_s_0_workers']} img/s "
        "in-process | "
        f"{result['images_per_s_1_workers']} img/s per worker |",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
