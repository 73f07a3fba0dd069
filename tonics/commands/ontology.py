"""`tonics ontology build|stats`: the WordNet object ontology of a dataset (coverage, depth
histogram, unmatched nouns, the nodes hard batches would come from)."""

from __future__ import annotations

import json
import time

from tonics.commands.datasets import add_reader_options, reader_from_args
from tonics.commands.parsing import CommandParser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("ontology")
    parser.add_argument("action", choices=("build", "stats"))
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--source", default="caption", choices=("caption", "image", "instances", "intersection")
    )
    parser.add_argument("--out", help="write the ontology here (default: the cache)")
    parser.add_argument("--load", help="stats of a saved ontology file instead of a dataset")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="for the hard-batch node lists")
    add_reader_options(parser)
    args = parser.parse_args(argv)
    from tonics.analysis.hard_nodes import hard_batch_nodes
    from tonics.ontology.graph import Ontology
    from tonics.ontology.index import ontology_for_records
    from tonics.ontology.report import unmatched_nouns

    if args.load:
        from pathlib import Path

        from tonics.errors import InputError

        if not Path(args.load).is_file():
            raise InputError(
                f"{args.load}: no such ontology file; write one with `tonics ontology build`"
            )
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
