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
    masking: {masked_tiles: skip}       # causal cascades: skip tiles the mask empties (skip | compute)
    pack_gqa: never                     # always: the query heads sharing a K/V head are packed along the
                                        # query rank, one K/V tile load serving the whole group (GQA/MQA)

A multi-pass cascade (e.g. attention-3pass) is mapped with ``groups:`` instead of ``loops:`` -- fusion
groups run one after the other, each a software-pipelined loop (:class:`Group`, :mod:`mappers.cascade_groups`,
docs/mapping.md "Multi-pass mappings")::

    groups:
      - name: qk
        einsums: [QK]
        tile: {m: pe2d.rows, p: pe2d.cols}   # one iteration's extents (ranks left out: whole)
        spatial: {QK: output}                 # output | weight | input | {rows: m, cols: p}
        block_rank: p                         # DRAM-level blocks along p, factor fit (default)
        live: [Q]                             # what a block keeps; staged: double-buffered tiles
        staged: [K, QK]
        traffic: {Q: once, K: per_block}      # once | per_block | per_tile | chip | dram
        spill: auto                           # a fraction or the artifact's rule
        alternatives: [...]                   # choices tried in order (FLAT's rule)
        table: flat-cloud                     # per-point choices where the table has the point

Levels: ``dram``, ``global_buffer``, ``pe1d.register_file``, ``pe2d.register_file`` and ``pe`` (held in
the producing PE's own registers or forwarded to the next operation: no storage access). A tensor is
written to every level listed; its readers read the first (outermost) one -- only those in
``read_by`` when given, the others get it from registers. ``charge`` lists the access actions the
energy model counts (default: every one the architecture prices).

Expressions (``factor``, ``sizes``, ``drain``): numbers, the cascade's shape symbols (``M``, ``P``,
``E`` ...) and architecture values (``pe2d.rows``, ``pe2d.cols``, ``pe1d.size``, ``word_bytes``,
``global_buffer.capacity_bytes``) read by attnsim's one arithmetic evaluator (:mod:`einsum_ir.arith`:
``+ - * / // % **``, parentheses, ``min max floor ceiling sqrt log exp abs``); they must come out as
positive whole numbers.

Every error is a :class:`mappers.errors.MappingError`, one line naming the file and the key.
"""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, ValidationError, field_validator

from attnsim.einsum_ir.arith import Expression as ArithmeticExpression
from attnsim.einsum_ir.arith import compile_arithmetic
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
    _compiled(value)  # ValueError (one line) for anything but the arithmetic of einsum_ir.arith
    return value


@functools.lru_cache(maxsize=4096)
def _compiled(text: str) -> ArithmeticExpression:
    """``text`` read by attnsim's one arithmetic evaluator (:mod:`einsum_ir.arith`), any name admitted:
    which names exist is known only once the cascade and the architecture are."""
    return compile_arithmetic(text)


def expression_names(expression: Expression) -> set[str]:
    """The shape symbols and architecture values an expression uses."""
    return set() if isinstance(expression, int) else set(_compiled(expression).names)


def evaluate_expression(expression: Expression, values: Mapping[str, int], where: str) -> int:
    """The whole-number value of ``expression`` with ``values`` for its names; MappingError naming
    ``where`` (file and key) for an unknown name or a result that is not a positive whole number."""
    if isinstance(expression, int):
        return expression
    compiled = _compiled(expression)
    arguments = tuple(values.get(name) for name in compiled.names)
    key = (expression, arguments)
    if all(type(a) is int for a in arguments):   # whole-number arguments only: 2 and 2.0 hash alike
        hit = _EVALUATED.get(key)
        if hit is not None:
            return hit
    else:
        key = None
    unknown = [name for name in compiled.names if name not in values]
    if unknown:
        known = ", ".join(sorted(values))
        raise MappingError(f"{where}: unknown name '{unknown[0]}' in '{expression}' (known: {known})")
    try:
        value = compiled.evaluate(values)
    except ValueError as exc:
        raise MappingError(f"{where}: {exc} in '{expression}'") from None
    if not isinstance(value, int) or value < 1:
        raise MappingError(f"{where}: '{expression}' = {value}; expected a positive whole number")
    if key is not None:
        if len(_EVALUATED) > 65536:
            _EVALUATED.clear()
        _EVALUATED[key] = value
    return value


_EVALUATED: dict[tuple[str, tuple[int, ...]], int] = {}
"""Values of expressions already evaluated, by (text, the values of its names): a mapper evaluates the
same tile and fill expressions at every point of a sweep."""


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


class Masking(Section):
    """What the nest does with tiles that an index filter of the cascade (a causal mask) leaves empty.

    ``masked_tiles``: ``skip`` (default) runs no operation and loads no K/V tile for a tile whose box of
    rank values fails a filter of every filtered Einsum at every point (fully above the diagonal: the
    recurrence's update there is the identity); ``compute`` runs every tile in full, the mask applied
    element by element. A partly masked (diagonal) tile is always costed in full: the 2D array clocks
    its rows and columns as one, and its PEs compute every score before the mask selects them.
    """

    masked_tiles: Literal["skip", "compute"] = "skip"


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


TrafficMode = Literal["once", "per_block", "per_tile", "chip", "dram"]
"""How a fusion group moves a tensor between DRAM and the chip (:class:`GroupChoice`)."""

Stationarity = Literal["output", "weight", "input"]


class GroupChoice(Section):
    """The choices of a fusion group that may differ from point to point (an ``alternatives`` entry or a
    choices-table row overrides the ones it gives).

    ``traffic``: tensor -> ``once`` (an input filled from DRAM once and re-read on chip), ``per_block``
    (re-filled every block), ``per_tile`` (streamed: re-read by every array tile that uses it; the
    default for inputs), ``chip`` (an intermediate kept in the buffer; ``spill`` of each access goes to
    DRAM) or ``dram`` (an intermediate written to DRAM and read back by its first reader). Outputs of a
    group are stored once (partial sums over the block rank make round trips).
    ``spatial``: Einsum -> ``output`` | ``weight`` | ``input`` (the held operand's ranks, in its index
    order, over the 2D array's rows then columns; ``weight`` is the second operand, ``input`` the
    first) or ``{rows: rank, cols: rank}``.
    ``live`` / ``staged``: the tensors a ``fit`` block must hold (block footprint) and those it stages
    (two tile footprints each, double-buffered). ``spill``: a fraction, ``auto`` (the artifact's
    rule, docs/mapping.md) or ``buffer`` (what the block's need leaves over the buffer, counted as
    :mod:`mappers.group_buffer` counts it). ``block_factor`` / ``block_max`` / ``block_min``: the block's
    extent (or ``fit``), a cap and a floor. ``fit``: what a ``fit`` block must hold, ``all`` its
    ``live`` and ``staged`` tensors (the default) or ``fibres`` its on-chip score fibres alone (one
    in-place fibre per row; the rest may spill: FLAT's accounting). ``block_sizes``: ``balanced`` (the
    default: the fewest blocks, each as small as that allows) or ``powers_of_two`` (the whole rank when
    it fits, else the largest tile extent x a power of two that fits, within ``block_min`` and
    ``block_max``: FLAT's row granularity; the last alternative left, with ``spill: buffer``, takes
    ``block_min`` when nothing fits and spills the rest).
    """

    traffic: dict[NonEmptyText, TrafficMode] = {}
    spatial: dict[NonEmptyText, Stationarity | dict[Literal["rows", "cols"], NonEmptyText]] = {}
    live: list[NonEmptyText] | None = None
    staged: list[NonEmptyText] | None = None
    spill: float | Literal["auto", "buffer"] | None = None
    block_factor: Expression | Literal["fit"] | None = None
    block_max: Expression | None = None
    block_min: Expression | None = None
    fit: Literal["all", "fibres"] | None = None
    block_sizes: Literal["balanced", "powers_of_two"] | None = None

    @field_validator("block_factor", "block_max", "block_min", mode="before")
    @classmethod
    def _block(cls, value: object) -> object:
        if value is None or value == "fit":
            return value
        return _check_expression(value)

    @field_validator("spill", mode="before")
    @classmethod
    def _spill(cls, value: object) -> object:
        if value is None or value in ("auto", "buffer"):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"expected a fraction in [0, 1], auto or buffer, got {value!r}")
        return float(value)


class Group(GroupChoice):
    """One fusion group of a multi-pass mapping: its Einsums run fused, one iteration after another, in a
    software pipeline; the groups run one after the other (docs/mapping.md, "Multi-pass mappings").

    ``einsums``: the group's Einsums in issue order. ``block_rank``: the rank the group's DRAM-level
    loop steps through in blocks (of ``block_factor``, default ``fit``). ``iteration``: what one
    pipeline iteration processes, an array ``tile`` (``tile``: rank -> extent; ranks left out whole)
    or a whole ``block``. ``alternatives``: choices tried in order, the first whose block fits wins.
    ``table``: a choices table (``specs/mappings/flat-*.yaml`` format) whose row for the point, where it
    has one, is used instead. ``placement``: this group's view of where tensors live for the energy
    model (overrides the mapping's). ``fill_cycles``: a 2D Einsum's first execution's extra cycles
    (array fill and drain). ``op_overlap``: an Einsum's ops per point overlap (cycles = its slowest op).
    """

    name: NonEmptyText
    einsums: list[NonEmptyText] = Field(min_length=1)
    block_rank: NonEmptyText
    iteration: Literal["tile", "block"] = "tile"
    tile: dict[NonEmptyText, Expression] = {}
    alternatives: list[GroupChoice] = []
    table: NonEmptyText | None = None
    placement: dict[NonEmptyText, Placement] = {}
    fill_cycles: Expression | None = None
    op_overlap: bool = False

    @field_validator("tile", mode="before")
    @classmethod
    def _tile(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {key: _check_expression(item) for key, item in value.items()}
        return value

    @field_validator("fill_cycles", mode="before")
    @classmethod
    def _fill(cls, value: object) -> object:
        return None if value is None else _check_expression(value)


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
    groups: list[Group] | None = None
    gpu: dict[str, Any] | None = None
    masking: Masking = Masking()
    pack_gqa: Literal["never", "always"] = "never"

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
    return _has_target(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _has_target(path: str, stamp: int) -> bool:
    return any(line.startswith("target:") for line in Path(path).read_text(encoding="utf-8").splitlines())


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
           "Group", "GroupChoice", "Pipelining", "Placement", "SPATIAL_DIMS", "UNITS", "available_mappings", "evaluate_expression",
           "expression_names", "load_mapping", "mapping_from_data"]
