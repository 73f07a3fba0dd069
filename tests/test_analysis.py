"""Curriculum analysis: figures from a tiny run, `tonics report`, and the notebook run headless."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from helpers import tiny_config
from nbclient import NotebookClient

from tonics.analysis.figures import FIGURES
from tonics.cli import cli_main

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "curriculum_stages.ipynb"


@pytest.fixture(scope="module")
def tiny_run(tiny_dataset, tmp_path_factory):
    split_file, root = tiny_dataset
    directory = tmp_path_factory.mktemp("run")
    config = tiny_config(directory / "c.yaml", split_file, root, directory)
    cli_main(["fit", "--config", config, "--no_test", "true"])
    return sorted((directory / "tonics").glob("version_*"))[-1]


@pytest.mark.slow
def test_tonics_report_writes_every_figure(tiny_run, tmp_path):
    cli_main(["report", str(tiny_run), "--out", str(tmp_path)])
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 5000, name


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


@pytest.fixture(scope="module")
def tiny_comparison(tiny_dataset, tmp_path_factory):
    split_file, root = tiny_dataset
    directory = tmp_path_factory.mktemp("cmp")
    common = {"trainer.max_steps": 4, "trainer.val_check_interval": 2}
    tonics = tiny_config(directory / "tonics.yaml", split_file, root, directory, **common)
    random = tiny_config(
        directory / "random.yaml",
        split_file,
        root,
        directory,
        **common,
        **{"data.stages": [{"name": "random", "mix": {"random": 1.0}}]},
    )
    cli_main(
        [
            "compare",
            random,
            tonics,
            "--seeds",
            "0",
            "1",
            "--split",
            "val",
            "--out",
            str(directory / "out"),
        ]
    )
    return directory / "out"


@pytest.mark.slow
def test_comparison_stage_table(tiny_comparison):
    from tonics.analysis.comparison import stage_table

    rows = stage_table(tiny_comparison)
    assert {(r["arm"], r["stage"]) for r in rows} == {
        ("random", "random"),
        ("tonics", "diverse"),
        ("tonics", "coarse"),
    }
    assert all(0 <= r["false_negative_rows"] <= 1 and r["steps"] >= 1 for r in rows)


@pytest.mark.slow
def test_notebook_executes_headless_on_a_tiny_run(tiny_run, tiny_comparison, monkeypatch):
    for name in FIGURES:
        (tiny_run / name).unlink(missing_ok=True)
    monkeypatch.setenv("TONICS_RUN_DIR", str(tiny_run))
    monkeypatch.setenv("TONICS_COMPARE_DIR", str(tiny_comparison))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    assert any(
        o.get("output_type") == "display_data" for c in notebook.cells for o in c.get("outputs", [])
    )
    for name in FIGURES:
        assert (tiny_run / name).stat().st_size > 5000, name
    assert os.environ["TONICS_RUN_DIR"] == str(tiny_run)
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "false_negative_rows" in text and "random" in text  # the comparison section ran
    assert "within_object_text_to_image_R@1" in text and "diff" in text  # the fraction grid's


def test_data_efficiency_rows_and_figure(tmp_path):
    import json

    from tonics.analysis.data_efficiency import efficiency_figure, efficiency_rows

    def summary(shift: float) -> dict:
        entry = {
            "random_baseline": 30.0,
            "demo": 30.0 + shift,
            "demo - random_baseline": {
                "difference": shift,
                "t_low": shift - 1,
                "t_high": shift + 1,
            },
        }
        return {
            "arms": ["random_baseline", "demo"],
            "baseline": "random_baseline",
            "seeds": 5,
            "metrics": {"recall_mean": entry},
        }

    results = {"fractions": {"0.25": summary(0.5), "0.1": summary(2.0)}}
    rows = efficiency_rows(results)
    assert [(r["fraction"], r["arm"]) for r in rows] == [
        (0.1, "random_baseline"),
        (0.1, "demo"),
        (0.25, "random_baseline"),
        (0.25, "demo"),
    ]
    assert rows[1]["difference"]["t_low"] == 1.0 and "difference" not in rows[0]
    (tmp_path / "r.json").write_text(json.dumps(results))
    assert efficiency_figure(tmp_path / "r.json", tmp_path / "f.png").stat().st_size > 1000


def test_merge_grids_puts_arms_of_separate_grids_side_by_side():
    import pytest

    from tonics.analysis.data_efficiency import efficiency_rows, merge_grids

    def grid(arm: str, baseline_mean: float, shift: float) -> dict:
        entry = {
            "random_baseline": baseline_mean,
            arm: baseline_mean + shift,
            f"{arm} - random_baseline": {"difference": shift, "t_low": -1.0, "t_high": 1.0},
        }
        summary = {
            "arms": ["random_baseline", arm],
            "baseline": "random_baseline",
            "seeds": 5,
            "metrics": {"recall_mean": entry},
        }
        return {"fractions": {"0.5": summary, "0.1": summary}}

    merged = merge_grids({"a": grid("demo", 30.0, 1.0), "b": grid("mined", 30.5, -2.0)})
    assert list(merged["fractions"]) == ["0.1", "0.5"]
    tenth = merged["fractions"]["0.1"]
    assert tenth["arms"] == ["random_baseline", "demo", "mined"]
    entry = tenth["metrics"]["recall_mean"]
    assert entry["random_baseline"] == 30.0 and entry["mined"] == 28.5
    assert entry["mined - random_baseline"]["difference"] == -2.0  # paired with its own baseline
    assert tenth["sources"]["b"]["baseline_means"] == {"recall_mean": 30.5}
    rows = efficiency_rows(merged)
    assert [r["arm"] for r in rows if r["fraction"] == 0.1] == ["random_baseline", "demo", "mined"]
    other = grid("mined", 30.0, 0.0)
    other["fractions"]["0.1"]["baseline"] = "demo"
    with pytest.raises(ValueError, match="different baselines"):
        merge_grids({"a": grid("demo", 30.0, 1.0), "c": other})
