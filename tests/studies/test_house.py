"""House rules that keep the code easy to change: no import circle between study and points."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_points_owns_the_point_types_and_never_imports_study() -> None:
    assert "attnsim.studies.study" not in _imported_modules(ROOT / "studies" / "points.py")
    assert "attnsim.studies.points" in _imported_modules(ROOT / "studies" / "study.py")
