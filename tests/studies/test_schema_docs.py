"""docs/reference/*.md are what the pydantic models generate (they cannot drift), and cover every key."""
from __future__ import annotations

from pathlib import Path

from attnsim.studies import schema_docs

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"


def test_committed_reference_docs_equal_the_generated_ones() -> None:
    messages: list[str] = []
    assert schema_docs.main(["--check", "--out", str(REFERENCE)], write=messages.append) == 0, messages


def test_check_reports_a_stale_page(tmp_path: Path) -> None:
    assert schema_docs.main(["--out", str(tmp_path)], write=lambda _: None) == 0
    (tmp_path / "arch.md").write_text("stale\n", encoding="utf-8")
    messages: list[str] = []
    assert schema_docs.main(["--check", "--out", str(tmp_path)], write=messages.append) == 1
    assert "arch.md" in messages[0]


def test_every_key_of_every_schema_model_is_documented() -> None:
    from pydantic import BaseModel

    def models(root: type) -> list[type]:
        import typing

        from attnsim.archsim.errors import _unwrap_optional

        found: list[type] = []
        stack = [root]
        while stack:
            model = stack.pop()
            if model in found:
                continue
            found.append(model)
            for field in model.model_fields.values():
                pending = [field.annotation]
                while pending:
                    annotation = _unwrap_optional(pending.pop())
                    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                        stack.append(annotation)
                    else:
                        pending.extend(typing.get_args(annotation))
        return found

    for schema in schema_docs.SCHEMAS:
        text = (REFERENCE / f"{schema.slug}.md").read_text(encoding="utf-8")
        for model in models(schema_docs._model(schema.model)):
            section = text.split(f"## `{model.__name__.lstrip('_')}`", 1)[1].split("\n## ", 1)[0]
            for name in model.model_fields:
                assert f"| `{name}` |" in section, (schema.slug, model.__name__, name)
    index = (REFERENCE / "README.md").read_text(encoding="utf-8")
    assert all(f"({schema.slug}.md)" in index for schema in schema_docs.SCHEMAS)
