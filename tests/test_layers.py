"""The package's layers, lowest first, and a check that no module imports a layer above its own.

A module may import its own layer and any layer below it. The top-level modules (`cli`,
`__main__`, `__init__`) sit above everything. This order is stated here and nowhere else; the
README's Development section draws it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "genseg_cli"
LAYERS = [
    "core",  # errors, config composition, runtime/device, atomic files, progress
    "data",  # datasets: registry, contract, splits, samples, augmentation, prepare
    "nets",  # networks and losses: segmenters, generator and discriminator bodies
    "evaluation",  # metrics and scoring of a segmenter on pairs
    "mlo",  # the hypergradient and upper-level parameters
    "semisup",  # objectives on unlabeled images (mean teacher, FixMatch, cross teaching)
    "generators",  # generator recipes: build, pre-train, train step, synthesise, state
    "methods",  # baseline, separate, genseg: one training step each
    "engine",  # the loop, checkpoints, reopening finished runs
    "report",  # tables and figures over many runs
    "benchmark",  # suites: blocks of runs on one machine, their state, runner and tables
    "stages",  # one module per CLI stage
]
TOP = len(LAYERS)  # cli.py, __main__.py, __init__.py


def layer_of(module: str) -> int:
    """The layer index of a dotted module name inside genseg_cli."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return TOP


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def imported(path: Path, module: str) -> set[str]:
    """Every genseg_cli module imported anywhere in the file (inside functions too)."""
    found = set()
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("genseg_cli"))
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, name] if name else base)
            if name.startswith("genseg_cli"):
                found.add(name)
    return found


def test_every_package_folder_is_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(LAYERS), f"folders without a layer: {sorted(folders - set(LAYERS))}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_no_import_runs_up(module, path):
    own = layer_of(module)
    upward = sorted(m for m in imported(path, module) if layer_of(m) > own)
    assert not upward, f"{module} ({LAYERS[own] if own < TOP else 'top'}) imports {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: a data module importing the engine is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from genseg_cli.engine.loop import fit\n")
    found = imported(bad, "genseg_cli.data.bad")
    assert layer_of(next(iter(found))) > layer_of("genseg_cli.data.bad")


def test_no_module_over_400_lines():
    long = {m: n for m, p in modules() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
