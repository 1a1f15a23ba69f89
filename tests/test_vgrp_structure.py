"""Layout clean-ups of issue 9: no import cycle inside envs/vgrp (core <-> solver was one) and a single Verdict
class for every verifier (envs/verdict.py). Checked statically on the source, so nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(tree: ast.AST, known: set[str]) -> set[str]:
    """Modules in ``known`` imported anywhere in the file (also inside functions), outside ``if TYPE_CHECKING:``."""
    out: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out & known


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_vgrp_modules_have_no_import_cycle():
    files = sorted((ROOT / "envs" / "vgrp").rglob("*.py"))
    names = {_module_name(f): f for f in files}
    graph = {name: _imported(ast.parse(path.read_text(encoding="utf-8")), set(names)) - {name}
             for name, path in names.items()}
    # a package's __init__ re-exporting its modules is not a cycle: drop edges *into* package inits from their
    # own submodules' point of view (Python runs the parent __init__ first, not in the middle)
    for name in graph:
        graph[name] -= {pkg for pkg in graph if name.startswith(pkg + ".")}
    assert _cycles(graph) == []
    assert "envs.vgrp.core" not in graph["envs.vgrp.solver"]


def test_one_verdict_class():
    defined = []
    for package in ("envs", "tasks", "mmsft"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            defined += [f"{path.relative_to(ROOT)}:{node.name}" for node in ast.walk(tree)
                        if isinstance(node, ast.ClassDef) and node.name.endswith("Verdict")]
    assert defined == ["envs/verdict.py:Verdict"]
