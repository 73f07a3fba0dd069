"""The wheel is part of the product: it holds every package and data file, installs the ontology
as `tonics.ontology` (never a top-level `ontology`), and a short fit with `object_nodes_only`, an
export and `tonics retrieval` work from it in a fresh virtual environment, away from the checkout.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml
from helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_declared():
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tonics").rglob("__init__.py")
    }
    found.add("tonics.ontology")
    assert declared == found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
               "-w", str(out), str(ROOT)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=out)
    return next(out.glob("tonics-*.whl"))


def _tracked_package_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "tonics", "ontology"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()  # fmt: skip
    return [p if p.startswith("tonics/") else "tonics/" + p for p in listed]


def test_the_wheel_holds_every_tracked_file_and_no_top_level_ontology(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(_tracked_package_files()) <= names
    assert "tonics/sampling/data/hard_node_stoplist.tsv" in names
    assert not any(n.startswith("ontology/") for n in names)


def _fresh_environment(directory: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed (not editable); the dependencies come
    from this environment's site-packages through a path file (nothing is downloaded)."""
    venv.EnvBuilder(with_pip=False).create(directory)
    python = directory / "bin" / "python"
    ask = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run(
        [python, "-c", ask], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
    install.append(str(wheel))
    subprocess.run(install, check=True, capture_output=True)
    return directory / "bin"


@pytest.mark.slow
def test_fit_export_and_retrieval_from_the_installed_wheel(wheel, tiny_dataset, tmp_path):
    bin_dir = _fresh_environment(tmp_path / "env", wheel)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": "", "TONICS_CACHE": str(tmp_path / "cache")}
    ask = "import tonics.ontology, tonics; print(tonics.__file__)"
    where = subprocess.run(
        [bin_dir / "python", "-c", ask],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(tmp_path / "env") in where and str(ROOT) not in where
    split_file, root = tiny_dataset
    config = tiny_config(tmp_path / "fit.yaml", split_file, root, tmp_path / "runs")
    settings = yaml.safe_load(Path(config).read_text())
    settings["data"]["stages"][-1]["nodes"].update(object_nodes_only=True, min_distinct=4)
    settings["trainer"]["max_steps"] = 6
    Path(config).write_text(yaml.safe_dump(settings))
    tonics = str(bin_dir / "tonics")

    def run(*args):
        return subprocess.run([tonics, *args], cwd=work, env=env, capture_output=True, text=True)

    fit = run("fit", "--config", config, "--no_test", "true")
    assert fit.returncode == 0, fit.stderr[-2000:]
    steps = (next((tmp_path / "runs").rglob("curriculum_steps.csv"))).read_text()
    assert ",objects," in steps or ",fine," in steps
    checkpoint = next((tmp_path / "runs").rglob("last.ckpt"))
    exported = run("export", str(checkpoint), str(tmp_path / "exported"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    report = run("retrieval", "--model", str(tmp_path / "exported"), "--karpathy", split_file,
                 "--image-root", root)  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    assert "image_to_text_R@1" in json.loads(report.stdout)
