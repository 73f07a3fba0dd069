"""`tonics export CKPT OUT`: a trained checkpoint as a Hugging Face model directory."""

from __future__ import annotations

from tonics.commands.parsing import CommandParser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("export")
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    from pathlib import Path

    from tonics.errors import InputError
    from tonics.export import export_checkpoint

    if not Path(args.checkpoint).is_file():
        raise InputError(
            f"{args.checkpoint}: no such checkpoint file; give a .ckpt a run wrote "
            "(runs/.../checkpoints/last.ckpt)"
        )

    print(f"exported to {export_checkpoint(args.checkpoint, args.out)}")
    return 0
