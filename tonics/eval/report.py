"""Retrieval reports: a JSON file with every figure and the run's config hash, and a Markdown
table that puts the run beside published reference numbers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# Published zero-shot COCO 5k (Karpathy test) retrieval of CLIP ViT-B/32, as in clip_benchmark's
# table. Only comparable with a run evaluated on the same protocol.
REFERENCES = {
    "CLIP ViT-B/32 (COCO 5k, zero-shot)": {"image_to_text_R@1": 50.1, "text_to_image_R@1": 30.4}
}
COLUMNS = [f"{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]


def config_hash(config_text: str) -> str:
    """sha256 (first 12 hex digits) of the run's saved config."""
    return hashlib.sha256(config_text.encode()).hexdigest()[:12]


def markdown_table(name: str, metrics: dict[str, float], prefix: str = "test/") -> str:
    """The run's R@1/5/10 both ways beside the reference rows ('-' where a figure is unknown)."""
    header = (
        "| model | "
        + " | ".join(
            c.replace("image_to_text", "i->t").replace("text_to_image", "t->i") for c in COLUMNS
        )
        + " |"
    )
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    lines.append(
        f"| {name} | "
        + " | ".join(f"{metrics.get(prefix + c, float('nan')):.2f}" for c in COLUMNS)
        + " |"
    )
    for reference, values in REFERENCES.items():
        lines.append(
            f"| {reference} | "
            + " | ".join(f"{values[c]:.1f}" if c in values else "-" for c in COLUMNS)
            + " |"
        )
    return "\n".join(lines)


def write_report(
    directory: str | Path, metrics: dict[str, float], config_text: str, name: str, **extra
) -> Path:
    """Write `retrieval_report.json` and `retrieval_report.md` into `directory`."""
    directory = Path(directory)
    digest = config_hash(config_text)
    payload = {"config_hash": digest, **extra, **metrics}
    (directory / "retrieval_report.json").write_text(json.dumps(payload, indent=2))
    (directory / "retrieval_report.md").write_text(
        f"# Retrieval: {name}\n\nconfig hash `{digest}`; split and checkpoint: {extra}\n\n"
        + markdown_table(name, metrics)
        + "\n\nReference rows are COCO 5k Karpathy-test figures; compare only runs on that "
        "protocol.\n"
    )
    return directory / "retrieval_report.json"
