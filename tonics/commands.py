"""The `tonics` tool subcommands beside LightningCLI's: ontology, export, retrieval, demo, report,
compare."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tonics.data.readers import (
    CocoCaptionsReader,
    ConceptualCaptionsTsvReader,
    CsvReader,
    DemoReader,
    HFDatasetReader,
    KarpathyReader,
    WebDatasetReader,
)


def add_reader_options(parser: argparse.ArgumentParser) -> None:
    """Options that pick a dataset in one of the supported formats."""
    group = parser.add_argument_group("dataset (choose one)")
    group.add_argument("--demo", action="store_true", help="the built-in offline demo dataset")
    group.add_argument(
        "--demo-root", help="with --demo: a demo built elsewhere (tonics demo --root)"
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
        for name in ("demo", "karpathy", "coco_captions", "tsv", "webdataset", "hf", "csv")
        if getattr(args, name)
    ]
    if len(chosen) != 1:
        raise SystemExit(
            "tonics: name exactly one dataset: --demo, --karpathy, --coco-captions, --tsv, --webdataset, --hf or --csv"
        )
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


def _ontology(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tonics ontology", description="Build or inspect the object ontology."
    )
    parser.add_argument("action", choices=("build", "stats"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--source", default="caption", choices=("caption", "image", "intersection"))
    parser.add_argument("--out", help="write the ontology here (default: the cache)")
    parser.add_argument("--load", help="stats of a saved ontology file instead of a dataset")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="for the hard-batch node lists")
    add_reader_options(parser)
    args = parser.parse_args(argv)
    from ontology.graph import Ontology
    from ontology.index import ontology_for_records
    from ontology.report import unmatched_nouns

    if args.load:
        print(json.dumps(Ontology.load(args.load).stats(args.top), indent=2))
        return 0
    reader = reader_from_args(args)
    from tonics.data.records import select_split

    records = select_split(reader.read(), args.split)
    started = time.perf_counter()
    ontology = ontology_for_records(records, source=args.source)
    seconds = time.perf_counter() - started
    if args.out:
        ontology.save(args.out)
    stats = ontology.stats(args.top)
    stats["build_seconds"] = round(seconds, 2)
    stats["reader_skipped"] = dict(reader.skipped)
    if args.action == "stats":
        stats["unmatched_nouns"] = unmatched_nouns(
            [r.caption for r in records], ontology.pair_objects
        )
        stats["hard_batch_nodes"] = hard_batch_nodes(ontology, records, args.batch_size)
    print(json.dumps(stats, indent=2))
    return 0


def hard_batch_nodes(ontology, records, batch_size: int, top: int = 25) -> dict:
    """Per granularity and rule set, the nodes a stage would draw hard batches from, with their
    distinct images / captions: what `object_nodes_only` changes, before training on it."""
    import numpy as np

    from tonics.data.records import group_codes
    from tonics.sampling.kinds import stage_nodes
    from tonics.sampling.nodes import HardNodeRules, blocked_pairs, distinct_counts, hard_pool

    pair_images, pair_captions = (np.array(codes) for codes in group_codes(records))
    out = {}
    for label, rules in (("fine, any node", HardNodeRules(object_nodes_only=False)),
                         ("fine, object nodes only", HardNodeRules())):  # fmt: skip
        try:
            nodes = stage_nodes(ontology, batch_size, rules=rules, pair_images=pair_images, pair_captions=pair_captions)  # fmt: skip
        except ValueError as err:
            out[label] = str(err)
            continue
        rows = []
        blocked = blocked_pairs(ontology, rules)
        for node in nodes:
            pairs = hard_pool(ontology, node, blocked)
            n_images, n_captions = distinct_counts(pairs, pair_images, pair_captions)
            rows.append(
                (
                    len(pairs),
                    f"{node}: {len(pairs)} pairs, {n_images} images, {n_captions} captions",
                )
            )
        out[label] = {
            "nodes": len(nodes),
            "largest": [text for _, text in sorted(rows, reverse=True)[:top]],
        }
    return out


def _export(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tonics export", description="Export a checkpoint for use without tonics's trainer."
    )
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    from tonics.export import export_checkpoint

    print(f"exported to {export_checkpoint(args.checkpoint, args.out)}")
    return 0


def _retrieval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tonics retrieval", description="Image<->text retrieval of a model."
    )
    parser.add_argument("--model", help="directory written by `tonics export`")
    parser.add_argument(
        "--text-encoder", default="packaged:minilm", help="untrained baseline (no --model)"
    )
    parser.add_argument(
        "--vision-encoder", default="packaged:mobilenet_v2", help="untrained baseline (no --model)"
    )
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--demo-transfer",
        action="store_true",
        help="the demo's held-out rendering style (OpenMoji), zero-shot: --demo --split transfer",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", help="write the JSON report here")
    add_reader_options(parser)
    args = parser.parse_args(argv)
    from tonics.eval.protocol import evaluate_reader

    if args.demo_transfer:
        args.demo, args.split = True, "transfer"
    report = evaluate_reader(reader_from_args(args), split=args.split, model_dir=args.model,
                             text_encoder=args.text_encoder, vision_encoder=args.vision_encoder,
                             batch_size=args.batch_size)  # fmt: skip
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


def _zeroshot(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tonics zeroshot",
        description="Zero-shot classification accuracy (top-1/top-5) of a dual encoder with a "
        "prompt-ensemble classifier, on an image folder or a local Hugging Face dataset.",
    )
    parser.add_argument("--model", required=True, help="a `tonics export` directory or any local dual encoder (CLIP, SigLIP...)")  # fmt: skip
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--image-folder", help="ROOT/<class name>/<images>")
    data.add_argument("--hf-dataset", help="local HF dataset (save_to_disk, imagefolder or parquet directory)")  # fmt: skip
    parser.add_argument("--split", default="test", help="--hf-dataset split")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--template", action="append", dest="templates",
                        help="prompt with {} for the class name (repeat; default: tonics's ensemble)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    from tonics.eval.protocol import exported_towers
    from tonics.eval.zeroshot import TEMPLATES, classify_images, dataset_samples, folder_samples

    if args.image_folder:
        names, samples = folder_samples(args.image_folder)
    else:
        names, samples = dataset_samples(args.hf_dataset, args.split, args.image_column, args.label_column)  # fmt: skip
    report = classify_images(exported_towers(args.model), names, samples,
                             templates=tuple(args.templates or TEMPLATES), batch_size=args.batch_size)  # fmt: skip
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


def _demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tonics demo", description="Build the offline demo dataset (or print its data card)."
    )
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


def _index(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tonics index",
        description="Index img2dataset shards (webdataset .tar, or .parquet whose images are "
        "copied once into a blob beside the index) for random access: one seek + read per image.",
    )
    parser.add_argument("shards", help="glob of .tar or .parquet shards, e.g. 'cc3m/*.tar'")
    parser.add_argument("--out", help="index file (default: kept in the tonics cache)")
    parser.add_argument("--caption-extension", default="txt")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="processes indexing shards in parallel (default: cores, at most 8)")  # fmt: skip
    args = parser.parse_args(argv)
    import time

    from tonics.data.readers import WebDatasetReader
    from tonics.data.shard_index import build_index, save_index

    shards = WebDatasetReader(args.shards).shard_paths()
    if not shards:
        raise SystemExit(f"tonics index: no shards match '{args.shards}'")
    started = time.perf_counter()
    if args.out:
        index = build_index([s.resolve() for s in shards], args.caption_extension, Path(args.out), args.workers)  # fmt: skip
        path = save_index(index, args.out, args.caption_extension)
    else:
        from tonics.data.shard_index import default_index_path, index_for

        index = index_for(shards, args.caption_extension)
        path = default_index_path([s.resolve() for s in shards], args.caption_extension)
    print(json.dumps({"index": str(path), "shards": len(shards), "pairs": len(index),
                      "skipped": len(index.skipped), "bytes": path.stat().st_size,
                      "seconds": round(time.perf_counter() - started, 2)}))  # fmt: skip
    return 0


def _report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tonics report", description="Curriculum-stage figures of a finished run."
    )
    parser.add_argument("run_dir")
    parser.add_argument("--out", help="write the PNGs here (default: the run directory)")
    args = parser.parse_args(argv)
    from tonics.analysis import load_run, make_all_figures

    for path in make_all_figures(load_run(args.run_dir), args.out):
        print(path)
    return 0


def _compare(argv: list[str]) -> int:
    from tonics.compare import main

    return main(argv)


def run_tool(argv: list[str]) -> int:
    """Dispatch `tonics ontology|export|retrieval|zeroshot|demo|report|compare ...`."""
    commands = {
        "compare": _compare,
        "ontology": _ontology,
        "export": _export,
        "retrieval": _retrieval,
        "demo": _demo,
        "index": _index,
        "report": _report,
        "zeroshot": _zeroshot,
    }
    code = commands[argv[0]](argv[1:])
    sys.stdout.flush()
    return code
