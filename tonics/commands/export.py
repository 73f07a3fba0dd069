"""`tonics export CKPT OUT`: a trained checkpoint as a Hugging Face model directory."""

from __future__ import annotations

import argparse

from tonics.commands import summary


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="tonics export", description=summary("export"))
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    from tonics.export import export_checkpoint

    print(f"exported to {export_checkpoint(args.checkpoint, args.out)}")
    return 0
