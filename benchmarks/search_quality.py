"""Search quality on the demo: a model trained by `tonics fit` (seed 0) and exported, the demo's
test pictures indexed by `tonics search index`, and each picture's first caption sent as a text
query: how often the picture itself comes back in the top k, against chance (k / pictures).

    python benchmarks/search_quality.py [--config configs/demo.yaml] [--out runs/search_quality]
        [--model EXPORTED_DIR] [--demo-root DIR] [--k 10] [--pictures N] [--fit-args ...]

`--config` takes comma-joined overlays
(`configs/ablations/base.yaml,configs/ablations/frozen_random.yaml`: heads on frozen towers,
minutes on a CPU); `--model` measures an exported model instead of training one; a finished run
under `--out` is reused; `--pictures N` keeps the first N test pictures. Writes
`benchmarks/results/search_demo_quality.json` (with the command and commit) and prints one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import add_fit_args, results_dir, written_by

from tonics.commands.noise import quiet_known_noise
from tonics.train.compare import fit_once

REPO = Path(__file__).resolve().parent.parent


def trained_model(config: str, out: Path, fit_args: list[str]) -> Path:
    """Train `config` with seed 0 (reused when finished) and export its last weights."""
    from tonics.cli import cli_main

    model = out / "model"
    if not (model / "config.json").is_file():
        run = fit_once(config, 0, out / "runs", extra=fit_args, split="val")
        checkpoint = max(run.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
        shutil.rmtree(model, ignore_errors=True)
        cli_main(["export", str(checkpoint), str(model)])
    return model


def test_pictures(demo_root: str | None, folder: Path, limit: int | None) -> dict[str, str]:
    """Copy the demo's test pictures (the first `limit`) into `folder` under numbered names (two
    sources may share a file name), as a user's photo folder; their first captions by name."""
    from tonics.data.readers import DemoReader

    folder.mkdir(parents=True, exist_ok=True)
    captions: dict[str, str] = {}
    copied: set[str] = set()
    for record in DemoReader(demo_root).read():
        if limit is not None and len(captions) >= limit:
            break
        if record.split == "test" and record.image_id not in copied:
            copied.add(record.image_id)
            name = f"{len(captions):04d}{Path(record.image.path).suffix}"  # sources share names
            shutil.copyfile(record.image.path, folder / name)
            captions[name] = record.caption
    return captions


def main() -> None:
    """Train or take the model, index the test pictures, query every caption, write the file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--out", type=Path, default=Path("runs/search_quality"))
    parser.add_argument("--model", type=Path, help="an exported model (no training)")
    parser.add_argument("--demo-root", help="a built demo (default: the tonics cache's)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--pictures", type=int, help="the first N test pictures (default: all)")
    add_fit_args(parser)
    args = parser.parse_args()
    quiet_known_noise()
    import tonics.search as search
    from tonics.cli import cli_main

    model = args.model or trained_model(args.config, args.out, args.fit_args)
    captions = test_pictures(args.demo_root, args.out / "pictures", args.pictures)
    index_dir = args.out / "index"
    shutil.rmtree(index_dir, ignore_errors=True)
    images = ["--images", str(args.out / "pictures"), "--out", str(index_dir)]
    cli_main(["search", "index", "--model", str(model), *images])
    index = search.open(index_dir)
    found = [
        name in {hit.path for hit in index.text(caption, k=args.k)}
        for name, caption in captions.items()
    ]
    result = {
        "benchmark": "search_quality",
        "what": f"the demo's {len(captions)} test pictures indexed with "
        + (f"the exported model {args.model}" if args.model else f"{args.config}, seed 0")
        + f"; each picture's first caption as a text query; own picture in the top {args.k}",
        "written_by": written_by(),
        "queries": len(captions),
        f"own_image_in_top{args.k}": round(sum(found) / max(len(found), 1), 3),
        "chance": round(args.k / max(len(captions), 1), 3),
        "example_query": next(iter(captions.values()), ""),
    }
    (results_dir() / "search_demo_quality.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
