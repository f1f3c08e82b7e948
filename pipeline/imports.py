"""The project's own import graph, read from the source files (never by importing them).

`import_graph()` maps each module of `pipeline/`, `flows/` and `schemas/` to the project
modules it imports (at module level or inside a function, but not under `if TYPE_CHECKING:`).
It serves two purposes: the extractor version digests the source of every module the
extraction reaches (`pipeline.version`), and a test fails on any import circle
(`tests/test_imports.py`).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("pipeline", "flows", "schemas")
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path = SOURCE_ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the project's packages under `root`."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every dotted name an import statement in `tree` names (relative imports resolved)."""
    names: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def import_graph(root: Path = SOURCE_ROOT) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (a package's `__init__` counts as the package)."""
    files = module_files(root)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        named = _imported_names(tree, module, path.name == "__init__.py")
        graph[module] = {name for name in named if name in files and name != module}
    return graph


def reachable(start: str, graph: dict[str, set[str]]) -> set[str]:
    """`start` and every project module it imports, directly or not."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first module repeated at the end), or None when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(graph.get(module, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None
