"""Numeric arguments are range-checked before anything is read: an absurd value is one line,
exit code 2, whatever else the command was given (here a model directory that does not exist,
which would be the error if the argument were not checked first)."""

from __future__ import annotations

import pytest

from tonics.cli import cli_main

CASES = [
    (
        ["--beams", "100000"],
        "--beams must be 1 to 64 and --batch-size 1 to 1024; got 100000 and 16",
    ),
    (["--beams", "0"], "--beams must be 1 to 64 and --batch-size 1 to 1024; got 0 and 16"),
    (["--batch-size", "-3"], "--beams must be 1 to 64 and --batch-size 1 to 1024; got 1 and -3"),
    (["--max-length", "1"], "--max-length must be 2 to 512; got 1"),
]


@pytest.mark.parametrize(("extra", "message"), CASES)
def test_caption_checks_its_numbers_first(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.delenv("TONICS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["caption", "--model", str(tmp_path / "absent"), "x.png", *extra])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"tonics: usage error: tonics caption: {message} (`tonics caption --help` for usage) "
        "(TONICS_DEBUG=1 for a traceback)\n"
    )


@pytest.mark.slow
def test_retrieval_checks_the_model_before_it_reads_the_data(tmp_path, capfd, monkeypatch):
    """A bad --model is the only line on stderr: no dataset was read (no progress bar, no
    demo build) before it. The plant: the demo root given does not exist, so reading it first
    would fail with another message."""
    import subprocess
    import sys

    absent = tmp_path / "no-model"
    finished = subprocess.run(
        [sys.executable, "-m", "tonics.cli", "retrieval", "--demo", "--demo-root",
         str(tmp_path / "no-demo"), "--model", str(absent)],
        capture_output=True, text=True, env={**__import__("os").environ, "TONICS_DEBUG": ""},
    )  # fmt: skip
    assert finished.returncode == 2
    assert finished.stderr == (
        f"tonics: input error: {absent}: not a directory; give a model directory (tonics export) "
        "(TONICS_DEBUG=1 for a traceback)\n"
    )
