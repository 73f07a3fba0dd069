"""Optional parts (search, captioning, demo drawing) are extras: a missing one is a one-line error
naming the extra that installs it, and the training path imports none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_config

from tonics.errors import EXTRAS, InputError, optional_import


def test_a_missing_extra_names_its_package_and_extra(monkeypatch):
    assert optional_import("faiss", "x").__name__ == "faiss"  # the control: installed, imported
    monkeypatch.setitem(sys.modules, "faiss", None)  # what an install without the extra meets
    with pytest.raises(InputError) as raised:
        optional_import("faiss", "an 'ivf' search index")
    assert str(raised.value) == (
        "an 'ivf' search index needs the optional package faiss-cpu, which is not installed; "
        "install it with: pip install 'tonics[search]'"
    )


def test_every_extra_is_declared_in_pyproject():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    for package, extra in EXTRAS.values():
        assert f"{extra} = [" in text and f'"{package}>=' in text


def _fit_without(modules, config: str) -> subprocess.CompletedProcess:
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({list(modules)!r}))\n"
        "from tonics.cli import cli_main\n"
        "cli_main(sys.argv[1:])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "fit", "--config", config, "--trainer.max_steps=1"],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_captioning_run_without_the_extra_stops_before_training(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    plain = tiny_config(tmp_path / "plain.yaml", split_file, root, tmp_path / "plain")
    trained = _fit_without(EXTRAS, plain)  # training alone needs none of the extras
    assert trained.returncode == 0, trained.stderr[-2000:]
    captioning = tiny_config(
        tmp_path / "cap.yaml",
        split_file,
        root,
        tmp_path / "cap",
        **{"model.loss.caption_weight": 1.0, "model.spec.captioner": {}},
    )
    done = _fit_without(["pycocoevalcap"], captioning)
    assert done.returncode == 2
    assert done.stderr == (
        "tonics: input error: model.loss.caption_weight > 0 (caption metrics) needs the optional "
        "package pycocoevalcap, which is not installed; install it with: pip install "
        "'tonics[captioning]' (TONICS_DEBUG=1 for a traceback)\n"
    )
