"""Study specs: a YAML file that says which points of a design space to evaluate.

A study (see ``docs/studies.md`` and ``specs/studies/gemm-example.yaml``)::

    name: buffer-vs-bandwidth      # also the default output directory out/<name>
    description: ...
    kind: gemm                     # a point kind's name (studies.points registry; never an import path)
    base: {arch: fusemax-cloud}    # fixed parameters of every point
    grid:                          # crossed (cartesian product), in this order
      dataflow: [os, ws]
      M: [64, 256]
    # (or a list of such mappings: several grids, each crossed on its own, their points one after
    #  the other -- e.g. a design grid plus a differently shaped sizing sweep in one study)
    sweep:                         # architecture overrides (--set style), crossed after the grid
      arrays.pe2d.rows: [16, 32]
    derived:                       # computed from each point: arithmetic of earlier keys (einsum_ir.arith)
      arrays.pe2d.cols: "rows"     # a dotted key may be named by its last component
      global_buffer.capacity_bytes: "rows * 4096"
    plots: []                      # free-form mappings for the plotting commands
    point_timeout_s: 3600          # wall-clock limit of one point (default 3600; null: none)

A *point* is base + one combination of the grid and sweep values + the derived values, as one mapping
of parameter name -> value, in that order. Axes are crossed with the first axis varying slowest; with
a list of grids, each grid (crossed with the sweep) gives its points in turn.

Everything here is checked before anything runs: problems raise :class:`studies.errors.UsageError`
with one line naming the file and the key path (``study.yaml: grid.seq: expected a non-empty list``).
Kind parameters and architecture overrides are checked by :func:`studies.points.resolve_points`.
"""
from __future__ import annotations

import itertools
import re
from importlib import resources
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from attnsim.archsim.errors import SpecError, describe_value as _describe, format_validation_error
from attnsim.archsim.spec import Arch, is_arch_key, read_yaml_mapping, resolve_named_file
from attnsim.einsum_ir.arith import FUNCTIONS as ARITH_FUNCTIONS
from attnsim.einsum_ir.arith import Expression, compile_arithmetic
from attnsim.studies.errors import UsageError
from attnsim.studies.points import get_kind  # points owns the point types and never imports this module

SECTIONS = ("base", "grid", "sweep", "derived")
"""Where a point parameter can come from, in the order a point lists them."""


def one_line(text: object) -> str:
    """``text`` with line breaks folded into spaces (messages are printed as one line)."""
    return " ".join(str(text).split("\n")).strip()


# --------------------------------------------------------------------------------------------------
# Field types with one-line messages.


def _reject(expected: str, value: object) -> PydanticCustomError:
    return PydanticCustomError("study_value", "expected {expected}, got {got}",
                               {"expected": expected, "got": _describe(value)})


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _study_name(value: object) -> str:
    """A name of letters, digits, '.', '_' or '-' (it names the output directory)."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise _reject("a name of letters, digits, '.', '_' or '-' (it names the output directory)",
                      value)
    return value


def _text(value: object) -> str:
    """A string."""
    if not isinstance(value, str):
        raise _reject("a string", value)
    return value


def _kind_ref(value: object) -> str:
    """A point kind name (gemm, attention, gpu, llm) or module:function."""
    if not isinstance(value, str) or not value.strip():
        raise _reject("a point kind name (e.g. gemm)", value)
    return value.strip()


def _parameter_mapping(value: object) -> dict[str, Any]:
    """A mapping of parameter -> value (dotted names are architecture keys)."""
    if not isinstance(value, Mapping):
        raise _reject("a mapping of parameter -> value", value)
    for key in value:
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise _reject("parameter names that are non-empty strings (dotted for architecture keys)",
                          key)
    return dict(value)


def _axes(value: object) -> dict[str, list[Any]]:
    """A mapping of parameter -> non-empty list of distinct values."""
    axes = _parameter_mapping(value)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise PydanticCustomError("study_axis", "{key}: expected a non-empty list of values, got "
                                      "{got}", {"key": key, "got": _describe(values)})
        seen: list[Any] = []
        for item in values:
            if any(item == other and type(item) is type(other) for other in seen):
                raise PydanticCustomError("study_axis", "{key}: value {item} appears twice",
                                          {"key": key, "item": _describe(item)})
            seen.append(item)
    return axes


def _grids(value: object) -> list[dict[str, list[Any]]]:
    """One grid (a mapping of parameter -> values) or a non-empty list of grids; always a list."""
    if not isinstance(value, list):
        return [_axes(value)]
    if not value:
        raise _reject("a mapping of parameter -> list of values, or a non-empty list of such mappings",
                      value)
    grids: list[dict[str, list[Any]]] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise PydanticCustomError("study_axis", "{key}: expected a mapping of parameter -> list of "
                                      "values, got {got}", {"key": str(index), "got": _describe(item)})
        try:
            grids.append(_axes(item))
        except PydanticCustomError as exc:
            context = dict(exc.context or {})
            if exc.type == "study_axis":    # "{key}: ..." -> "{index}.{key}: ..."
                context["key"] = f"{index}.{context.get('key', '')}"
                raise PydanticCustomError("study_axis", exc.message_template, context) from None
            raise PydanticCustomError("study_axis", "{key}: " + exc.message_template,
                                      {**context, "key": str(index)}) from None
    return grids


def _expressions(value: object) -> dict[str, str]:
    """A mapping of parameter -> arithmetic expression of earlier parameters (e.g. 'rows * 4096')."""
    exprs = _parameter_mapping(value)
    out: dict[str, str] = {}
    for key, expr in exprs.items():
        if isinstance(expr, bool) or not isinstance(expr, (str, int, float)) or not str(expr).strip():
            raise PydanticCustomError("study_axis", "{key}: expected an expression (a string such as "
                                      "'rows * 4096' or a number), got {got}",
                                      {"key": key, "got": _describe(expr)})
        out[key] = str(expr)
    return out


DEFAULT_POINT_TIMEOUT_S = 3600.0
"""Wall-clock limit of one point when a study sets none (seconds; ``point_timeout_s: null``: none)."""


def _timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise _reject("a positive number of seconds (or null: no limit)", value)
    return float(value)


def _plots(value: object) -> list[dict[str, Any]]:
    """A list of plot mappings (docs/studies.md)."""
    if not isinstance(value, list):
        raise _reject("a list of plot mappings", value)
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise PydanticCustomError("study_axis", "{key}: expected a mapping, got {got}",
                                      {"key": str(index), "got": _describe(item)})
    return [dict(item) for item in value]


class StudySpec(BaseModel):
    """The top level of a study YAML file: a point is ``base`` + one combination of the ``grid`` (and
    ``sweep``) values + the ``derived`` values; ``kind`` says what a point computes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, PlainValidator(_study_name)]
    description: Annotated[str, PlainValidator(_text)] = ""
    kind: Annotated[str, PlainValidator(_kind_ref)]
    base: Annotated[dict[str, Any], PlainValidator(_parameter_mapping)] = {}
    grid: Annotated[list[dict[str, list[Any]]], PlainValidator(_grids)] = Field(
        default_factory=lambda: [{}])
    sweep: Annotated[dict[str, list[Any]], PlainValidator(_axes)] = {}
    derived: Annotated[dict[str, str], PlainValidator(_expressions)] = {}
    plots: Annotated[list[dict[str, Any]], PlainValidator(_plots)] = []
    point_timeout_s: Annotated[float | None, PlainValidator(_timeout)] = DEFAULT_POINT_TIMEOUT_S


# --------------------------------------------------------------------------------------------------
# Derived expressions: bounded arithmetic (einsum_ir.arith), never Python's eval.

FUNCTIONS = tuple(ARITH_FUNCTIONS)
"""Functions a derived expression may call."""


@dataclass(frozen=True)
class DerivedExpression:
    """One ``derived`` entry: ``key`` = ``text``, using the parameters ``names`` (full keys)."""

    key: str
    text: str
    expression: Expression

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter keys the expression uses, in order of first use."""
        return self.expression.names

    def evaluate(self, point: Mapping[str, Any]) -> int | float:
        """The value at ``point``: an int when the result is a whole number from exact arithmetic,
        else a float.

        Raises ValueError (one line) if a parameter it uses is not a number, or the expression cannot be
        evaluated within its bounds (einsum_ir.arith) or to a finite number.
        """
        values: dict[str, int | float] = {}
        for name in self.names:
            value = point[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"'{name}' is {_describe(value)}, not a number")
            values[name] = value
        try:
            return self.expression.evaluate(values)
        except ValueError as exc:
            raise ValueError(f"'{self.text}': {exc}") from None


def _aliases(keys: list[str]) -> dict[str, str]:
    """name usable in an expression -> parameter key: every key, and the last component of a dotted
    key when no other key has the same last component (and no key is spelt like it)."""
    aliases = {key: key for key in keys}
    lasts: dict[str, list[str]] = {}
    for key in keys:
        if "." in key:
            lasts.setdefault(key.rsplit(".", 1)[1], []).append(key)
    for last, owners in lasts.items():
        if len(owners) == 1 and last not in aliases:
            aliases[last] = owners[0]
    return aliases


def compile_expression(key: str, text: str, known_keys: list[str]) -> DerivedExpression:
    """Parse ``text`` whose names are parameters in ``known_keys`` (or their last components).

    Raises ValueError (one line, without the file) on a bad character, an unknown name, bad syntax or an
    expression over the bounds of :mod:`einsum_ir.arith`.
    """
    return DerivedExpression(key=key, text=text, expression=compile_arithmetic(text, _aliases(known_keys)))


# --------------------------------------------------------------------------------------------------
# The study.


@dataclass(frozen=True)
class Study:
    """A validated study: the spec, where it was read from, and its compiled derived expressions."""

    spec: StudySpec
    path: Path
    display: str
    derived: tuple[DerivedExpression, ...]

    @property
    def name(self) -> str:
        """The study's name (``out/<name>`` by default)."""
        return self.spec.name

    def error(self, where: str, message: str) -> UsageError:
        """A one-line UsageError naming this study's file and the key path ``where``."""
        return UsageError(one_line(f"{self.display}: {where}: {message}" if where
                                   else f"{self.display}: {message}"))

    def section_of(self, key: str) -> str:
        """Which section (base, grid, sweep, derived) gives parameter ``key``."""
        for section in SECTIONS:
            if key in section_keys(self.spec, section):
                return section
        raise KeyError(key)

    @property
    def axis_sets(self) -> list[list[tuple[str, list[Any]]]]:
        """Per grid, (key, values) of every crossed axis: the grid's, then the sweep's, in file order."""
        return [[*grid.items(), *self.spec.sweep.items()] for grid in self.spec.grid]

    @property
    def axes(self) -> list[tuple[str, list[Any]]]:
        """(key, values) of every crossed axis of a one-grid study (the grid's, then the sweep's).

        Raises ValueError for a study with several grids (use :attr:`axis_sets`).
        """
        if len(self.spec.grid) != 1:
            raise ValueError(f"{self.display}: the study has {len(self.spec.grid)} grids; use axis_sets")
        return self.axis_sets[0]

    @property
    def size(self) -> int:
        """Number of points (per grid the product of its axis lengths, summed over the grids)."""
        total = 0
        for axes in self.axis_sets:
            count = 1
            for _, values in axes:
                count *= len(values)
            total += count
        return total

    def points(self) -> Iterator[dict[str, Any]]:
        """Every point as {parameter: value}: base, grid, sweep, derived keys in that order.

        Grid by grid; within one, the first axis varies slowest. Raises UsageError if a derived
        expression cannot be evaluated (or uses a parameter that a grid does not give).
        """
        for grid_index, axes in enumerate(self.axis_sets):
            keys = [key for key, _ in axes]
            for combination in itertools.product(*(values for _, values in axes)):
                point: dict[str, Any] = dict(self.spec.base)
                point.update(zip(keys, combination))
                for derived in self.derived:
                    missing = [name for name in derived.names if name not in point]
                    if missing:
                        raise self.error(f"derived.{derived.key}",
                                         f"uses '{missing[0]}', which grid {grid_index} does not give "
                                         "(every point needs the parameters of every derived entry)")
                    try:
                        point[derived.key] = derived.evaluate(point)
                    except ValueError as exc:
                        shown = ", ".join(f"{name}={point[name]!r}" for name in derived.names)
                        raise self.error(f"derived.{derived.key}", f"{exc} (at {shown})") from None
                yield point


def section_keys(spec: StudySpec, section: str) -> list[str]:
    """The parameter keys that ``section`` gives (for ``grid``: of every grid, first appearance order)."""
    if section == "grid":
        return list(dict.fromkeys(key for grid in spec.grid for key in grid))
    return list(getattr(spec, section))


def _check_sections(spec: StudySpec, display: str) -> None:
    """No parameter in two sections; sweep keys are architecture overrides."""
    seen: dict[str, str] = {}
    for section in SECTIONS:
        for key in section_keys(spec, section):
            if key in seen:
                raise UsageError(f"{display}: {section}.{key}: also given in {seen[key]} (a parameter "
                                 "is fixed, crossed or derived, in one section)")
            seen[key] = section
    for key in spec.sweep:
        if not is_arch_key(key):
            raise UsageError(f"{display}: sweep.{key}: expected an architecture key such as "
                             f"arrays.pe2d.rows (top level one of {', '.join(Arch.model_fields)}); "
                             "kind parameters go under grid")


def _compile_derived(spec: StudySpec, display: str) -> tuple[DerivedExpression, ...]:
    known = [*spec.base, *section_keys(spec, "grid"), *spec.sweep]
    compiled = []
    for key, text in spec.derived.items():
        try:
            compiled.append(compile_expression(key, text, known))
        except ValueError as exc:
            raise UsageError(one_line(f"{display}: derived.{key}: {exc}")) from None
        known.append(key)
    return tuple(compiled)


def study_from_mapping(data: Mapping[str, Any], path: Path, display: str | None = None) -> Study:
    """Validate a study given as a mapping (as read from YAML); errors name ``display`` (default path)."""
    shown = display if display is not None else str(path)
    try:
        spec = StudySpec.model_validate(dict(data))
    except ValidationError as exc:
        raise UsageError(one_line(f"{shown}: {format_validation_error(exc, StudySpec)}")) from None
    _check_sections(spec, shown)
    study = Study(spec=spec, path=path, display=shown, derived=_compile_derived(spec, shown))
    try:
        get_kind(spec.kind)
    except UsageError as exc:
        raise study.error("kind", str(exc)) from None
    return study


STUDIES_DIR = Path(str(resources.files("attnsim.specs").joinpath("studies")))
"""The built-in studies (``specs/studies/``, installed as package data)."""


def available_studies() -> list[str]:
    """Names of the built-in studies (file stems of ``specs/studies/`` that declare a ``kind:``)."""
    return sorted(path.stem for path in STUDIES_DIR.glob("*.yaml")
                  if any(line.startswith("kind:") for line in path.read_text(encoding="utf-8").splitlines()))


def load_study(path_or_name: str | Path) -> Study:
    """Read and validate a study: a YAML path, or the name of a built-in (``paper``, see
    :func:`available_studies`); UsageError (one line, file and key path) on any problem."""
    try:
        path, display = resolve_named_file(path_or_name, STUDIES_DIR, "study", available_studies(),
                                           UsageError)
        if path.parent == STUDIES_DIR and path.stem not in available_studies():
            raise UsageError(f"unknown study '{path_or_name}' (known: {', '.join(available_studies())}; "
                             "or give a path to a .yaml file)")
        data = read_yaml_mapping(path, display)
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    return study_from_mapping(data, path, display)
