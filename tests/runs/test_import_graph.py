"""The run lifecycle package imports nothing that imports it back: read from the source, every import counted,
also those inside functions (a lazy import still makes a cycle, only a later one)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "workbench"


def module_graph() -> dict[str, set[str]]:
    """Each workbench module and the workbench modules it imports (a package stands for its __init__)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in map(known, targets) if t and t != name}
    return graph


def cycles_through(graph: dict[str, set[str]], prefix: str) -> list[list[str]]:
    """The strongly connected components (of more than one module) that hold a module under `prefix`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 and any(m.startswith(prefix) for m in component):
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_runs_through_the_run_lifecycle():
    graph = module_graph()
    assert "workbench.runs.store" in graph and "workbench.runs.worker" in graph["workbench.runs.launcher"]
    assert cycles_through(graph, "workbench.runs") == []


def test_the_check_finds_a_cycle_when_there_is_one():
    graph = module_graph()
    graph["workbench.runs.files"].add("workbench.runs.worker")  # the worker imports files: now a cycle
    assert cycles_through(graph, "workbench.runs") != []
