"""Dataset options shared by the evaluation and ontology commands: one of the supported formats."""

from __future__ import annotations

import argparse

from tonics.errors import UsageError


def add_reader_options(parser: argparse.ArgumentParser) -> None:
    """Options that pick a dataset in one of the supported formats."""
    group = parser.add_argument_group("dataset (choose one)")
    group.add_argument("--demo", action="store_true", help="the built-in offline demo dataset")
    group.add_argument(
        "--demo-root", help="with --demo: a demo built elsewhere (tonics demo --root)"
    )
    group.add_argument(
        "--scenes",
        action="store_true",
        help="the built-in scenes (tonics demo --scenes): their COCO files, objects from instances",
    )
    group.add_argument(
        "--karpathy", help="Karpathy split file (dataset_coco.json / dataset_flickr30k.json)"
    )
    group.add_argument("--coco-captions", help="COCO captions_*.json")
    group.add_argument("--coco-instances", help="COCO instances_*.json (object labels)")
    group.add_argument("--tsv", help="Conceptual Captions TSV")
    group.add_argument("--webdataset", help="glob of webdataset .tar shards")
    group.add_argument("--hf", help="Hugging Face imagefolder directory")
    group.add_argument("--csv", help="CSV/TSV with a header (image paths relative to --image-root)")
    group.add_argument("--csv-img-key", default="filepath", help="--csv image-path column")
    group.add_argument("--csv-caption-key", default="title", help="--csv caption column")
    group.add_argument(
        "--image-root", default=".", help="image directory for --karpathy/--coco-captions/--tsv"
    )


def reader_from_args(args: argparse.Namespace):
    """The reader the options name; an error if none or several are given."""
    chosen = [
        name
        for name in (
            "demo",
            "scenes",
            "karpathy",
            "coco_captions",
            "tsv",
            "webdataset",
            "hf",
            "csv",
        )
        if getattr(args, name)
    ]
    if len(chosen) != 1:
        raise UsageError(
            "tonics: name exactly one dataset: --demo, --scenes, --karpathy, --coco-captions, "
            "--tsv, --webdataset, --hf or --csv"
        )
    from tonics.data.readers import (
        CocoCaptionsReader,
        ConceptualCaptionsTsvReader,
        CsvReader,
        DemoReader,
        HFDatasetReader,
        KarpathyReader,
        ScenesReader,
        WebDatasetReader,
    )

    if args.scenes:
        return ScenesReader(demo_root=getattr(args, "demo_root", None))
    if args.demo:
        return DemoReader(getattr(args, "demo_root", None))
    if args.karpathy:
        return KarpathyReader(args.karpathy, args.image_root)
    if args.coco_captions:
        return CocoCaptionsReader(args.coco_captions, args.image_root, args.coco_instances)
    if args.tsv:
        return ConceptualCaptionsTsvReader(args.tsv, args.image_root)
    if args.webdataset:
        return WebDatasetReader(args.webdataset)
    if args.csv:
        return CsvReader(args.csv, args.image_root, args.csv_img_key, args.csv_caption_key)
    return HFDatasetReader(args.hf)
