"""Mapping specs: YAML files in ``specs/mappings/`` that say how a cascade runs on an architecture.

A mapping is the Timeloop/AccelForge vocabulary extended to Einsum cascades. Every key but ``name``,
``target`` and ``source`` may be left out; :mod:`mappers.cascade_mapper` fills the gaps by analysis
(pass analysis for the fusion groups, operator support for the binding, live footprints for
placement). Schema (``target: spatial``; a ``target: gpu`` file carries a ``gpu:`` section instead,
free-form here and validated by the GPU mapper)::

    name: fusemax                       # the mapping's name (file stem for built-ins)
    description: "..."
    source: "where the choices come from (paper section, fact sheet)"
    target: spatial                     # spatial | gpu
    cascade: attention-1pass            # the cascade it was written for (a default, not a constraint)
    arch: fusemax-cloud                 # the architecture it was written for (a default)
    sizes: {M0: pe2d.rows}              # values for the cascade's shape symbols the workload leaves open
    loops:                              # the loop nest, outermost first
      - {rank: p, level: dram}                       # factor omitted: what the other p loops leave
      - {rank: m1, level: dram}                      # the iterative rank: one K/V tile per iteration
      - {rank: p, factor: fit, level: global_buffer} # fit: all, or the largest power of two that fits
      - {rank: m0, spatial: rows}                    # spatial over the 2D array's rows
      - {rank: p, factor: pe2d.cols, spatial: cols}  # ... its columns (and the 1D array's lanes)
    binding:                            # unit -> its Einsums, in issue order
      pe2d: [BQK, LM, SLN, SLD, SLNV]
      pe1d: [RM, PRM, SPD, SPNV, RD, RNV, AV]
    pipelining:
      tile_waits_for: []                # Einsums of tile d that tile d+1's first Einsum waits for
                                        # ([]: Fig. 4's epochs -- units overlap tiles freely)
      drain: {}                         # Einsum -> extra cycles (expression) its result takes to leave
                                        # the array before its consumers may start
      serial: false                     # true: each Einsum waits for the one before it in program order
                                        # (FlashAttention-2: GEMM -> softmax -> GEMM, no unit overlap)
    placement:                          # tensor -> levels (outermost first) and buffering
      Q:   {levels: [global_buffer], buffering: single}
      BK:  {levels: [global_buffer], buffering: double}
      RM:  {levels: [global_buffer, pe1d.register_file], read_by: [RM]}
      BQK: {levels: [pe]}
    charge: [global_buffer.read, global_buffer.write, pe1d.register_file.write, dram.read, dram.write]
    closed_form:                        # what closed-form mode (the artifact's analytical model) drops
      drop_first_deps: []               # Einsums whose first-tile dependencies are dropped (pipeline fill)
      drop_last: [RD, RNV]              # Einsums of the very last tile that take zero cycles (drain)

Levels: ``dram``, ``global_buffer``, ``pe1d.register_file``, ``pe2d.register_file`` and ``pe`` (held in
the producing PE's own registers or forwarded to the next operation: no storage access). A tensor is
written to every level listed; its readers read the first (outermost) one -- only those in
``read_by`` when given, the others get it from registers. ``charge`` lists the access actions the
energy model counts (default: every one the architecture prices).

Expressions (``factor``, ``sizes``, ``drain``): numbers, the cascade's shape symbols (``M``, ``P``,
``E`` ...) and architecture values (``pe2d.rows``, ``pe2d.cols``, ``pe1d.size``, ``word_bytes``,
``global_buffer.capacity_bytes``) joined by ``+ - * / // ( )``; they must come out as whole numbers.

Every error is a :class:`mappers.errors.MappingError`, one line naming the file and the key.
"""
from __future__ import annotations

import ast
import functools
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, ValidationError, field_validator

from attnsim.archsim.spec import NonEmptyText, SpecDocument, Text, resolve_named_file
from attnsim.archsim.spec import _Section as Section
from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import format_validation_error, read_mapping_file

MAPPINGS_DIR: Path = Path(str(resources.files("attnsim.specs").joinpath("mappings")))
"""Where :func:`load_mapping` looks up mappings given by name (the file stem)."""

LEVELS: tuple[str, ...] = ("dram", "global_buffer", "pe1d.register_file", "pe2d.register_file", "pe")
"""Storage levels a tensor can be placed at, outermost first."""

SPATIAL_DIMS: tuple[str, ...] = ("rows", "cols")
"""Array dimensions a spatial loop can map to (``cols`` also spreads over the 1D array's lanes)."""

UNITS: tuple[str, ...] = ("pe2d", "pe1d")
"""Compute units of a spatial accelerator an Einsum can be bound to."""

Expression = int | str
"""A whole number, or arithmetic of shape symbols and architecture values (module docstring)."""

ARCH_VALUES: dict[str, str] = {
    "pe2d.rows": "arrays.pe2d.rows", "pe2d.cols": "arrays.pe2d.cols", "pe1d.size": "arrays.pe1d.size",
    "word_bytes": "word_bytes", "global_buffer.capacity_bytes": "global_buffer.capacity_bytes",
}
"""Architecture values an expression may use -> their key in the arch spec."""


def _check_expression(value: object) -> Expression:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a whole number or an arithmetic expression, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"expected a positive whole number, got {value}")
        return value
    try:
        _names_in(ast.parse(value, mode="eval"))
    except (SyntaxError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise ValueError(f"cannot read expression {value!r} ({reason})") from None
    return value


_ALLOWED_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _names_in(node: ast.AST) -> set[str]:
    """The names an expression uses; ValueError for anything but arithmetic."""
    if isinstance(node, ast.Expression):
        return _names_in(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return set()
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name is None:
            raise ValueError("expected a name such as M or pe2d.rows")
        return {name}
    if isinstance(node, ast.BinOp) and isinstance(node.op, _ALLOWED_OPS):
        return _names_in(node.left) | _names_in(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _names_in(node.operand)
    raise ValueError("only whole numbers, names and + - * / // ( ) are allowed")


def expression_names(expression: Expression) -> set[str]:
    """The shape symbols and architecture values an expression uses."""
    return set() if isinstance(expression, int) else _names_in(ast.parse(expression, mode="eval"))


def evaluate_expression(expression: Expression, values: Mapping[str, int], where: str) -> int:
    """The whole-number value of ``expression`` with ``values`` for its names; MappingError naming
    ``where`` (file and key) for an unknown name or a result that is not a positive whole number."""
    if isinstance(expression, int):
        return expression
    from fractions import Fraction

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _dotted(node)
            if name not in values:
                known = ", ".join(sorted(values))
                raise MappingError(f"{where}: unknown name '{name}' in '{expression}' (known: {known})")
            return Fraction(values[name])
        if isinstance(node, ast.UnaryOp):
            return -walk(node.operand)
        assert isinstance(node, ast.BinOp)
        left, right = walk(node.left), walk(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise MappingError(f"{where}: division by zero in '{expression}'")
        return left / right if isinstance(node.op, ast.Div) else Fraction(left // right)

    value = walk(ast.parse(expression, mode="eval"))
    if value.denominator != 1 or value < 1:
        raise MappingError(f"{where}: '{expression}' = {value}; expected a positive whole number")
    return int(value)


# --------------------------------------------------------------------------------------------------
# The models.


class Loop(Section):
    """One loop of the nest: ``factor`` iterations over (part of) cascade rank ``rank``.

    ``factor``: a whole number, an expression, ``fit`` (all of what is left of the rank when its live
    tensors fit the loop's ``level``, else the largest power of two that fits) or omitted (the ceiling
    of what the other loops over the rank leave; the last tile may be partial). ``level``: the storage level whose tile the loop steps through (``dram``: each iteration
    brings a new tile of the tensors it indexes on chip; ``global_buffer``: the tile stays in the
    buffer). ``spatial``: the array dimension the loop runs across (a spatial loop has no level).
    """

    rank: NonEmptyText
    factor: Expression | Literal["fit"] | None = None
    level: Literal["dram", "global_buffer"] | None = None
    spatial: Literal["rows", "cols"] | None = None

    @field_validator("factor", mode="before")
    @classmethod
    def _factor(cls, value: object) -> object:
        if value is None or value == "fit":
            return value
        return _check_expression(value)


class Pipelining(Section):
    """Software pipelining between tiles and units (FuseMax Fig. 4's epochs)."""

    tile_waits_for: list[NonEmptyText] = []
    drain: dict[NonEmptyText, Expression] = {}
    serial: bool = False

    @field_validator("drain", mode="before")
    @classmethod
    def _drain(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {key: _check_expression(item) for key, item in value.items()}
        return value


class Placement(Section):
    """Where one tensor lives: the levels it is written to (outermost first), its buffering, and
    which Einsums read it from the outermost level (None: all of them)."""

    levels: list[Literal["dram", "global_buffer", "pe1d.register_file", "pe2d.register_file", "pe"]] = \
        Field(min_length=1)
    buffering: Literal["single", "double"] = "single"
    read_by: list[NonEmptyText] | None = None


class ClosedForm(Section):
    """What closed-form mode drops: first-tile dependencies (fill) and last-tile cycles (drain)."""

    drop_first_deps: list[NonEmptyText] = []
    drop_last: list[NonEmptyText] = []


class MappingSpec(SpecDocument):
    """A validated mapping file (module docstring). Build it with :func:`load_mapping`."""

    name: NonEmptyText
    description: Text = ""
    source: NonEmptyText
    target: Literal["spatial", "gpu"]
    cascade: NonEmptyText | None = None
    arch: NonEmptyText | None = None
    sizes: dict[NonEmptyText, Expression] = {}
    loops: list[Loop] | None = None
    binding: dict[Literal["pe2d", "pe1d"], list[NonEmptyText]] | None = None
    pipelining: Pipelining = Pipelining()
    placement: dict[NonEmptyText, Placement] = {}
    charge: list[NonEmptyText] | None = None
    closed_form: ClosedForm = ClosedForm()
    gpu: dict[str, Any] | None = None

    @field_validator("sizes", mode="before")
    @classmethod
    def _sizes(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {key: _check_expression(item) for key, item in value.items()}
        return value

    def bound_unit(self, einsum: str) -> str | None:
        """The unit the file binds ``einsum`` to, or None."""
        for unit, einsums in (self.binding or {}).items():
            if einsum in einsums:
                return unit
        return None

    def to_yaml_dict(self) -> dict[str, Any]:
        """The mapping as plain data for YAML (defaults left out)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


# --------------------------------------------------------------------------------------------------
# Loading.


def _is_mapping_file(path: Path) -> bool:
    """Mapping specs have a top-level ``target:`` key (FLAT's configuration tables live alongside)."""
    return any(line.startswith("target:") for line in path.read_text(encoding="utf-8").splitlines())


def available_mappings() -> list[str]:
    """Names (file stems) of the mapping specs shipped in ``specs/mappings/``."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml") if _is_mapping_file(p))


def mapping_from_data(data: Mapping[str, Any], origin: str) -> MappingSpec:
    """Validate a mapping given as plain data; MappingError naming ``origin`` and the key."""
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{origin}: {format_validation_error(exc)}") from None
    spec._origin = origin
    if spec.target == "gpu" and spec.gpu is None:
        raise MappingError(f"{origin}: gpu: missing required key (a target: gpu mapping needs a gpu section)")
    duplicates = [x for unit in (spec.binding or {}).values() for x in unit]
    for name in duplicates:
        if duplicates.count(name) > 1:
            raise MappingError(f"{origin}: binding: Einsum '{name}' is bound to more than one unit; "
                               "expected each Einsum once")
    return spec


def load_mapping(name_or_path: str | Path) -> MappingSpec:
    """Load and validate a mapping: a YAML path, or the name of one in ``specs/mappings/``. Read once
    per file version (cached by path and modification time; a MappingSpec is immutable)."""
    text = str(name_or_path)
    builtin = MAPPINGS_DIR / f"{text}.yaml"
    known = [text] if "/" not in text and not text.endswith((".yaml", ".yml")) and builtin.is_file() \
        and _is_mapping_file(builtin) else available_mappings()   # list the folder only when needed
    path, display = resolve_named_file(name_or_path, MAPPINGS_DIR, "mapping", known, MappingError)
    return _load(str(path), display, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _load(path: str, display: str, stamp: int) -> MappingSpec:
    return mapping_from_data(read_mapping_file(Path(path), display), display)


__all__ = ["ARCH_VALUES", "ClosedForm", "Expression", "LEVELS", "Loop", "MAPPINGS_DIR", "MappingSpec",
           "Pipelining", "Placement", "SPATIAL_DIMS", "UNITS", "available_mappings", "evaluate_expression",
           "expression_names", "load_mapping", "mapping_from_data"]
