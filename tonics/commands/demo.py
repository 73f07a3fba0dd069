"""`tonics demo [--scenes] [--stats]`: build a built-in offline dataset (the single-object demo,
or the scenes composed from its drawings), or print its data card."""

from __future__ import annotations

import json

from tonics.commands.parsing import CommandParser


def _scenes(args) -> int:
    from tonics.data.scenes import FULL_SIZE, format_scenes_card, scenes_meta

    sizes = {
        "train": args.train_images or FULL_SIZE["train"],
        "val": args.eval_images or FULL_SIZE["val"],
        "test": args.eval_images or FULL_SIZE["test"],
    }
    meta = scenes_meta(args.root, seed=args.seed, sizes=sizes, demo_root=args.demo_root)
    if args.stats:
        card = meta["card"]
        print(json.dumps(card, indent=2) if args.json else format_scenes_card(card))
    else:
        summary = {k: v for k, v in meta.items() if k not in ("card", "held_out_pairs")}
        print(json.dumps(summary))
    return 0


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("demo")
    parser.add_argument("--root", help="output directory (default: the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stats", action="store_true", help="print the data card (sources, splits, captions)"
    )
    parser.add_argument("--json", action="store_true", help="with --stats: the card as JSON")
    parser.add_argument(
        "--scenes",
        action="store_true",
        help="the scenes dataset: 2-4 demo drawings an image, template captions, COCO files",
    )
    parser.add_argument("--train-images", type=int, help="with --scenes: training images")
    parser.add_argument("--eval-images", type=int, help="with --scenes: val and test images each")
    parser.add_argument("--demo-root", help="with --scenes: a demo built elsewhere")
    args = parser.parse_args(argv)
    for name in ("train_images", "eval_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1; got {value}")
    if args.scenes:
        return _scenes(args)
    from tonics.data.demo import build_demo, format_card

    path = build_demo(args.root, seed=args.seed)
    meta = json.loads(path.read_text())["tonics_demo"]
    if args.stats:
        print(json.dumps(meta["card"], indent=2) if args.json else format_card(meta["card"]))
    else:
        print(
            json.dumps({"split_file": str(path), **{k: v for k, v in meta.items() if k != "card"}})
        )
    return 0
