"""`tonics retrieval --model DIR --demo`: image<->text retrieval figures of a model on a dataset."""

from __future__ import annotations

import json
from pathlib import Path

from tonics.commands.datasets import add_reader_options, reader_from_args
from tonics.commands.parsing import CommandParser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("retrieval")
    parser.add_argument("--model", help="directory written by `tonics export`")
    parser.add_argument(
        "--text-encoder", default="packaged:minilm", help="untrained baseline (no --model)"
    )
    parser.add_argument(
        "--vision-encoder", default="packaged:mobilenet_v2", help="untrained baseline (no --model)"
    )
    parser.add_argument(
        "--split", help="split to evaluate (default: 'test', or the data's only split)"
    )
    parser.add_argument(
        "--demo-transfer",
        action="store_true",
        help="the demo's held-out rendering style (OpenMoji), zero-shot: --demo --split transfer",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", help="write the JSON report here")
    add_reader_options(parser)
    parser.add_argument(
        "--allow-pickle-weights",
        action="store_true",
        help="load pickled weights (pytorch_model.bin): only for files you trust",
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1; got {args.batch_size}")
    from tonics.eval.protocol import evaluate_reader
    from tonics.model.directories import check_model_directory

    if args.model:  # before any data is read: a bad --model is one line, at once
        check_model_directory(args.model, allow_pickle=args.allow_pickle_weights)
    if args.demo_transfer:
        args.demo, args.split = True, "transfer"
    report = evaluate_reader(
        reader_from_args(args),
        split=args.split,
        model_dir=args.model,
        allow_pickle=args.allow_pickle_weights,
        text_encoder=args.text_encoder,
        vision_encoder=args.vision_encoder,
        batch_size=args.batch_size,
    )
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0
