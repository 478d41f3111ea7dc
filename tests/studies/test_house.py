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


# --------------------------------------------------------------------------------------------------
# Every schema field is read by the code (a field nothing reads is a promise the model does not keep).

PROVENANCE_FIELDS = {"source", "sources", "justification", "estimate", "description"}
"""Fields that document a number (where it comes from, whether it is an estimate) rather than feed the
model: read by people and by the 'every number has a source' checks, not by the cost model."""

CODE_DIRS = ("einsum_ir", "archsim", "mappers", "studies")
DISPLAY_ONLY = ("cli",)
"""Printing a field in the command line is not using it: studies/cli is not searched."""


def _schema_models() -> dict[type, list[str]]:
    import typing

    from pydantic import BaseModel

    from attnsim.archsim.errors import _unwrap_optional
    from attnsim.archsim.gpu_spec import GpuSpec
    from attnsim.archsim.spec import Arch
    from attnsim.mappers.flat_config import _Table
    from attnsim.mappers.workloads import Workload
    from attnsim.studies.study import StudySpec

    found: dict[type, list[str]] = {}

    def walk(model: type) -> None:
        if model in found:
            return
        found[model] = list(model.model_fields)
        for field in model.model_fields.values():
            stack = [field.annotation]
            while stack:
                annotation = _unwrap_optional(stack.pop())
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    walk(annotation)
                else:
                    stack.extend(typing.get_args(annotation))

    for root in (Arch, GpuSpec, Workload, _Table, StudySpec):
        walk(root)
    return found


def _names_read() -> set[str]:
    """Attribute names read (``x.name``) and string constants (``d["name"]``, ``getattr(x, "name")``)."""
    names: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if set(path.relative_to(ROOT).parts) & set(DISPLAY_ONLY):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                    names.add(node.attr)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names.add(node.value)
    return names


def test_every_schema_field_is_read_by_the_code() -> None:
    read = _names_read()
    unread = [f"{model.__name__}.{name}" for model, fields in _schema_models().items() for name in fields
              if name not in read and name not in PROVENANCE_FIELDS]
    assert unread == []


def test_the_fields_the_issue_named_are_gone() -> None:
    from attnsim.archsim.spec import GlobalBuffer

    assert set(GlobalBuffer.model_fields) == {"capacity_bytes", "row_bytes"}
