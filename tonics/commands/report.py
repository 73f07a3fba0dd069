"""`tonics report RUN_DIR`: curriculum-stage figures of a finished run."""

from __future__ import annotations

from tonics.commands.parsing import CommandParser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("report")
    parser.add_argument("run_dir")
    parser.add_argument("--out", help="write the PNGs here (default: the run directory)")
    args = parser.parse_args(argv)
    from tonics.analysis import load_run, make_all_figures

    for path in make_all_figures(load_run(args.run_dir), args.out):
        print(path)
    return 0
