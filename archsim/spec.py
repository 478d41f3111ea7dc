"""Hardware architecture specs: YAML files in ``specs/arch/`` -> validated, frozen :class:`Arch` objects.

A spec describes a spatial accelerator with a 2D PE array, a 1D PE array, a global buffer and DRAM,
plus an energy table (pJ per action) and an area table (um^2 per instance), every entry with a
``source`` string saying where the number comes from. See ``specs/arch/fusemax-cloud.yaml`` for the
annotated reference spec.

Key conventions (shared by the engine and the mappers):

- ``energy`` keys are ``"component.action"``: ``pe2d.mac``, ``pe1d.div``, ``pe2d.register_file.read``,
  ``global_buffer.write``, ``dram.read`` ... ``per`` says what one ``pj`` pays for: ``op`` (one compute
  operation), ``word`` (one register-file word access), ``row`` (one global-buffer row of
  ``global_buffer.row_bytes``) or ``access`` (one DRAM access of ``dram.access_bytes``).
- ``area`` keys are ``"component.part"`` with ``um2`` per instance (a ``pe2d`` part exists once per 2D
  PE, a ``pe1d`` part once per 1D PE, anything else once), or ``counted_in: <other key>`` for a part
  whose area is already part of another entry's (e.g. the adder inside the MAC).
- Every error is an :class:`archsim.errors.SpecError` with a one-line message naming the file (or the
  ``--set`` override) and the key path, e.g. ``specs/arch/x.yaml: arrays.pe2d.rows: expected a positive
  integer, got -4``.
"""
from __future__ import annotations

from importlib import resources
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, PlainValidator, PrivateAttr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from attnsim.archsim.errors import SpecError, describe_value, known_keys_at, validation_problem
from attnsim.safe_io import FileProblem, check_yaml_shape, read_text

SPECS_DIR: Path = Path(str(resources.files("attnsim.specs").joinpath("arch")))
"""Where ``load_arch`` looks up architectures given by name (the file stem)."""

# --------------------------------------------------------------------------------------------------
# YAML reading: line numbers for malformed files, duplicate keys rejected, 1e9-style floats accepted.


class _SpecLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys and reads ``940e6`` as a float.

    YAML 1.1 (PyYAML) reads ``940e6`` as a string because it has no dot; a spec writer means a number.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: the base constructor reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_SpecLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``LINE: problem`` for a YAML error (line numbers start at 1)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"malformed YAML: {problem}"
    return f"{mark.line + 1}: malformed YAML: {problem}"


def read_yaml_mapping(path: Path, display: str) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping; ``display`` names the file in error messages."""
    try:
        text = read_text(path)
        check_yaml_shape(text, _SpecLoader)
    except FileProblem as exc:
        raise SpecError(exc.named(display)) from None
    try:
        data = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"{display}:{_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{display}: expected a mapping of keys at the top level, got {_describe(data)}")
    return data


# --------------------------------------------------------------------------------------------------
# Value types with one-line messages.


_describe = describe_value  # the short name used throughout this module


def _reject(kind: str, expected: str, value: object) -> PydanticCustomError:
    return PydanticCustomError(kind, "expected {expected}, got {got}",
                               {"expected": expected, "got": _describe(value)})


def _positive_integer(value: object) -> int:
    """A positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _reject("positive_integer", "a positive integer", value)
    return value


def _is_real(value: object) -> bool:
    """An int or float (not a bool) that is finite as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _positive_number(value: object) -> float:
    """A positive number (finite)."""
    if not _is_real(value) or value <= 0:  # type: ignore[operator]
        raise _reject("positive_number", "a positive number", value)
    return float(value)  # type: ignore[arg-type]


def _non_negative_number(value: object) -> float:
    """A number >= 0 (finite)."""
    if not _is_real(value) or value < 0:  # type: ignore[operator]
        raise _reject("non_negative_number", "a number >= 0", value)
    return float(value)  # type: ignore[arg-type]


def _text(value: object) -> str:
    """A string."""
    if not isinstance(value, str):
        raise _reject("text", "a string", value)
    return value


def _non_empty_text(value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise _reject("non_empty_text", "a non-empty string", value)
    return value


PositiveInt = Annotated[int, PlainValidator(_positive_integer)]
PositiveNumber = Annotated[float, PlainValidator(_positive_number)]
NonNegativeNumber = Annotated[float, PlainValidator(_non_negative_number)]
Text = Annotated[str, PlainValidator(_text)]
NonEmptyText = Annotated[str, PlainValidator(_non_empty_text)]

# --------------------------------------------------------------------------------------------------
# The models.


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpecDocument(_Section):
    """A whole validated spec read from a file (an architecture, a GPU, a workload).

    Remembers where it came from (``origin``, for messages) without letting that affect identity: two
    documents are equal, and hash alike, when their contents are, wherever each was read from.
    """

    _origin: str = PrivateAttr(default="<mapping>")

    @property
    def origin(self) -> str:
        """Where the spec came from (file path as shown in messages, or ``<mapping>``)."""
        return self._origin

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(self.model_dump_json())


class OpCycles(_Section):
    """Cycles one PE takes per operation, latency-wise; an absent op is one the array cannot do.

    Besides attribute access (``ops.exp``) it reads like a mapping of the ops the array has:
    ``ops["exp"]``, ``"div" in ops``, ``ops.get("max")``, ``ops.items()``.
    """

    mac: PositiveInt | None = None
    add: PositiveInt | None = None
    max: PositiveInt | None = None
    exp: PositiveInt | None = None
    div: PositiveInt | None = None
    log: PositiveInt | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> OpCycles:
        if not self.as_dict():
            raise PydanticCustomError("no_ops", "expected at least one of {names}",
                                      {"names": _names(type(self).model_fields)})
        return self

    _table: tuple[tuple, dict[str, int]] | None = PrivateAttr(default=None)

    def _ops(self) -> dict[str, int]:
        # Built once per field values (mappers look ops up per Einsum and point); keyed by them because
        # model_copy(update=...) copies private attributes along with the fields it changes.
        key = tuple(self.__dict__.values())
        if self._table is None or self._table[0] != key:
            self._table = (key, {name: cycles for name in type(self).model_fields
                                 if (cycles := getattr(self, name)) is not None})
        return self._table[1]

    def as_dict(self) -> dict[str, int]:
        """The ops this array has -> cycles per op (a new dict the caller may change)."""
        return dict(self._ops())

    def __getitem__(self, op: str) -> int:
        cycles = self._ops().get(op)
        if cycles is None:
            raise KeyError(op)
        return cycles

    def __contains__(self, op: object) -> bool:
        return isinstance(op, str) and op in self._ops()

    def get(self, op: str, default: int | None = None) -> int | None:
        """Cycles of ``op``, or ``default`` if the array has no such op."""
        return self._ops().get(op, default)

    def keys(self) -> list[str]:
        """Names of the ops this array has."""
        return list(self._ops())

    def items(self) -> list[tuple[str, int]]:
        """(op, cycles per op) for the ops this array has."""
        return list(self._ops().items())


class Array2D(_Section):
    """The 2D PE array: ``rows`` x ``cols`` PEs, each with ``ops`` (its register file is an energy and
    area entry, ``pe2d.register_file``, not a size the cost model reads)."""

    rows: PositiveInt
    cols: PositiveInt
    ops: OpCycles


class Array1D(_Section):
    """The 1D PE array: ``size`` PEs, each with ``ops`` (register file: energy and area entries only)."""

    size: PositiveInt
    ops: OpCycles


class Arrays(_Section):
    """The compute arrays."""

    pe2d: Array2D
    pe1d: Array1D


class GlobalBuffer(_Section):
    """The on-chip global buffer (SRAM), in bytes. Its bandwidth and banking are not modelled (the
    FuseMax artifact models neither), so the spec has no fields for them."""

    capacity_bytes: PositiveInt
    row_bytes: PositiveInt


class Dram(_Section):
    """Off-chip memory: bandwidth in bytes per second, accesses of ``access_bytes`` bytes."""

    bandwidth_bytes_per_s: PositiveNumber
    access_bytes: PositiveInt


class EnergyEntry(_Section):
    """Energy of one action: ``pj`` picojoules per ``per`` (op, word, row or access)."""

    pj: NonNegativeNumber
    per: Literal["op", "word", "row", "access"]
    source: NonEmptyText


class AreaEntry(_Section):
    """Area of one part per instance in um^2, or the key of the entry whose area already includes it."""

    um2: NonNegativeNumber | None = None
    counted_in: NonEmptyText | None = None
    source: NonEmptyText

    @model_validator(mode="after")
    def _um2_or_counted_in(self) -> AreaEntry:
        if (self.um2 is None) == (self.counted_in is None):
            raise PydanticCustomError(
                "area_entry", "expected exactly one of um2 (area per instance) or counted_in "
                "(the key of the entry that already includes this part)")
        return self


_COMPUTE_ARRAYS = ("pe2d", "pe1d")
_ACCESS_COMPONENTS = ("pe2d.register_file", "pe1d.register_file", "global_buffer", "dram")
_ACCESS_ACTIONS = ("read", "write")
_ALLOWED_PER: dict[str, tuple[str, ...]] = {
    "pe2d": ("op",), "pe1d": ("op",),
    "pe2d.register_file": ("word",), "pe1d.register_file": ("word",),
    "global_buffer": ("row", "word"), "dram": ("access",),
}
_AREA_COMPONENTS = ("pe2d", "pe1d", "global_buffer", "dram")


def _names(items: Iterable[str]) -> str:
    return ", ".join(items)


def _inconsistent(key_path: str, message: str) -> PydanticCustomError:
    """A cross-field error; ``key_path`` is where it is reported (see ``_spec_error``)."""
    return PydanticCustomError("arch_consistency", "{message}",
                               {"key_path": key_path, "message": message})


class Arch(SpecDocument):
    """A validated, immutable accelerator spec. Build it with :func:`load_arch` or :meth:`from_mapping`.

    Units: ``clock_hz`` in Hz, ``word_bytes`` in bytes, energies in pJ, areas in um^2.
    """

    name: NonEmptyText
    description: Text = ""
    clock_hz: PositiveNumber
    word_bytes: PositiveInt
    arrays: Arrays
    global_buffer: GlobalBuffer
    dram: Dram
    energy: dict[str, EnergyEntry]
    area: dict[str, AreaEntry]

    # -- derived quantities -----------------------------------------------------------------------

    @property
    def pes_2d(self) -> int:
        """Number of PEs in the 2D array (rows x cols)."""
        return self.arrays.pe2d.rows * self.arrays.pe2d.cols

    @property
    def pes_1d(self) -> int:
        """Number of PEs in the 1D array."""
        return self.arrays.pe1d.size

    @property
    def words_per_row(self) -> int:
        """Words in one global-buffer row (row_bytes / word_bytes)."""
        return self.global_buffer.row_bytes // self.word_bytes

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per clock cycle (bandwidth_bytes_per_s / clock_hz)."""
        return self.dram.bandwidth_bytes_per_s / self.clock_hz

    @property
    def cycle_s(self) -> float:
        """One clock cycle in seconds."""
        return 1.0 / self.clock_hz

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "<mapping>") -> Arch:
        """Validate a plain mapping (as read from YAML); errors name ``origin`` and the key path."""
        return _validate(data, origin, {})

    def with_overrides(self, overrides: Mapping[str, object] | None) -> Arch:
        """A new, re-validated Arch with ``{"dotted.key.path": value}`` replaced; self is unchanged.

        Keys are paths into the spec (``arrays.pe2d.rows``, ``global_buffer.capacity_bytes``,
        ``energy.global_buffer.read.pj``). All overrides are applied before validating, so
        ``rows`` and ``cols`` can change together. Note that energy and area entries are not rescaled
        when sizes change: override them too when the change makes them stale (e.g. a different
        global-buffer capacity has a different per-row energy and area).
        """
        if not overrides:
            return self
        data = self.model_dump()
        for key, value in overrides.items():
            set_path(Arch, data, key, value)
        return _validate(data, self._origin, dict(overrides))

    # -- cross-field checks -----------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_consistency(self) -> Arch:
        buffer = self.global_buffer
        if buffer.row_bytes % self.word_bytes:
            raise _inconsistent("global_buffer.row_bytes", f"expected a multiple of word_bytes "
                                f"({self.word_bytes}), got {buffer.row_bytes}")
        if buffer.capacity_bytes % buffer.row_bytes:
            raise _inconsistent("global_buffer.capacity_bytes", f"expected a multiple of row_bytes "
                                f"({buffer.row_bytes}), got {buffer.capacity_bytes}")
        self._check_energy_keys()
        self._check_area_keys()
        return self

    def _actions_of(self, component: str) -> tuple[str, ...]:
        if component in _COMPUTE_ARRAYS:
            return tuple(getattr(self.arrays, component).ops.keys())
        return _ACCESS_ACTIONS

    def _check_energy_keys(self) -> None:
        components = _COMPUTE_ARRAYS + _ACCESS_COMPONENTS
        for key, entry in self.energy.items():
            component, _, action = key.rpartition(".")
            if component not in components:
                raise _inconsistent(f"energy.{key}", "expected a key 'component.action' with component "
                                    f"one of {_names(components)}")
            actions = self._actions_of(component)
            if action not in actions:
                where = (f"arrays.{component}.ops" if component in _COMPUTE_ARRAYS else component)
                raise _inconsistent(f"energy.{key}", f"unknown action '{action}' of {where} "
                                    f"(known: {_names(actions)})")
            if entry.per not in _ALLOWED_PER[component]:
                raise _inconsistent(f"energy.{key}.per", f"expected {' or '.join(map(repr, _ALLOWED_PER[component]))}"
                                    f" for {component}, got {entry.per!r}")
        for component in components:
            for action in self._actions_of(component):
                if f"{component}.{action}" not in self.energy:
                    reason = (f" (arrays.{component}.ops has {action})"
                              if component in _COMPUTE_ARRAYS else "")
                    raise _inconsistent("energy", f"missing entry '{component}.{action}'{reason}")

    def _check_area_keys(self) -> None:
        for key, entry in self.area.items():
            component, _, part = key.partition(".")
            if component not in _AREA_COMPONENTS or not part:
                raise _inconsistent(f"area.{key}", "expected a key 'component.part' with component "
                                    f"one of {_names(_AREA_COMPONENTS)}")
            if entry.counted_in is None:
                continue
            target = self.area.get(entry.counted_in)
            if target is None or target.um2 is None:
                candidates = [k for k, e in self.area.items() if e.um2 is not None]
                raise _inconsistent(f"area.{key}.counted_in", f"expected the key of an area entry with "
                                    f"um2 (one of {_names(candidates)}), got {entry.counted_in!r}")
            if entry.counted_in.partition(".")[0] != component:
                raise _inconsistent(f"area.{key}.counted_in", f"expected an entry of the same component "
                                    f"'{component}', got {entry.counted_in!r}")


# --------------------------------------------------------------------------------------------------
# Validation errors -> SpecError.


def _render(value: object) -> str:
    """A value as the user would write it after ``--set key=``."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, Mapping, list, tuple)):
        text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False)
        return text.strip().removesuffix("...").strip()
    return str(value)


def _set_label(key: str, value: object) -> str:
    return f"--set {key}={_render(value)}"


def spec_error(root: type[BaseModel], exc: ValidationError, origin: str,
               overrides: Mapping[str, object]) -> SpecError:
    """One-line SpecError for a failed validation of spec model ``root``: the file (or the ``--set``
    override responsible), the key path and what was expected."""
    path, message, tail = validation_problem(exc, root)
    for key, value in overrides.items():
        if path == key:
            return SpecError(f"{_set_label(key, value)}: {message}{tail}")
        if path.startswith(key + "."):
            return SpecError(f"{_set_label(key, value)}: {path}: {message}{tail}")
    where = origin
    if overrides:
        where += " with " + ", ".join(_set_label(k, v) for k, v in overrides.items())
    return SpecError(f"{where}: {path}: {message}{tail}" if path else f"{where}: {message}{tail}")


def _validate(data: Mapping[str, Any], origin: str, overrides: Mapping[str, object]) -> Arch:
    try:
        arch = Arch.model_validate(data)
    except ValidationError as exc:
        raise spec_error(Arch, exc, origin, overrides) from None
    arch._origin = origin
    return arch


# --------------------------------------------------------------------------------------------------
# Overrides.


def is_arch_key(key: str) -> bool:
    """True if ``key`` is an architecture override (``arrays.pe2d.rows``, ``clock_hz``): its first
    dotted component is a top-level field of :class:`Arch` (a study's other keys are kind parameters)."""
    return key.split(".", 1)[0] in Arch.model_fields



def set_path(root: type[BaseModel], data: dict[str, Any], key: str, value: object, *,
             new_entries: bool = True) -> None:
    """Set ``value`` at the dotted ``key`` inside ``data`` (a dumped ``root`` model); SpecError if no
    such key.

    Inside free-form tables (``energy``, ``area``), whose own keys contain dots, the longest existing
    entry key wins (``energy.global_buffer.read.pj`` -> entry ``global_buffer.read``, field ``pj``);
    with ``new_entries`` a whole new entry can be added by giving a mapping
    (``energy.pe2d.exp={pj: 1, ...}``).
    """
    label = _set_label(key, value)
    segments = key.split(".")
    node: Any = data
    loc: list[str] = []
    i = 0
    while True:
        if not isinstance(node, dict):
            raise SpecError(f"{label}: {'.'.join(loc)} is a value, not a section with keys")
        free_form = known_keys_at(root, tuple(loc)) is None
        if free_form:  # a table whose keys contain dots: match the longest existing key
            for j in range(len(segments), i, -1):
                name = ".".join(segments[i:j])
                if name in node:
                    break
            else:
                name = ".".join(segments[i:])
                if not new_entries:
                    raise SpecError(f"{label}: unknown key '{name}' (known: {_names(node)})")
                if not isinstance(value, Mapping):
                    raise SpecError(f"{label}: unknown key '{name}' (known: {_names(node)}; a new "
                                    "entry needs a mapping value)")
                j = len(segments)
        else:
            name, j = segments[i], i + 1
            if name not in node:
                raise SpecError(f"{label}: unknown key '{name}' (known: {_names(node)})")
        if j == len(segments):
            node[name] = value
            return
        node, loc, i = node[name], [*loc, name], j


def parse_override(text: str) -> tuple[str, object]:
    """``"arrays.pe2d.rows=32"`` -> ``("arrays.pe2d.rows", 32)``; the value is read as YAML.

    A value that is not valid YAML is kept as the raw string.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError(f"--set {text}: expected KEY=VALUE with a dotted key, e.g. arrays.pe2d.rows=32")
    try:
        value = yaml.load(raw, Loader=_SpecLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError:
        value = raw
    return key, value


def parse_overrides(texts: Iterable[str] | None) -> dict[str, object]:
    """Several ``KEY=VALUE`` texts (e.g. repeated ``--set``) -> one mapping; a later key wins."""
    return dict(parse_override(text) for text in texts or ())


# --------------------------------------------------------------------------------------------------
# Loading.


def available_archs(kind: str = "accelerator") -> list[str]:
    """Names (file stems) of the specs shipped in ``specs/arch/`` of one ``kind``.

    A spec's kind is its top-level ``kind:`` key: ``gpu`` for GPUs (``archsim.gpu_spec``), absent for
    the spatial accelerators this module loads (kind ``accelerator``).
    """
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml") if _spec_kind(p) == kind)


def spec_kind(path_or_name: str | Path) -> str:
    """The kind (``accelerator`` or ``gpu``) of a spec given as a path or a name in ``specs/arch/``;
    ``accelerator`` when the file does not exist (loading it then reports the missing file)."""
    path = Path(path_or_name)
    if not path.is_file():
        path = SPECS_DIR / f"{path_or_name}.yaml"
    return _spec_kind(path) if path.is_file() else "accelerator"


def _spec_kind(path: Path) -> str:
    """The ``kind`` of a spec file, read from its top-level ``kind:`` line without parsing the YAML."""
    try:
        text = read_text(path)
    except FileProblem:
        return "accelerator"  # loading it as one reports the problem
    for line in text.splitlines():
        if line.startswith("kind:"):
            return line.split(":", 1)[1].split("#", 1)[0].strip() or "accelerator"
    return "accelerator"


def resolve_named_file(path_or_name: str | Path, directory: Path, what: str, known: list[str],
                       error: type[Exception] = SpecError) -> tuple[Path, str]:
    """(file to read, how to name it in messages) for a YAML file given as a path, or as the name of one
    in ``directory`` (a folder of ``specs/``). ``what`` names the thing in errors (``workload``);
    ``known`` lists the valid names; ``error`` is the layer's error type."""
    text = str(path_or_name)
    looks_like_path = (isinstance(path_or_name, Path) or "/" in text or "\\" in text
                       or text.endswith((".yaml", ".yml")))
    if looks_like_path:
        path = Path(path_or_name)
        if not path.is_file():
            raise error(f"{text}: no such {what} file")
        return path, text
    path = directory / f"{text}.yaml"
    if not path.is_file():
        raise error(f"unknown {what} '{text}' (known: {_names(known)}; or give a path to a .yaml file)")
    return path, f"{directory.parent.name}/{directory.name}/{text}.yaml"


def resolve_spec_path(path_or_name: str | Path, kind: str = "accelerator") -> tuple[Path, str]:
    """(file to read, how to name it in messages) for a hardware spec of ``kind`` (a path, or a name in
    ``specs/arch/``; see :func:`available_archs`)."""
    return resolve_named_file(path_or_name, SPECS_DIR, "GPU spec" if kind == "gpu" else "architecture",
                              available_archs(kind))


def load_arch(path_or_name: str | Path, overrides: Mapping[str, object] | None = None) -> Arch:
    """Load and validate a spec: a path to a YAML file, or the name of one in ``specs/arch/``.

    ``overrides`` (``{"arrays.pe2d.rows": 32}``) are applied and the result re-validated.
    Raises SpecError (one line, naming the file or override and the key path) on any problem.
    """
    path, display = resolve_spec_path(path_or_name)
    arch = Arch.from_mapping(read_yaml_mapping(path, display), origin=display)
    return arch.with_overrides(overrides)
