"""Reference documentation of every YAML schema, generated from the pydantic models.

    python -m attnsim.studies.schema_docs [--out docs/reference] [--check]

writes one Markdown file per schema (:data:`SCHEMAS`): for each model its docstring and a table of its
keys, their types (a validator's docstring, a linked section for a nested model) and whether they are
required. ``--check`` writes nothing and exits 1 if a file differs from what would be written (the
tests run it, so the docs cannot drift from the models). Adding a schema is one :data:`SCHEMAS` entry.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

__all__ = ["SCHEMAS", "Schema", "render", "render_all", "main"]


@dataclass(frozen=True)
class Schema:
    """One YAML schema: its file name in docs/reference/, title, root model and what to say first."""

    slug: str
    title: str
    model: str           # "module:Class" of the root pydantic model
    intro: str
    examples: str


SCHEMAS: tuple[Schema, ...] = (
    Schema("arch", "Architecture spec (spatial accelerator)", "attnsim.archsim.spec:Arch",
           "A spatial accelerator: a 2D and a 1D PE array, a global buffer, DRAM, and per-action energy "
           "and per-component area tables. Loaded by `attnsim arch`, `attnsim simulate --arch`, "
           "`attnsim.load_arch`; overridden by dotted key (`--set arrays.pe2d.rows=128`).",
           "`specs/arch/fusemax-cloud.yaml`, `specs/arch/flat-cloud.yaml`, `specs/arch/flat-edge.yaml`"),
    Schema("gpu", "GPU spec (`kind: gpu`)", "attnsim.archsim.gpu_spec:GpuSpec",
           "A GPU for `attnsim gpu` and the `gpu` point kind. Every number is a `{value, source}` pair; "
           "calibration constants also say why they are needed.",
           "`specs/arch/h100-sxm.yaml`, `specs/arch/h100-pcie.yaml`, `specs/arch/h200.yaml`"),
    Schema("workload", "Workload spec", "attnsim.mappers.workloads:Workload",
           "The shape of one encoder layer's attention and linear layers: sizes are element counts, "
           "sequence lengths token counts. Every number names its source under `sources`.",
           "`specs/workloads/bert-base.yaml`, `specs/workloads/xlm.yaml`"),
    Schema("study", "Study spec", "attnsim.studies.study:StudySpec",
           "A design-space study for `attnsim sweep` / `attnsim.sweep`: which points to evaluate "
           "(`base` x `grid` x `sweep`, then `derived`) and which figures to draw. Semantics: "
           "[docs/studies.md](../studies.md).",
           "`specs/studies/paper.yaml`, `specs/studies/gemm-example.yaml`, `specs/studies/gpu.yaml`"),
)
"""The schemas documented under docs/reference/ (wt-14 adds the mapping schema here)."""


def _model(ref: str) -> type:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else ""


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _anchor(model: type) -> str:
    return model.__name__.lower().lstrip("_")


def _validator_text(metadata: Any) -> str | None:
    """The docstring of a ``PlainValidator``'s function (what the value must be), if there is one."""
    for extra in metadata:
        func = getattr(extra, "func", None)
        if callable(func):
            text = _first_line(func.__doc__) or func.__name__.strip("_").replace("_", " ")
            return text[:1].lower() + text[1:].rstrip(".")
    return None


def _type_text(annotation: Any, queue: list[type]) -> str:
    """How a field's type reads in the table; nested models are queued for their own section."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        return _validator_text(extras) or _type_text(base, queue)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(arg, queue) for arg in typing.get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(f"`{json.dumps(arg)}`" for arg in typing.get_args(annotation))
    if origin is dict:
        return f"mapping of name -> {_type_text(typing.get_args(annotation)[1], queue)}"
    if origin in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"list of {_type_text(args[0], queue)}" if args else "list"
    if _is_model(annotation):
        if annotation not in queue:
            queue.append(annotation)
        return f"[`{annotation.__name__.lstrip('_')}`](#{_anchor(annotation)})"
    if annotation is type(None):
        return "null"
    return {int: "integer", float: "number", str: "string", bool: "true or false"}.get(annotation, "any value")


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    return f"optional, default `{json.dumps(default, default=str)}`"


def _section(model: type, queue: list[type], top: bool) -> list[str]:
    doc = re.sub(r":(?:func|meth|class|data|mod):", "", inspect.cleandoc(model.__doc__ or ""))
    lines = [f"## `{model.__name__.lstrip('_')}`" + (" (top level)" if top else ""), ""]
    if doc:
        lines += [doc.replace("``", "`"), ""]
    lines += ["| key | type | |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        text = (_validator_text(field.metadata) or _type_text(field.annotation, queue)).replace("|", "\\|")
        lines.append(f"| `{name}` | {text} | {_default_text(field)} |")
    return [*lines, ""]


def render(schema: Schema) -> str:
    """The Markdown reference of one schema (deterministic: the models' field order)."""
    root = _model(schema.model)
    lines = [f"# {schema.title}", "",
             "<!-- Generated from the pydantic models by `python -m attnsim.studies.schema_docs`; "
             "do not edit by hand. -->", "",
             schema.intro, "", f"Built-in examples: {schema.examples}.", ""]
    queue: list[type] = [root]
    done: list[type] = []
    while len(done) < len(queue):
        model = queue[len(done)]
        lines += _section(model, queue, top=model is root)
        done.append(model)
    return "\n".join(lines).rstrip() + "\n"


def render_all() -> dict[str, str]:
    """file name -> contents, for every schema and the index ``README.md``."""
    files = {f"{schema.slug}.md": render(schema) for schema in SCHEMAS}
    index = ["# YAML schema reference", "",
             "<!-- Generated by `python -m attnsim.studies.schema_docs`; do not edit by hand. -->", "",
             "One page per kind of YAML file attnsim reads, generated from the pydantic models that "
             "validate it (so the pages cannot drift from the code):", ""]
    index += [f"- [{schema.title}]({schema.slug}.md)" for schema in SCHEMAS]
    files["README.md"] = "\n".join(index) + "\n"
    return files


def main(argv: list[str] | None = None, write: Callable[[str], Any] = print) -> int:
    """Write (or with ``--check`` compare) docs/reference/*.md; exit 1 when ``--check`` finds a difference."""
    parser = argparse.ArgumentParser(prog="python -m attnsim.studies.schema_docs",
                                     description="Generate docs/reference/*.md from the spec models.")
    parser.add_argument("--out", default="docs/reference", help="output folder (default docs/reference)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    out = Path(args.out)
    stale = []
    for name, text in render_all().items():
        path = out / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        write(f"wrote {path}")
    if stale:
        write("out of date (run python -m attnsim.studies.schema_docs): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
