"""`tonics compare` on tiny models: paired runs, a table with intervals, validation curves."""

from __future__ import annotations

import json

import pytest
from helpers import tiny_config

from tonics.cli import cli_main


@pytest.mark.slow
def test_compare_two_configs_over_two_seeds(tiny_dataset, tmp_path, capsys):
    split_file, root = tiny_dataset
    runs = tmp_path / "runs"
    common = {"trainer.max_steps": 4, "trainer.val_check_interval": 2}
    curriculum = tiny_config(tmp_path / "curriculum.yaml", split_file, root, runs, **common)
    random = tiny_config(
        tmp_path / "random.yaml",
        split_file,
        root,
        runs,
        **common,
        **{
            "data.stages": [
                {"name": "random", "mix": {"random": 1.0}, "steps": 2},
                {"name": "open", "mix": {"random": 1.0}, "opening": {"vision": 1}},
            ]
        },
    )
    out = tmp_path / "cmp"
    cli_main(["compare", random, curriculum, "--seeds", "0", "1", "--out", str(out)])
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["arms"] == ["random", "curriculum"] and summary["seeds"] == 2
    entry = summary["metrics"]["recall_mean"]
    difference = entry["curriculum - random"]
    assert abs(difference["difference"] - (entry["curriculum"] - entry["random"])) < 1e-2
    assert difference["t_low"] <= difference["difference"] <= difference["t_high"]
    assert "within_object_text_to_image_R@1" in summary["metrics"]
    per_seed = summary["per_seed"]["recall_mean"]  # one figure per seed, their mean the entry's
    assert [len(per_seed[a]) for a in ("random", "curriculum")] == [2, 2]
    assert abs(sum(per_seed["curriculum"]) / 2 - entry["curriculum"]) < 1e-2
    assert (out / "validation_curves.png").stat().st_size > 5000
    assert "| recall mean |" in (out / "comparison.md").read_text()
    for arm in ("random", "curriculum"):
        for seed in (0, 1):  # ordinary run directories
            assert list((out / f"{arm}-seed{seed}").rglob("curriculum_steps.csv"))
    assert "curriculum - random" in capsys.readouterr().out
    # a second call reuses the runs (no new version directories)
    cli_main(["compare", random, curriculum, "--seeds", "0", "1", "--out", str(out)])
    assert len(list((out / "random-seed0").rglob("version_*"))) == 1


def test_compare_on_validation_with_override_configs(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    runs = tmp_path / "runs"
    base = tiny_config(
        tmp_path / "base.yaml",
        split_file,
        root,
        runs,
        **{"trainer.max_steps": 4, "trainer.val_check_interval": 2},
    )
    (tmp_path / "siglip.yaml").write_text("model:\n  loss:\n    kind: siglip\n")
    out = tmp_path / "cmp"
    cli_main(
        [
            "compare",
            base,
            f"{base},{tmp_path / 'siglip.yaml'}",
            "--seeds",
            "0",
            "1",
            "--split",
            "val",
            "--out",
            str(out),
        ]
    )
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["arms"] == ["base", "siglip"] and summary["split"] == "val"
    assert not list(out.rglob("retrieval_test.json"))  # no test pass when choosing on validation
    hparams = next((out / "siglip-seed0").rglob("hparams.yaml")).read_text()
    assert "kind: siglip" in hparams


def test_caption_figures_of_some_arms_are_summarised_for_those_arms():
    from tonics.analysis.results import markdown, summarise

    plain = [{"recall_mean": 10.0 + s} for s in range(3)]
    captioning = [{"recall_mean": 11.0 + s, "caption_CIDEr": 20.0 + s} for s in range(3)]
    more = [{"recall_mean": 12.0 + s, "caption_CIDEr": 23.0 + 2 * s} for s in range(3)]
    summary = summarise({"plain": plain, "captioning": captioning, "more": more})
    recall, cider = summary["metrics"]["recall_mean"], summary["metrics"]["caption_CIDEr"]
    assert recall["captioning - plain"]["difference"] == 1.0
    assert cider == {"captioning": 21.0, "more": 25.0}  # no baseline figure: no difference
    row = next(line for line in markdown(summary).splitlines() if "CIDEr" in line)
    assert row.startswith("| caption CIDEr | - | 21.00 | 25.00 | - | - |")


def test_an_interrupted_validation_run_is_not_taken_for_a_finished_one(tmp_path):
    from tonics.train.compare import _done

    version = tmp_path / "arm-seed0" / "tonics" / "version_0"
    (version / "checkpoints").mkdir(parents=True)
    (version / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (version / "config.yaml").write_text("trainer:\n  max_steps: 600\n")
    summary = version / "stage_summary.json"
    summary.write_text(json.dumps([{"name": "a", "steps": 100}, {"name": "b", "steps": 100}]))
    assert not _done(tmp_path / "arm-seed0", "val")  # killed at step 200 of 600
    summary.write_text(json.dumps([{"name": "a", "steps": 100}, {"name": "b", "steps": 500}]))
    assert _done(tmp_path / "arm-seed0", "val")


@pytest.mark.slow
def test_held_out_figures_of_a_comparison_equal_the_fit_s_own_transfer_pass(tmp_path):
    """`--held-out transfer` measures each run's last weights on the held-out split through its
    export: the same figures as the transfer pass that `tonics fit` makes after training."""
    from conftest import write_karpathy

    split_file = write_karpathy(tmp_path / "data", n_images=32, transfer=True)
    runs = tmp_path / "runs"
    common = {"trainer.max_steps": 2, "trainer.val_check_interval": 2}
    first = tiny_config(tmp_path / "first.yaml", split_file, str(tmp_path / "data"), runs, **common)
    second = tiny_config(
        tmp_path / "second.yaml",
        split_file,
        str(tmp_path / "data"),
        runs,
        **common,
        **{"model.optimizer.lr": 0.001},
    )
    out = tmp_path / "cmp"
    arguments = ["compare", first, second, "--seeds", "0", "1", "--out", str(out)]
    cli_main([*arguments, "--held-out", "transfer"])
    summary = json.loads((out / "comparison.json").read_text())
    assert "transfer_within_object_text_to_image_R@1" in summary["metrics"]
    for arm in ("first", "second"):
        for seed in (0, 1):
            run = out / f"{arm}-seed{seed}"
            fit_s = json.loads(next(run.rglob("retrieval_test.json")).read_text())["transfer"]
            held_out = json.loads((run / "held_out_transfer.json").read_text())
            assert (
                held_out["split"] == "transfer" and held_out["images"] == fit_s["transfer/images"]
            )
            for key in ("recall_mean", "image_to_text_R@1", "within_object_text_to_image_R@1"):
                assert abs(held_out[key] - fit_s[f"transfer/{key}"]) < 1e-3, (arm, seed, key)
    kept = (out / "first-seed0" / "held_out_transfer.json").stat().st_mtime_ns
    cli_main([*arguments, "--held-out", "transfer", "test"])  # transfer measured once, then read
    assert (out / "first-seed0" / "held_out_transfer.json").stat().st_mtime_ns == kept
    summary = json.loads((out / "comparison.json").read_text())
    last = json.loads(next((out / "first-seed1").rglob("retrieval_test.json")).read_text())["last"]
    held_out = json.loads((out / "first-seed1" / "held_out_test.json").read_text())
    assert abs(held_out["recall_mean"] - last["test/recall_mean"]) < 1e-3  # the fit's test pass
    assert {"transfer_recall_mean", "test_recall_mean"} <= set(summary["metrics"])


def test_held_out_figures_name_a_run_that_has_no_checkpoint(tmp_path):
    import pytest

    from tonics.commands.held_out import held_out_figures
    from tonics.errors import InputError

    with pytest.raises(InputError, match="no last.ckpt"):
        held_out_figures(tmp_path, "transfer")
