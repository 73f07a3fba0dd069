"""Build (or update) a search index of a photo collection.

An index is a directory:
  manifest.json          format, collection root, model and a fingerprint of its weights,
                         embedding width, counts, vector-index kind and its tuning (search
                         parameters and the recall@10 measured on the collection's own vectors,
                         `tonics.search.tuning`); written last: the index is complete when it exists
  table.parquet          one row per image file: relative path, size, mtime, status ('ok' or why
                         it was skipped) and its embedding row (-1 when skipped)
  embeddings.safetensors the L2-normalised image embeddings (float32), never pickled
  index.faiss            the approximate vector index ('ivf' tried above `approximate_above`
                         images, 200k, kept when it reaches the recall target faster than exact
                         search; 'hnsw' when asked); an exact ('flat') index needs no file:
                         queries score the embeddings directly
  pending/               chunks of a build in progress (a killed build resumes from them)

Running the build again after files were added, changed or removed re-encodes only those (by path,
size and mtime) and keeps every other embedding. Images that cannot be read are skipped and
counted, as in training.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from tqdm.auto import tqdm

from tonics.atomic import atomic_write, atomic_write_path
from tonics.data.images import load_image
from tonics.data.records import ImageRef
from tonics.errors import InputError
from tonics.search.files import ImageFile, scan
from tonics.search.stored import FORMAT, StoredIndex
from tonics.search.tuning import APPROXIMATE_ABOVE, DEFAULT_RECALL, tune
from tonics.search.vectors import INDEX_KINDS, write_vector_index

log = logging.getLogger(__name__)


def model_identity(model: str | None, text_encoder: str, vision_encoder: str) -> dict:
    """Which model made the embeddings: its directory and a hash of its weight files (or the
    untrained encoders' names)."""
    if model is None:
        return {
            "model": None,
            "baseline": [text_encoder, vision_encoder],
            "fingerprint": "baseline",
        }
    directory = Path(model).resolve()
    digest = hashlib.sha256()
    for weights in sorted(directory.glob("*.safetensors")):
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return {"model": str(directory), "fingerprint": digest.hexdigest()[:20]}


def load_towers(identity: dict):
    """The towers that embed images and queries for an index (`tonics.eval.protocol.Towers`)."""
    from tonics.eval.protocol import baseline_towers, exported_towers

    if identity.get("model"):
        return exported_towers(identity["model"])
    return baseline_towers(*identity["baseline"])


def _previous(out: Path, root: Path, identity: dict) -> dict[str, tuple]:
    """path -> (size, mtime_ns, status, embedding or None) of an earlier index of the same root
    and model; empty when there is none, it is another model's, or it is damaged (then every
    image is encoded again, said in one warning)."""
    if not (out / "manifest.json").exists():
        return {}
    try:
        earlier = StoredIndex(out)
    except InputError as err:
        log.warning("%s; encoding every image again", err)
        return {}
    manifest = earlier.manifest
    if manifest.get("fingerprint") != identity["fingerprint"] or manifest.get("root") != str(root):
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(out / "table.parquet").to_pylist()
    embeddings = earlier.embeddings
    return {
        r["path"]: (
            r["size"],
            r["mtime_ns"],
            r["status"],
            embeddings[r["row"]] if r["row"] >= 0 else None,
        )
        for r in table
    }


def _embed(towers, root: Path, files: list[ImageFile]) -> tuple[np.ndarray, dict[str, str]]:
    """Embeddings of the files that load (in order) and the reasons of those that do not."""
    pixels, failed = [], {}
    for file in files:
        image, reason = load_image(ImageRef(path=str(root / file.path)))
        if image is not None:
            try:
                pixels.append(
                    towers.image_processor(images=image, return_tensors="pt")["pixel_values"][0]
                )
            except Exception as err:  # noqa: BLE001 - a processor failure is a skip, as in training
                reason = f"preprocessing failed ({type(err).__name__})"
        if reason is not None:
            failed[file.path] = reason
    with torch.no_grad():
        rows = towers.encode_pixels(torch.stack(pixels)).float().numpy() if pixels else None
    return (rows if rows is not None else np.zeros((0, 0), np.float32)), failed


def _chunk(towers, root: Path, files: list[ImageFile], pending: Path) -> tuple[np.ndarray, dict]:
    """One chunk's embeddings, from `pending/` when a killed build already wrote it."""
    key = hashlib.sha256(
        json.dumps([[f.path, f.size, f.mtime_ns] for f in files]).encode()
    ).hexdigest()[:24]
    path = pending / f"chunk-{key}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["embeddings"], json.loads(_metadata(path)["failed"])
        except Exception:  # noqa: BLE001 - a damaged chunk is computed again
            path.unlink(missing_ok=True)
    rows, failed = _embed(towers, root, files)
    metadata = {"failed": json.dumps(failed)}
    atomic_write_path(path, lambda tmp: save_file({"embeddings": rows}, tmp, metadata=metadata))
    return rows, failed


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "np") as handle:
        return handle.metadata() or {}


def build(
    root,
    out,
    *,
    model: str | None = None,
    text_encoder: str = "packaged:minilm",
    vision_encoder: str = "packaged:mobilenet_v2",
    kind: str = "auto",
    approximate_above: int = APPROXIMATE_ABOVE,
    recall: float = DEFAULT_RECALL,
    chunk_size: int = 256,
    towers=None,
) -> dict:
    """Index every image under `root` into directory `out` (updating an index already there);
    returns what was done: images, encoded, reused, removed, skipped, and the vector index (its
    kind, search parameters and the recall@10 it measured, `tonics.search.tuning`)."""
    root, out = Path(root).resolve(), Path(out)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; give the folder of images to index")
    if kind not in ("auto", *INDEX_KINDS):
        raise InputError(f"index kind '{kind}': choose auto, {', '.join(INDEX_KINDS)}")
    if not 0 < recall <= 1:
        raise InputError(f"recall target {recall}: give a share in (0, 1], e.g. 0.95")
    identity = model_identity(model, text_encoder, vision_encoder)
    left_out: Counter = Counter()
    files = scan(root, left_out)
    previous = _previous(out, root, identity)
    fresh = [f for f in files if previous.get(f.path, (None, None))[:2] != (f.size, f.mtime_ns)]
    towers = towers or (load_towers(identity) if fresh else None)
    pending = out / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    encoded: dict[str, np.ndarray | str] = {}
    chunks = [fresh[i : i + chunk_size] for i in range(0, len(fresh), chunk_size)]
    for chunk in tqdm(chunks, desc="search index: encoding", unit="chunk", disable=not chunks):
        rows, failed = _chunk(towers, root, chunk, pending)
        loaded = iter(rows)
        for file in chunk:
            encoded[file.path] = failed[file.path] if file.path in failed else next(loaded)
    report = _write(
        out, root, identity, files, previous, encoded, (kind, approximate_above, recall)
    )
    report["left_out"] = dict(sorted(left_out.items()))
    if left_out:
        log.warning("search index: files left out: %s", report["left_out"])
    for leftover in pending.glob("chunk-*.safetensors"):
        leftover.unlink(missing_ok=True)
    removed = len(set(previous) - {f.path for f in files})
    return {**report, "encoded": len(fresh), "reused": len(files) - len(fresh), "removed": removed}


def _table(files, previous, encoded) -> tuple[list[np.ndarray], list[dict]]:
    """The embeddings to store, in row order, and one table row per file: its path, size, mtime,
    status ('ok' or why it was skipped) and embedding row (-1 when skipped)."""
    rows, table = [], []
    for file in files:
        if file.path in encoded:
            value = encoded[file.path]
        else:  # unchanged since the last build: its embedding, or the reason it was skipped
            _, _, status, embedding = previous[file.path]
            value = embedding if embedding is not None else status
        skipped = isinstance(value, str)
        table.append(
            {
                "path": file.path,
                "size": file.size,
                "mtime_ns": file.mtime_ns,
                "status": value if skipped else "ok",
                "row": -1 if skipped else len(rows),
            }
        )
        if not skipped:
            rows.append(value)
    return rows, table


def _write(out: Path, root: Path, identity: dict, files, previous, encoded, vector) -> dict:
    """Table, embeddings, vector index (`vector`: kind, approximate_above, recall target), then
    the manifest (the index is complete)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, table = _table(files, previous, encoded)
    if not rows:
        raise InputError(f"{root}: no image could be indexed ({len(files)} files found)")
    embeddings = np.stack(rows).astype(np.float32)
    kind, approximate_above, recall = vector
    tuned = tune(embeddings, kind, target=recall, approximate_above=approximate_above)
    columns = {k: [t[k] for t in table] for k in ("path", "size", "mtime_ns", "status", "row")}
    atomic_write_path(out / "table.parquet", lambda tmp: pq.write_table(pa.table(columns), tmp))
    atomic_write_path(
        out / "embeddings.safetensors", lambda tmp: save_file({"embeddings": embeddings}, tmp)
    )
    (out / "index.faiss").unlink(missing_ok=True)  # a previous build's approximate index
    write_vector_index(tuned.index, out / "index.faiss")
    skipped = sum(1 for t in table if t["row"] < 0)
    manifest = {
        "format": FORMAT,
        "root": str(root),
        **identity,
        "dim": int(embeddings.shape[1]),
        "images": len(rows),
        "skipped": skipped,
        "index": tuned.kind,
        "tuning": tuned.report(),
    }
    atomic_write(
        out / "manifest.json", lambda handle: handle.write(json.dumps(manifest, indent=1).encode())
    )
    log.info("search index: %d images (%d skipped) -> %s (%s)", len(rows), skipped, out, tuned.kind)
    return {
        "images": len(rows),
        "skipped": skipped,
        "index": tuned.kind,
        "dim": manifest["dim"],
        "recall_at_10": tuned.recall_at_10,
        "search_params": tuned.params,
    }
