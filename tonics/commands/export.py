"""`tonics export CKPT OUT`: a trained checkpoint as a Hugging Face model directory."""

from __future__ import annotations

from tonics.commands.parsing import CommandParser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("export")
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    from tonics.export import export_checkpoint

    print(f"exported to {export_checkpoint(args.checkpoint, args.out)}")
    return 0
