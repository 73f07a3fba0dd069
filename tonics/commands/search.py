"""`tonics search index|query`: search a photo collection with a trained model.

tonics search index --model exported/ --images photos/ --out photos.index
tonics search index ... [--kind auto|flat|ivf|hnsw] [--recall 0.95]
tonics search query photos.index "a red bicycle" [-k 10] [--json]  (JSON: hits and the index's
    kind, search parameters and measured recall@10)
tonics search query photos.index --image photos/cat.jpg
"""

from __future__ import annotations

import json

from tonics.commands.parsing import CommandParser

MAX_K = 10_000


def _parser() -> CommandParser:
    parser = CommandParser("search")
    actions = parser.add_subparsers(dest="action", required=True)
    index = actions.add_parser("index", help="build or update the index of a folder of images")
    index.add_argument("--images", required=True, help="folder of images (searched recursively)")
    index.add_argument("--out", required=True, help="index directory (updated when it exists)")
    index.add_argument("--model", help="a `tonics export` directory or any local dual encoder")
    index.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "flat", "ivf", "hnsw"),
        help="vector index: exact (flat), approximate (ivf, hnsw), or chosen by size (default)",
    )
    index.add_argument(
        "--approximate-above",
        type=int,
        default=200_000,
        help="auto: try an approximate (IVF) index above this many images (default 200000)",
    )
    index.add_argument(
        "--recall",
        type=float,
        default=0.95,
        help="recall@10 the approximate index is tuned to reach, measured on a sample of the "
        "collection's own embeddings against exact search (default 0.95)",
    )
    query = actions.add_parser("query", help="the images nearest to words or to a picture")
    query.add_argument("index", help="index directory")
    query.add_argument("text", nargs="?", help="words to search for")
    query.add_argument("--image", help="search by this picture instead (image to image)")
    query.add_argument("-k", type=int, default=10, help="results (default 10)")
    query.add_argument("--json", action="store_true", help="print the results as JSON")
    serve = actions.add_parser("serve", help="a local web page to search the index")
    serve.add_argument("index", help="index directory")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000)
    return parser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.action == "query" and not 1 <= args.k <= MAX_K:
        parser.error(f"-k must be between 1 and {MAX_K}; got {args.k}")
    if args.action == "index" and not 0 < args.recall <= 1:
        parser.error(f"--recall must be a share in (0, 1], e.g. 0.95; got {args.recall}")
    import tonics.search as search
    from tonics.errors import UsageError

    if args.action == "index":
        report = search.build(
            args.images,
            args.out,
            model=args.model,
            kind=args.kind,
            approximate_above=args.approximate_above,
            recall=args.recall,
        )
        print(json.dumps(report))
        return 0
    if args.action == "serve":
        from tonics.search.server import serve

        print(
            f"tonics search: serving {args.index} on http://{args.host}:{args.port} (Ctrl-C stops)"
        )
        serve(args.index, args.host, args.port)
        return 0
    if (args.text is None) == (args.image is None):
        raise UsageError("tonics search query: give words or --image PICTURE (one of them)")
    index = search.open(args.index)
    hits = index.image(args.image, args.k) if args.image else index.text(args.text, args.k)
    if args.json:  # the hits, and the index's kind and the recall@10 it measured when built
        found = [{"path": h.path, "score": round(h.score, 6), "rank": h.rank} for h in hits]
        print(json.dumps({"hits": found, "index": index.tuning()}))
    else:
        for hit in hits:
            print(f"{hit.score:+.4f}  {hit.path}")
    return 0
