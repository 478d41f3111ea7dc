"""Transformer workloads: YAML files in ``specs/workloads/`` -> validated, frozen :class:`Workload` objects.

A workload is one encoder layer of a transformer run as self-attention inference: batch ``B``, model
width ``D`` (``d_model``), ``H`` heads of query/key width ``E`` (``head_dim_e``) and value width ``F``
(``head_dim_f``), feed-forward width ``S`` (``ffn``), and the sequence lengths to study. Self-attention
means the key/value length ``M`` equals the query length ``P``; both are called ``seq`` here
(FuseMax fact sheet §1.0 and §5). Every number in a workload file carries a ``sources`` entry that says
where it comes from.

Every error is a :class:`mappers.errors.MappingError` with a one-line message naming the file and the
key, e.g. ``specs/workloads/x.yaml: heads: expected a positive integer, got 0``.
"""
from __future__ import annotations

from importlib import resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from attnsim.archsim.errors import SpecError, format_validation_error
from attnsim.archsim.spec import (NonEmptyText, PositiveInt, SpecDocument, Text, read_yaml_mapping,
                                  resolve_named_file)
from attnsim.mappers.errors import MappingError

WORKLOADS_DIR: Path = Path(str(resources.files("attnsim.specs").joinpath("workloads")))
"""Where :func:`load_workload` looks up workloads given by name (the file stem)."""

SOURCED_FIELDS: tuple[str, ...] = ("batch", "d_model", "heads", "head_dim_e", "head_dim_f", "ffn",
                                   "seq_lengths")
"""The numeric fields whose origin every workload file must state under ``sources``."""


class LinearGemm(NamedTuple):
    """One matrix multiply of the encoder's linear layers: ``out[m, n] = sum_k in[m, k] * w[k, n]``.

    ``m`` is the number of rows (``B * P`` tokens), ``n`` the output width, ``k`` the reduction width,
    ``count`` how many GEMMs of this shape the layer runs.
    """

    name: str
    m: int
    n: int
    k: int
    count: int

    @property
    def macs(self) -> int:
        """Multiply-accumulates of all ``count`` GEMMs of this shape."""
        return self.m * self.n * self.k * self.count


def _strictly_increasing(values: tuple[int, ...]) -> tuple[int, ...]:
    if not values:
        raise PydanticCustomError("seq_lengths", "expected a non-empty list of sequence lengths")
    for before, after in zip(values, values[1:]):
        if after <= before:
            raise PydanticCustomError("seq_lengths", "expected strictly increasing sequence lengths, "
                                      "got {after} after {before}", {"after": after, "before": before})
    return values


class Workload(SpecDocument):
    """A validated, immutable workload. Build it with :func:`load_workload` or :meth:`from_mapping`.

    All sizes are element counts (not bytes); ``seq_lengths`` are token counts (``M = P``).
    """

    name: NonEmptyText
    description: Text = ""
    batch: PositiveInt
    d_model: PositiveInt
    heads: PositiveInt
    head_dim_e: PositiveInt
    head_dim_f: PositiveInt
    ffn: PositiveInt
    seq_lengths: tuple[PositiveInt, ...]
    source: NonEmptyText
    sources: dict[str, NonEmptyText]

    @field_validator("seq_lengths", mode="after")
    @classmethod
    def _check_seq_lengths(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        return _strictly_increasing(values)

    @model_validator(mode="after")
    def _every_number_has_a_source(self) -> Workload:
        unknown = sorted(set(self.sources) - set(SOURCED_FIELDS))
        if unknown:
            raise PydanticCustomError(
                "workload_consistency", "{message}",
                {"key_path": f"sources.{unknown[0]}",
                 "message": f"unknown key '{unknown[0]}' (known: {', '.join(SOURCED_FIELDS)})"})
        missing = [name for name in SOURCED_FIELDS if name not in self.sources]
        if missing:
            raise PydanticCustomError(
                "workload_consistency", "{message}",
                {"key_path": "sources", "message": f"missing the source of '{missing[0]}' (every one of "
                                                   f"{', '.join(SOURCED_FIELDS)} needs one)"})
        return self

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "<mapping>") -> Workload:
        """Validate a plain mapping (as read from YAML); errors name ``origin`` and the key path."""
        try:
            workload = cls.model_validate(data)
        except ValidationError as exc:
            raise MappingError(f"{origin}: {format_validation_error(exc, cls)}") from None
        workload._origin = origin
        return workload

    # -- derived quantities -------------------------------------------------------------------------

    def check_seq(self, seq: object) -> int:
        """``seq`` if it is a positive integer sequence length, else MappingError naming the workload."""
        if isinstance(seq, bool) or not isinstance(seq, int) or seq <= 0:
            raise MappingError(f"{self.origin}: seq: expected a positive integer sequence length, "
                               f"got {seq!r}")
        return seq

    def attention_macs(self, seq: int) -> int:
        """Multiply-accumulates of one attention layer: ``B*H*M*P*(E+F)`` (QK and AV), ``M = P = seq``.

        The softmax's operations are not MACs of these two GEMM-like Einsums and are not counted.
        """
        seq = self.check_seq(seq)
        return self.batch * self.heads * seq * seq * (self.head_dim_e + self.head_dim_f)

    def linear_gemms(self, seq: int) -> list[LinearGemm]:
        """The encoder layer's linear layers at sequence length ``seq`` (fact sheet §4.4), rows ``B*P``.

        Q, K and V projections (``k = D``, ``n = H*E`` for Q and K, ``H*F`` for V; one entry
        ``qkv_projection`` with count 3 when ``E == F``, as the artifact models Q once and copies it),
        the output projection (``k = H*F``, ``n = D``), FFN1 (``k = D``, ``n = S``) and FFN2
        (``k = S``, ``n = D``). LayerNorm, residuals and the activation are not GEMMs and are omitted.
        """
        rows = self.batch * self.check_seq(seq)
        width_e, width_f = self.heads * self.head_dim_e, self.heads * self.head_dim_f
        if width_e == width_f:
            projections = [LinearGemm("qkv_projection", rows, width_e, self.d_model, 3)]
        else:
            projections = [LinearGemm("qk_projection", rows, width_e, self.d_model, 2),
                           LinearGemm("v_projection", rows, width_f, self.d_model, 1)]
        return [*projections,
                LinearGemm("output_projection", rows, self.d_model, width_f, 1),
                LinearGemm("ffn1", rows, self.ffn, self.d_model, 1),
                LinearGemm("ffn2", rows, self.d_model, self.ffn, 1)]

    def linear_macs(self, seq: int) -> int:
        """Multiply-accumulates of all the linear layers of :meth:`linear_gemms` at ``seq``."""
        return sum(gemm.macs for gemm in self.linear_gemms(seq))


# --------------------------------------------------------------------------------------------------
# Reading files (validation errors -> one line: archsim.errors.format_validation_error).


def read_mapping_file(path: Path, display: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (duplicate keys rejected); MappingError otherwise."""
    try:
        return read_yaml_mapping(path, display)
    except SpecError as exc:
        raise MappingError(str(exc)) from None


# --------------------------------------------------------------------------------------------------
# Loading.


def available_workloads() -> list[str]:
    """Names of the workloads shipped in ``specs/workloads/`` (file stems), sorted."""
    return sorted(path.stem for path in WORKLOADS_DIR.glob("*.yaml"))


def load_workload(name_or_path: str | Path) -> Workload:
    """Load and validate a workload: a path to a YAML file, or the name of one in ``specs/workloads/``.

    Raises MappingError (one line, naming the file and the key path) on any problem.
    """
    path, display = resolve_named_file(name_or_path, WORKLOADS_DIR, "workload", available_workloads(),
                                       MappingError)
    return Workload.from_mapping(read_mapping_file(path, display), origin=display)
