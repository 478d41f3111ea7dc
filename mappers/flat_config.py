"""FLAT's per-(model class, sequence length) configuration: ``specs/mappings/*.yaml`` -> :class:`FlatConfig`.

The FuseMax artifact does not search FLAT's mapping: for every (platform, model, sequence length) it
reads tensor placement (on/off chip), QK/AV stationarity, fusion granularity, the tile height ``P1``
and the spilled fraction from the FLAT authors' own tables (fact sheet §4.5). ``specs/mappings/
flat-cloud.yaml`` transcribes the cloud rows; a value the fact sheet does not state is written as
``{value: ..., inferred: true, reason: "..."}`` and shows up in :attr:`FlatConfig.inferred`.

A workload is matched to a model class by its head widths (``head_dim_e``, ``head_dim_f``): the table
is per class (E = F = 64 models vs XLM), not per model name. Every error is a
:class:`mappers.errors.MappingError` with a one-line message naming the file and the key path.
"""
from __future__ import annotations

import functools
from importlib import resources
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from attnsim.archsim.errors import format_validation_error
from attnsim.archsim.spec import NonEmptyText, PositiveInt, Text, resolve_named_file
from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import Workload, read_mapping_file

MAPPINGS_DIR: Path = Path(str(resources.files("attnsim.specs").joinpath("mappings")))
"""Where :func:`load_flat_table` looks up tables given by name (the file stem)."""

TENSORS: tuple[str, ...] = ("Q", "K", "V", "QK", "A", "AV")
"""The tensors whose placement a FLAT configuration fixes."""

Place = Literal["chip", "dram"]
Stationarity = Literal["output", "weight", "input"]
Granularity = Literal["head", "row"]


def _fraction_or_null(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise PydanticCustomError("fraction", "expected a number in [0, 1] or null, got {got}",
                                  {"got": repr(value)})
    return float(value)


FractionOrNull = Annotated[float | None, PlainValidator(_fraction_or_null)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Placement(_Strict):
    """Where each tensor lives: ``chip`` (the global buffer) or ``dram``."""

    Q: Place
    K: Place
    V: Place
    QK: Place
    A: Place
    AV: Place


class StationarityChoice(_Strict):
    """Which operand of QK and of AV stays in the PEs: ``output``, ``weight`` or ``input``."""

    QK: Stationarity
    AV: Stationarity


class _Entry(_Strict):
    placement: Placement
    stationarity: StationarityChoice
    granularity: Granularity
    p1_rows: PositiveInt
    spill_fraction: FractionOrNull
    source: NonEmptyText


class _ModelClass(_Strict):
    head_dim_e: PositiveInt
    head_dim_f: PositiveInt
    models: list[NonEmptyText] = []
    seqs: dict[PositiveInt, _Entry]


class _Table(_Strict):
    name: NonEmptyText
    description: Text = ""
    source: NonEmptyText
    classes: dict[NonEmptyText, _ModelClass]


class FlatConfig(_Strict):
    """FLAT's configuration at one (model class, sequence length) point.

    ``p1_rows`` is in query rows; ``spill_fraction`` in [0, 1] or None where none applies;
    ``inferred`` maps each value the fact sheet does not state (dotted key, e.g. ``placement.AV``) to
    the reasoning behind it.
    """

    model_class: str
    seq: int
    placement: Placement
    stationarity: StationarityChoice
    granularity: Granularity
    p1_rows: int
    spill_fraction: float | None
    source: str
    inferred: dict[str, str]

    def on_chip(self, tensor: str) -> bool:
        """Whether ``tensor`` (one of Q, K, V, QK, A, AV) lives in the global buffer."""
        if tensor not in TENSORS:
            raise MappingError(f"FLAT configuration: unknown tensor '{tensor}' (known: {', '.join(TENSORS)})")
        return getattr(self.placement, tensor) == "chip"

    def is_inferred(self, key: str) -> bool:
        """Whether the value at dotted ``key`` (``placement.Q``, ``spill_fraction`` ...) was inferred."""
        return key in self.inferred


class FlatTable:
    """A loaded FLAT configuration table: model classes, each with one :class:`FlatConfig` per seq."""

    def __init__(self, name: str, description: str, source: str, origin: str,
                 classes: dict[str, tuple[tuple[int, int], tuple[str, ...], dict[int, FlatConfig]]]) -> None:
        self.name = name
        self.description = description
        self.source = source
        self.origin = origin
        self._classes = classes

    @property
    def model_classes(self) -> list[str]:
        """Names of the model classes, in file order."""
        return list(self._classes)

    def head_dims(self, model_class: str) -> tuple[int, int]:
        """(E, F) of a model class."""
        return self._classes[model_class][0]

    def models(self, model_class: str) -> tuple[str, ...]:
        """The workloads the table's authors meant for a class (informational; lookup is by E, F)."""
        return self._classes[model_class][1]

    def seq_lengths(self, model_class: str) -> list[int]:
        """Sequence lengths configured for a class, ascending."""
        return sorted(self._classes[model_class][2])

    def class_for(self, workload: Workload) -> str:
        """The model class whose head widths equal the workload's; MappingError if none does."""
        dims = (workload.head_dim_e, workload.head_dim_f)
        for name, (class_dims, _, _) in self._classes.items():
            if class_dims == dims:
                return name
        known = ", ".join(f"{name} (E={e}, F={f})" for name, ((e, f), _, _) in self._classes.items())
        raise MappingError(f"{self.origin}: classes: no model class for {workload.name} with "
                           f"head_dim_e = {dims[0]}, head_dim_f = {dims[1]} (known: {known})")

    def config_for(self, workload: Workload, seq: int) -> FlatConfig:
        """FLAT's configuration for ``workload`` at sequence length ``seq``; MappingError if absent."""
        model_class = self.class_for(workload)
        configs = self._classes[model_class][2]
        if seq not in configs or isinstance(seq, bool):
            known = ", ".join(str(s) for s in sorted(configs))
            raise MappingError(f"{self.origin}: classes.{model_class}.seqs: no configuration for seq "
                               f"{seq!r} of {workload.name} (known: {known})")
        return configs[seq]


# --------------------------------------------------------------------------------------------------
# Loading.

_WRAPPER_KEYS = {"value", "inferred", "reason"}


def _unwrap(node: Any, path: str, inferred: dict[str, str], origin: str) -> Any:
    """Replace every ``{value, inferred: true, reason}`` wrapper below ``node`` by its value."""
    if isinstance(node, Mapping) and "value" in node:
        extra = sorted(str(k) for k in set(node) - _WRAPPER_KEYS)
        if extra:
            raise MappingError(f"{origin}: {path}.{extra[0]}: unknown key '{extra[0]}' (an inferred value "
                               "has keys value, inferred, reason)")
        if node.get("inferred") is not True:
            raise MappingError(f"{origin}: {path}.inferred: expected true (a value written as "
                               "{value: ...} must be marked inferred: true with a reason)")
        reason = node.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise MappingError(f"{origin}: {path}.reason: expected a non-empty string saying why the "
                               "value was inferred")
        inferred[path] = " ".join(reason.split())
        return node["value"]
    if isinstance(node, Mapping):
        if "inferred" in node or "reason" in node:
            key = "inferred" if "inferred" in node else "reason"
            raise MappingError(f"{origin}: {path}.{key}: '{key}' belongs inside {{value: ..., inferred: "
                               "true, reason: ...}}, next to the value it qualifies")
        return {key: _unwrap(value, f"{path}.{key}" if path else str(key), inferred, origin)
                for key, value in node.items()}
    return node


def _build(data: Mapping[str, Any], origin: str) -> FlatTable:
    inferred_by_entry: dict[tuple[str, Any], dict[str, str]] = {}
    raw_classes = data.get("classes")
    cleaned: dict[str, Any] = dict(data)
    if isinstance(raw_classes, Mapping):
        cleaned_classes: dict[Any, Any] = {}
        for class_name, raw_class in raw_classes.items():
            if isinstance(raw_class, Mapping) and isinstance(raw_class.get("seqs"), Mapping):
                seqs: dict[Any, Any] = {}
                for seq, entry in raw_class["seqs"].items():
                    inferred: dict[str, str] = {}
                    where = f"classes.{class_name}.seqs.{seq}"
                    if isinstance(entry, Mapping):
                        entry = {key: _unwrap(value, str(key), inferred, f"{origin}: {where}")
                                 for key, value in entry.items()}
                    seqs[seq] = entry
                    inferred_by_entry[(str(class_name), seq)] = inferred
                raw_class = {**raw_class, "seqs": seqs}
            cleaned_classes[class_name] = raw_class
        cleaned["classes"] = cleaned_classes
    try:
        table = _Table.model_validate(cleaned)
    except ValidationError as exc:
        raise MappingError(f"{origin}: {format_validation_error(exc, _Table)}") from None
    classes: dict[str, tuple[tuple[int, int], tuple[str, ...], dict[int, FlatConfig]]] = {}
    seen_dims: dict[tuple[int, int], str] = {}
    for class_name, model_class in table.classes.items():
        dims = (model_class.head_dim_e, model_class.head_dim_f)
        if dims in seen_dims:
            raise MappingError(f"{origin}: classes.{class_name}: same head_dim_e/head_dim_f as "
                               f"classes.{seen_dims[dims]}; expected one class per (E, F)")
        seen_dims[dims] = class_name
        configs = {}
        for seq, entry in model_class.seqs.items():
            inferred = inferred_by_entry.get((class_name, seq), {})
            configs[seq] = FlatConfig(model_class=class_name, seq=seq, placement=entry.placement,
                                      stationarity=entry.stationarity, granularity=entry.granularity,
                                      p1_rows=entry.p1_rows, spill_fraction=entry.spill_fraction,
                                      source=entry.source, inferred=inferred)
        classes[class_name] = (dims, tuple(model_class.models), configs)
    return FlatTable(table.name, table.description, table.source, origin, classes)


def available_flat_tables() -> list[str]:
    """Names of the FLAT configuration tables shipped in ``specs/mappings/`` (``flat-*`` stems)."""
    return sorted(path.stem for path in MAPPINGS_DIR.glob("flat-*.yaml"))


def load_flat_table(name_or_path: str | Path = "flat-cloud") -> FlatTable:
    """Load and validate a FLAT configuration table (a YAML path, or a name in ``specs/mappings/``); cached
    by path and modification time."""
    text = str(name_or_path)
    builtin = MAPPINGS_DIR / f"{text}.yaml"
    known = [text] if "/" not in text and not text.endswith((".yaml", ".yml")) and builtin.is_file() \
        else available_flat_tables()   # list the folder only when needed
    path, display = resolve_named_file(name_or_path, MAPPINGS_DIR, "FLAT configuration table", known, MappingError)
    return _load_table(str(path), display, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _load_table(path: str, display: str, stamp: int) -> FlatTable:
    """Read once per file version (a FlatTable is not changed after loading)."""
    return _build(read_mapping_file(Path(path), display), display)


def flat_config(workload: Workload, seq: int, table: FlatTable | None = None) -> FlatConfig:
    """FLAT's configuration for ``workload`` at ``seq`` from ``table`` (default: ``flat-cloud``)."""
    return (table or load_flat_table()).config_for(workload, seq)
