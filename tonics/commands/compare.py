"""`tonics compare A.yaml B.yaml --seeds 0 1 2 3 4 --out DIR`: recipes over paired seeds.

Each (arm, seed) is an ordinary `tonics fit` run under `DIR/<arm>-seed<s>/`; finished runs are
reused, so an interrupted comparison resumes. See `tonics.train.compare` for what is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tonics.commands.parsing import CommandParser


def _parser() -> CommandParser:
    """The command's arguments."""
    parser = CommandParser("compare")
    parser.add_argument(
        "configs", nargs="+", help="two or more `tonics fit` YAML files; the first is the baseline"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="compare test figures (after fit) or the last validation's (no test pass)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("last", "best"),
        default="last",
        help="compare the last weights (equal steps, the default) or the best checkpoint",
    )
    parser.add_argument(
        "--held-out",
        metavar="SPLIT",
        nargs="+",
        default=[],
        help="also measure each run's last weights on each SPLIT, held out of training (the "
        "demo's 'transfer'), compared as `SPLIT_*` figures (kept in each run directory)",
    )
    parser.add_argument(
        "--fit-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="extra `tonics fit` arguments for every run (put last)",
    )
    return parser


def main(argv: list[str]) -> int:
    """`tonics compare CONFIG CONFIG [...] --seeds ... --out DIR`."""
    parser = _parser()
    args = parser.parse_args(argv)
    from tonics.analysis.results import markdown
    from tonics.commands.held_out import held_out
    from tonics.train.compare import compare

    result = compare(
        args.configs,
        args.seeds,
        Path(args.out),
        which=args.checkpoint,
        extra=args.fit_args,
        split=args.split,
        also=held_out(*args.held_out) if args.held_out else None,
    )
    print(markdown(result))
    print(f"\nWritten: {Path(args.out) / 'comparison.md'}, comparison.json, validation_curves.png")
    return 0
