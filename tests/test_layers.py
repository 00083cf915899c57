"""The import structure: no cycles, and no import from a lower floor to a higher one.

The graph is read from the source (every ``import`` at any depth: module level, inside
functions, under ``TYPE_CHECKING``), so a cycle that only closes at run time shows up too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "nasforge"

UPPER = ("api", "cli", "plan", "demo", "reporting", "exporting", "dashboard", "_builtins")
"""What the loop and the concepts below it never import."""

LOWER = (
    "architecture",
    "artifacts",
    "benchmarks",
    "budget",
    "config",
    "constraint",
    "errors",
    "evaluators",
    "execution",
    "experiment",
    "heartbeat",
    "latency",
    "objective",
    "oneshot",
    "pareto",
    "paths",
    "proxies",
    "registry",
    "result",
    "spaces",
    "stopping",
    "store",
    "strategies",
    "tasks",
    "train",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _target(name: str) -> str | None:
    """The nasforge module an imported name refers to (a module, else its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.startswith("nasforge"):
                target = _target(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    assert len(MODULES) > 60
    assert "nasforge.spaces.base" in GRAPH["nasforge.spaces.gnn"]
    assert "nasforge.spaces.gnn_model" in GRAPH["nasforge.spaces.gnn"]  # inside build()


def test_there_is_no_import_cycle() -> None:
    assert _cycles() == []


def _floor(module: str, names: tuple[str, ...]) -> bool:
    return any(module == f"nasforge.{n}" or module.startswith(f"nasforge.{n}.") for n in names)


def test_lower_floors_never_import_upper_ones() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _floor(module, LOWER)
        for target in targets
        if _floor(target, UPPER)
    )
    assert upward == []


@pytest.mark.parametrize(
    "module",
    [
        "nasforge.registry",
        "nasforge.config",
        "nasforge.spaces.base",
        "nasforge.strategies.base",
        "nasforge.tasks.base",
        "nasforge.evaluators.base",
        "nasforge.execution.base",
        "nasforge.store.base",
    ],
)
def test_a_base_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    code = f"import {module}, sys; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"  # contracts and registries do not import torch


def test_importing_nasforge_and_its_cli_does_not_import_torch_or_sqlalchemy() -> None:
    """``--help`` and usage errors answer fast: neither torch nor SQLAlchemy is imported
    before a command needs them (benchmarks/cli_startup.py times it)."""
    code = (
        "import sys, nasforge, nasforge.cli; nasforge.cli.build_parser(); "
        "print('torch' in sys.modules, 'sqlalchemy' in sys.modules, len(nasforge.list_spaces()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    spaces = len(__import__("nasforge").list_spaces())
    assert proc.stdout.split() == ["False", "False", str(spaces)]
