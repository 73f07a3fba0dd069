"""The five curriculum figures; each is drawn on a matplotlib Figure and saved as a PNG in the run
directory (headless: the Agg backend)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402

from tonics.analysis.run import RunData  # noqa: E402

COLOURS = ["#dbe9f6", "#fde3c8", "#dcefd8", "#eadcf1", "#f6dcdc"]


def _shade_stages(ax, run: RunData) -> None:
    for k, (start, end, name) in enumerate(run.stage_spans()):
        ax.axvspan(start, end, color=COLOURS[k % len(COLOURS)], alpha=0.8, zorder=0)
        ax.text(start, 1.0, f" {name}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8)


def _floats(run: RunData, key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in run.steps if r.get(key) not in (None, "")]
    return [int(r["step"]) for r in rows], [float(r[key]) for r in rows]


def loss_and_accuracy(run: RunData):
    """Training loss and in-batch accuracy (both ways) over steps, stages shaded."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax in (top, bottom):
        _shade_stages(ax, run)
    top.plot(*_floats(run, "loss"), color="black", lw=1)
    top.set_ylabel("InfoNCE loss")
    bottom.plot(*_floats(run, "acc_i2t"), label="image->text", lw=1)
    bottom.plot(*_floats(run, "acc_t2i"), label="text->image", lw=1)
    bottom.set_ylabel("in-batch accuracy")
    bottom.set_xlabel("step")
    bottom.legend(loc="lower right", fontsize=8)
    return fig


def hardness(run: RunData):
    """Mean and max off-diagonal (negative) similarity of each batch, per stage."""
    fig, ax = plt.subplots(figsize=(8, 4))
    names = [s for _, _, s in run.stage_spans()]
    for key, offset, label in (
        ("hardness_mean", -0.15, "mean negative similarity"),
        ("hardness_max", 0.15, "max negative similarity"),
    ):
        data = [
            [
                float(r[key])
                for r in run.steps
                if r["stage_name"] == name and r.get(key) not in (None, "")
            ]
            for name in names
        ]
        box = ax.boxplot(
            data, positions=[k + offset for k in range(len(names))], widths=0.25, patch_artist=True
        )
        for patch in box["boxes"]:
            patch.set_facecolor("#9ecae1" if offset < 0 else "#fdae6b")
        ax.plot([], [], color="#9ecae1" if offset < 0 else "#fdae6b", lw=6, label=label)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("cosine similarity of non-matching pairs")
    ax.legend(fontsize=8)
    return fig


def sampled_nodes(run: RunData, top: int = 8):
    """Per stage: depth histogram of the nodes batches came from, and the most sampled nodes."""
    names = [s for _, _, s in run.stage_spans()]
    fig, axes = plt.subplots(
        2, max(1, len(names)), figsize=(4 * max(1, len(names)), 6), squeeze=False
    )
    for k, name in enumerate(names):
        rows = [r for r in run.steps if r["stage_name"] == name]
        depths = Counter(int(r["depth"]) for r in rows if r["depth"] not in ("", None))
        kinds = Counter(r["kind"] for r in rows)
        if depths:
            axes[0][k].bar(list(depths), list(depths.values()), color="#6baed6")
        else:  # no empty axis: say why there is nothing to draw
            axes[0][k].text(
                0.5,
                0.5,
                "no ontology batches\n" + ", ".join(f"{a}: {b}" for a, b in kinds.items()),
                ha="center",
                va="center",
                transform=axes[0][k].transAxes,
                fontsize=8,
            )
            axes[0][k].set_xticks([])
            axes[0][k].set_yticks([])
        axes[0][k].set_title(f"{name}: node depth", fontsize=9)
        nodes = Counter(r["node"] for r in rows if r["node"]).most_common(top)
        if nodes:
            axes[1][k].barh(
                [n for n, _ in nodes][::-1], [c for _, c in nodes][::-1], color="#fd8d3c"
            )
        else:
            axes[1][k].text(
                0.5,
                0.5,
                "no ontology batches\n" + ", ".join(f"{a}: {b}" for a, b in kinds.items()),
                ha="center",
                va="center",
                transform=axes[1][k].transAxes,
                fontsize=8,
            )
        axes[1][k].set_title(f"{name}: top nodes", fontsize=9)
        axes[1][k].tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def retrieval_by_stage(run: RunData):
    """Validation retrieval (mean recall, R@1 both ways) and validation loss at each validation,
    stages shaded: whether a stage, or opening the encoders, helped or hurt."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax in (top, bottom):
        _shade_stages(ax, run)
    for key, label in (
        ("val/recall_mean", "mean of R@1/5/10 both ways"),
        ("val/image_to_text_R@1", "image->text R@1"),
        ("val/text_to_image_R@1", "text->image R@1"),
    ):
        xs, ys = run.metric_series(key)
        top.plot(xs, ys, marker="o", label=label)
    top.set_ylabel("validation recall (%)")
    top.legend(fontsize=8)
    bottom.plot(*run.metric_series("val/loss"), marker="o", color="black")
    bottom.set_ylabel("validation loss")
    bottom.set_xlabel("step")
    return fig


def ontology_neighbourhood(run: RunData, top: int = 6):
    """The most sampled nodes with their parents and children in the ontology."""
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.axis("off")
    counts = Counter(r["node"] for r in run.steps if r["node"])
    if run.ontology is None or not counts:
        ax.text(0.5, 0.5, "no ontology batches in this run", ha="center", va="center")
        return fig
    graph = run.ontology.graph
    focus = [n for n, _ in counts.most_common(top) if n in graph]
    keep = set(focus)
    for node in focus:
        keep.update(graph.predecessors(node))
        keep.update(sorted(graph.successors(node), key=lambda c: -graph.nodes[c]["subtree"])[:4])
    sub = graph.subgraph(keep)
    layout = nx.spring_layout(sub, seed=0, k=1.2)
    sizes = [300 + 40 * counts.get(n, 0) for n in sub]
    colours = ["#e6550d" if n in focus else "#9ecae1" for n in sub]
    nx.draw_networkx(
        sub,
        layout,
        ax=ax,
        node_size=sizes,
        node_color=colours,
        font_size=7,
        labels={n: n.split(".")[0] for n in sub},
        arrows=True,
        edge_color="#999999",
    )
    ax.set_title(
        "most sampled nodes (orange) with their hypernyms and largest hyponyms", fontsize=9
    )
    return fig


FIGURES = {
    "fig_loss_accuracy.png": loss_and_accuracy,
    "fig_hardness.png": hardness,
    "fig_sampled_nodes.png": sampled_nodes,
    "fig_retrieval_by_stage.png": retrieval_by_stage,
    "fig_ontology_neighbourhood.png": ontology_neighbourhood,
}


def make_all_figures(run: RunData, out: str | Path | None = None) -> list[Path]:
    """Draw every figure and save it as a PNG (in the run directory unless `out` is given)."""
    out = Path(out) if out is not None else run.directory
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        fig = draw(run)
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(out / name)
    return written
