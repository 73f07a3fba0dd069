"""`tonics demo [--stats]`: build the offline demo dataset, or print its data card."""

from __future__ import annotations

import json

from tonics.commands.parsing import CommandParser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("demo")
    parser.add_argument("--root", help="output directory (default: the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stats", action="store_true", help="print the data card (sources, splits, captions)"
    )
    parser.add_argument("--json", action="store_true", help="with --stats: the card as JSON")
    args = parser.parse_args(argv)
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
