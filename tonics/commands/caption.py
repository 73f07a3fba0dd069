"""`tonics caption --model DIR IMAGE...`: captions of pictures by a model trained with a
captioning head (greedy, or beam search with `--beams`)."""

from __future__ import annotations

import json
import sys

from tonics.commands.parsing import CommandParser

MAX_BEAMS = 64  # a beam holds beams x vocabulary scores per step: 100000 beams exhaust memory
MAX_BATCH = 1024
MAX_LENGTH = 512


def _parser() -> CommandParser:
    """The command's arguments."""
    parser = CommandParser("caption")
    parser.add_argument("--model", required=True, help="a `tonics export` directory")
    parser.add_argument("images", nargs="+", help="picture files")
    parser.add_argument("--beams", type=int, default=1, help="beam width (default 1: greedy)")
    parser.add_argument("--max-length", type=int, help="tokens per caption (default: trained)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print JSON: path and caption each")
    return parser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not 1 <= args.beams <= MAX_BEAMS or not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(
            f"--beams must be 1 to {MAX_BEAMS} and --batch-size 1 to {MAX_BATCH}; "
            f"got {args.beams} and {args.batch_size}"
        )
    if args.max_length is not None and not 2 <= args.max_length <= MAX_LENGTH:
        parser.error(f"--max-length must be 2 to {MAX_LENGTH}; got {args.max_length}")
    from tonics.data.images import load_image
    from tonics.data.records import ImageRef
    from tonics.errors import InputError
    from tonics.model.directories import check_model_directory
    from tonics.model.exported import load

    check_model_directory(args.model)
    model = load(args.model)
    if model.hf.caption_head is None:
        raise InputError(
            f"{args.model}: this model has no captioning head; train it with "
            "--model.loss.caption_weight 1.0 (or more) and export it again"
        )
    loaded, skipped = [], []
    for path in args.images:
        image, reason = load_image(ImageRef(path=path))
        if image is None:
            skipped.append((path, reason))
        else:
            loaded.append((path, image))
    results = []
    for start in range(0, len(loaded), args.batch_size):
        chunk = loaded[start : start + args.batch_size]
        captions = model.caption(
            [image for _, image in chunk], beams=args.beams, max_length=args.max_length
        )
        results += [{"path": path, "caption": text} for (path, _), text in zip(chunk, captions)]
    for path, reason in skipped:
        print(f"tonics caption: skipped {path}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for result in results:
            print(f"{result['path']}\t{result['caption']}")
    return 0 if results else 1
