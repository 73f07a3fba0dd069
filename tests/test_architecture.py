"""The import order is the architecture: base utilities -> model -> ontology -> data ->
caches/eval -> sampling/analysis -> train -> export -> commands -> cli. No module imports one
from a later layer (the library never imports the app), no import cycle, no module over 350
lines and no function over 50; `import tonics` and `tonics --help` import no heavy library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "tonics.errors": 0,
    "tonics.atomic": 0,
    "tonics.paths": 0,
    "tonics.memory": 0,
    "tonics.mapped_arrays": 0,
    "tonics.model": 1,
    "tonics.ontology": 2,
    "tonics.data": 3,
    "tonics.cache": 4,
    "tonics.eval": 4,
    "tonics.sampling": 5,
    "tonics.search": 5,
    "tonics.analysis": 5,
    "tonics.train": 6,
    "tonics.export": 7,
    "tonics.commands": 8,
    "tonics.cli": 9,
}


def _modules() -> dict[str, Path]:
    """Module name -> file, with the `ontology/` folder installed as `tonics.ontology`."""
    modules = {}
    for folder, package in (("tonics", ("tonics",)), ("ontology", ("tonics", "ontology"))):
        for path in (ROOT / folder).rglob("*.py"):
            parts = (*package, *path.relative_to(ROOT / folder).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports (anywhere in the file, function bodies included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _layer(name: str) -> int | None:
    matches = [prefix for prefix in LAYERS if name == prefix or name.startswith(prefix + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_module_imports_a_later_layer():
    graph = _graph()
    unplaced = [m for m in graph if m != "tonics" and _layer(m) is None]
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"
    back = [
        (m, t)
        for m, targets in graph.items()
        for t in targets
        if m != "tonics" and _layer(t) is not None and _layer(t) > _layer(m)
    ]
    assert not back, back


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in graph[node]:
            assert state.get(target) != 1, "import cycle: " + " -> ".join([*trail, target])
            if target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_modules_and_functions_stay_small():
    too_long = []
    for name, path in _modules().items():
        source = path.read_text()
        if len(source.splitlines()) > 350:
            too_long.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 50:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, too_long


def test_the_layer_test_sees_a_planted_back_arrow(tmp_path):
    modules = {"tonics.model.x": tmp_path / "x.py", "tonics.train.module": tmp_path / "m.py"}
    modules["tonics.model.x"].write_text("def f():\n    from tonics.train.module import A\n")
    found = _imports("tonics.model.x", modules["tonics.model.x"], modules)
    assert found == {"tonics.train.module"} and _layer("tonics.train.module") > _layer(
        "tonics.model.x"
    )


OUR_OBJECTS = {"self", "pl_module", "module", "dm", "datamodule", "model", "callback"}


def _reaches_through_the_trainer(source: str) -> list[str]:
    """Where a training module finds another of our objects instead of reading the run plan it
    was handed: `trainer.lightning_module`, `trainer.datamodule`, or `getattr`/`hasattr` on our own
    Lightning objects (the module, data module, callbacks, or anything reached from the trainer)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        reached = isinstance(node, ast.Attribute) and node.attr in (
            "lightning_module",
            "datamodule",
        )
        if reached and ast.unparse(node.value).endswith("trainer"):
            found.append(f"line {node.lineno}: .{node.attr}")
        called = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if called and node.func.id in ("getattr", "hasattr") and node.args:
            target = ast.unparse(node.args[0])
            ours = target.split(".")[0] in OUR_OBJECTS or "trainer" in target.split(".")[:2]
            if ours and not target.startswith(("trainer.loggers", "trainer.checkpoint_callback")):
                found.append(f"line {node.lineno}: {node.func.id}({target}, ...)")
    return found


def test_training_objects_read_their_plan_not_each_other():
    found = {
        path.name: _reaches_through_the_trainer(path.read_text())
        for path in (ROOT / "tonics" / "train").glob("*.py")
    }
    assert not {name: lines for name, lines in found.items() if lines}


def test_the_plan_test_sees_planted_reaches():
    planted = (
        "def f(self, trainer, pl_module):\n"
        "    a = self.trainer.datamodule.openings\n"
        "    b = trainer.lightning_module\n"
        "    c = getattr(pl_module, 'last_stats', {})\n"
        "    d = getattr(self._trainer, 'datamodule', None)\n"
        "    e = getattr(trainer.loggers[0], 'log_dir', None)\n"
    )
    found = sorted(line.split(":")[0] for line in _reaches_through_the_trainer(planted))
    assert found == ["line 2", "line 3", "line 4", "line 5"]  # the loggers' getattr is allowed


def test_help_and_import_tonics_import_nothing_heavy():
    code = (
        "import sys, tonics\n"
        "from tonics.cli import cli_main\n"
        "cli_main(['--help'])\n"
        "from tonics.commands import retrieval, export, compare\n"
        "heavy = [m for m in ('torch', 'lightning', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "compare" in result.stdout and "retrieval" in result.stdout


def test_import_tonics_still_registers_the_model_type_with_transformers():
    code = (
        "import tonics\n"
        "from transformers import AutoConfig\n"
        "from tonics.model.hf_model import MODEL_TYPE, TonicsDualEncoderConfig\n"
        "assert AutoConfig.for_model(MODEL_TYPE).__class__ is TonicsDualEncoderConfig\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
