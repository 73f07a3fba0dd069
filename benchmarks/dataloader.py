"""Data loading throughput: demo images decoded and preprocessed (MobileNetV2 processor) per
second, with 0, 1 and 2 workers, through the real PairDataset + Collator.

    python benchmarks/dataloader.py
"""

from __future__ import annotations

import json
import sys
import time

from torch.utils.data import DataLoader

from tonics.data.batches import Collator, PairDataset
from tonics.data.readers import DemoReader
from tonics.model import load_image_processor, load_tokenizer


def main() -> None:
    """Iterate 1,024 demo pairs with each worker count."""
    records = DemoReader().read()[:1024]
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
        f"| dataloader | {len(records)} demo images | {result['images_per_s_0_workers']} img/s in-process | "
        f"{result['images_per_s_1_workers']} img/s per worker |",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
