"""`tonics upgrade-config`: a config with flat keys rewritten into groups resolves to exactly the
config written by hand with grouped keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tonics.cli import cli_main

DATA = Path(__file__).parent / "data"


def _printed(capsys, config: str) -> dict:
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", config, "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def test_the_flat_demo_config_upgrades_to_the_grouped_one(tmp_path, capsys):
    out = tmp_path / "upgraded.yaml"
    cli_main(["upgrade-config", str(DATA / "demo_flat.yaml"), "-o", str(out)])
    assert capsys.readouterr().err == (
        f"{DATA / 'demo_flat.yaml'}: flat keys moved to groups; written to {out}\n"
    )
    assert _printed(capsys, str(out)) == _printed(capsys, str(DATA / "demo_grouped.yaml"))
    # the control: the flat file itself is refused with the hint to upgrade it
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(DATA / "demo_flat.yaml"), "--print_config"])
    assert "`tonics upgrade-config" in capsys.readouterr().err


def test_a_grouped_config_is_printed_unchanged(capsys):
    grouped = DATA / "demo_grouped.yaml"
    cli_main(["upgrade-config", str(grouped)])
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out) == yaml.safe_load(grouped.read_text())
    assert captured.err == f"{grouped}: every key already in its group\n"
