"""The import graph of `steps/` is one-way: shared pieces, then datasets, then metrics and models,
then reports, then the steps' entry points.

Read from the source (every import, also those inside functions), so a lazy import cannot hide a
cycle. A module may import its own package and the layers below it, never a layer above.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

STEPS = Path(__file__).resolve().parents[1] / "steps"

# The layer of each package under steps/ ("shared" is the loose modules of steps/ itself).
LAYERS = {
    "shared": 0,
    "datasets": 1,
    "metrics": 2,
    "models": 2,
    "reports": 3,
    # The steps: one package per entry point (`python -m steps.NAME`).
    "record": 4, "train": 4, "evaluate": 4, "select": 4, "test": 4, "notify": 4,
}


def _unit(module: str) -> str | None:
    """The package a dotted module name belongs to, or None outside steps."""
    parts = module.split(".")
    if parts[0] != "steps" or len(parts) == 1:
        return None
    return parts[1] if (STEPS / parts[1]).is_dir() else "shared"


def _imports() -> dict[str, set[tuple[str, str]]]:
    """package -> {(imported package, importing file)}, across package boundaries."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in STEPS.rglob("*.py"):
        relative = path.relative_to(STEPS.parent)
        here = _unit(".".join(relative.with_suffix("").parts)) or "shared"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from steps import x` names module x; `from steps.a import b` names package a.
                names = ([f"steps.{alias.name}" for alias in node.names] if node.module == "steps"
                         else [node.module])
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("workflows", "trainyard"):
                    edges[here].add(("orchestration", str(relative)))
                there = _unit(name)
                if there and there != here:
                    edges[here].add((there, str(relative)))
    return edges


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in STEPS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= LAYERS.keys(), f"give {sorted(packages - LAYERS.keys())} a layer in LAYERS"


def test_no_step_code_imports_the_orchestration_side() -> None:
    # The step images hold steps/ alone (images/*/Dockerfile copies it, not workflows/).
    offenders = sorted(f for targets in _imports().values() for there, f in targets if there == "orchestration")
    assert offenders == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    upward = sorted(
        f"{f} imports steps.{there}"
        for there, f in _imports().get(package, ())
        if there != "orchestration" and LAYERS[there] > LAYERS[package]
        or (LAYERS[there] == LAYERS[package] and LAYERS[package] < 4)
    )
    assert upward == []


def test_the_steps_import_each_other_without_a_cycle() -> None:
    # Steps may share code (select concludes as evaluate does), but one way only.
    graph = {u: {t for t, _ in targets if t in LAYERS and LAYERS[t] == 4}
             for u, targets in _imports().items() if LAYERS.get(u) == 4}
    seen: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node in seen:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, (*path, node))
        seen.add(node)

    for start in sorted(graph):
        visit(start, ())
