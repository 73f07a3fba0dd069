"""`tonics zeroshot --model DIR --image-folder ROOT`: zero-shot classification accuracy."""

from __future__ import annotations

import json
from pathlib import Path

from tonics.commands.parsing import CommandParser


def _parser() -> CommandParser:
    """The command's arguments."""
    parser = CommandParser("zeroshot")
    parser.add_argument(
        "--model",
        required=True,
        help="a `tonics export` directory or any local dual encoder (CLIP, SigLIP...)",
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--image-folder", help="ROOT/<class name>/<images>")
    data.add_argument(
        "--hf-dataset", help="local HF dataset (save_to_disk, imagefolder or parquet directory)"
    )
    parser.add_argument("--split", default="test", help="--hf-dataset split")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--label-column", default="label")
    parser.add_argument(
        "--template",
        action="append",
        dest="templates",
        help="prompt with {} for the class name (repeat; default: tonics's ensemble)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument(
        "--allow-pickle-weights",
        action="store_true",
        help="load pickled weights (pytorch_model.bin): only for files you trust",
    )
    return parser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    from tonics.eval.protocol import exported_towers
    from tonics.eval.zeroshot import TEMPLATES, classify_images, dataset_samples, folder_samples

    towers = exported_towers(args.model, allow_pickle=args.allow_pickle_weights)
    if args.image_folder:
        names, samples = folder_samples(args.image_folder)
    else:
        names, samples = dataset_samples(
            args.hf_dataset, args.split, args.image_column, args.label_column
        )
    report = classify_images(
        towers,
        names,
        samples,
        templates=tuple(args.templates or TEMPLATES),
        batch_size=args.batch_size,
    )
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0
