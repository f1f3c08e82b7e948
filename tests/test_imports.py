"""No import circle among the modules of pipeline/, flows/ and schemas/ (imports read from source)."""

from __future__ import annotations

from pathlib import Path

from pipeline.imports import find_cycle, import_graph, reachable


def test_no_import_circle_among_the_projects_modules() -> None:
    graph = import_graph()
    assert {"pipeline.run", "pipeline.review", "flows.extract_flow", "schemas.records"} <= set(graph)
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph) or [])}"


def test_the_review_page_and_terminal_output_do_not_import_the_run_back() -> None:
    graph = import_graph()
    assert "pipeline.run" not in reachable("pipeline.review", graph)
    assert "pipeline.review" in graph["pipeline.run"]  # the run publishes its review page
    assert "pipeline.run" in graph["pipeline.terminal"] and "pipeline.terminal" not in reachable("pipeline.run", graph)
    assert not {m for m in reachable("pipeline.run", graph) if m.startswith("flows.")}, "pipeline/ never imports flows/"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_walker_finds_circles_through_function_level_and_relative_imports(tmp_path: Path) -> None:
    base = {"pipeline/__init__.py": "", "flows/__init__.py": "", "schemas/__init__.py": ""}
    lazy = _tree(tmp_path / "lazy", {**base, "pipeline/a.py": "from pipeline.b import x\n", "pipeline/b.py": "def f():\n    from pipeline import a\n"})
    assert find_cycle(import_graph(lazy)) == ["pipeline.a", "pipeline.b", "pipeline.a"]
    relative = _tree(tmp_path / "rel", {**base, "flows/a.py": "from .b import y\n", "flows/b.py": "import flows.c\n", "flows/c.py": "from . import a\n"})
    assert find_cycle(import_graph(relative)) == ["flows.a", "flows.b", "flows.c", "flows.a"]
    typing_only = _tree(tmp_path / "typing", {
        **base, "schemas/a.py": "from schemas.b import x\n",
        "schemas/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from schemas.a import y\n",
    })  # fmt: skip
    assert find_cycle(import_graph(typing_only)) is None, "imports for type checkers only are not a circle"
