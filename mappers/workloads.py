"""Transformer workloads: YAML files in ``specs/workloads/`` -> validated, frozen :class:`Workload` objects.

A workload is a transformer run as inference: batch ``B``, model width ``D`` (``d_model``), ``H``
query heads of query/key width ``E`` (``head_dim_e``) and value width ``F`` (``head_dim_f``), ``HKV``
key/value heads (``kv_heads``; grouped-query attention shares one K/V head among ``H / HKV`` query heads,
multi-query attention has ``HKV = 1``), feed-forward width ``S`` (``ffn``, a plain ``mlp`` or a ``gated``
one: gate and up projections, then down), ``layers`` identical layers, an optional ``causal`` mask and
``sliding_window``, the ``phase`` and the lengths to study (``seq_lengths``).

What one point of ``seq`` tokens means depends on the phase (:meth:`Workload.attention_shape`):

- ``prefill`` (default; the FuseMax paper's encoders): self-attention, the key/value length ``M``
  equals the query length ``P`` = ``seq`` (fact sheet §1.0 and §5);
- ``decode``: one new query token per sequence attends over a KV cache of ``seq`` tokens (``P = 1``,
  ``M = seq``);
- ``chunked-prefill``: a chunk of ``chunk_size`` query tokens attends over ``seq`` tokens of context
  (``P = chunk_size``, ``M = seq``).

The paper's encoders (``kv_heads = heads``, one layer, no mask, prefill) keep their numbers. Every
number in a workload file carries a ``sources`` entry that says where it comes from.

Every error is a :class:`mappers.errors.MappingError` with a one-line message naming the file and the
key, e.g. ``specs/workloads/x.yaml: heads: expected a positive integer, got 0``.
"""
from __future__ import annotations

from importlib import resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

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

OPTIONAL_SOURCED_FIELDS: tuple[str, ...] = ("kv_heads", "layers", "ffn_kind", "causal", "sliding_window",
                                            "phase", "chunk_size")
"""Optional fields (defaults: the paper's encoders); a file that sets one must state its source too."""

PHASES: tuple[str, ...] = ("prefill", "decode", "chunked-prefill")
"""Inference phases: prompt processing, one token per step over a KV cache, prompt in chunks."""


class AttentionShape(NamedTuple):
    """The sizes of one attention call (element counts; ``q_len`` = P, ``kv_len`` = M)."""

    batch: int
    heads: int
    kv_heads: int
    q_len: int
    kv_len: int
    head_dim_e: int
    head_dim_f: int
    causal: bool
    sliding_window: int | None

    @property
    def group_size(self) -> int:
        """Query heads that share one key/value head (1: MHA, ``heads``: MQA)."""
        return self.heads // self.kv_heads

    def attended_pairs(self) -> int:
        """(query, key) pairs one head computes: ``P x M`` less what the causal mask and window remove.

        Queries are the last ``P`` positions of the ``M``-token context (query ``i`` sits at position
        ``M - P + i`` and, causal, sees the ``M - P + i + 1`` keys up to it); a window of ``W`` keeps the
        last ``W`` keys a query sees. Closed form of that sum (an arithmetic series clipped at ``W``).
        """
        window = self.sliding_window if self.sliding_window is not None else self.kv_len
        if not self.causal:
            return self.q_len * min(self.kv_len, window)
        first = self.kv_len - self.q_len + 1  # keys the first query sees; the last sees kv_len
        last = self.kv_len
        if window >= last:
            return (first + last) * self.q_len // 2
        if window <= first:
            return window * self.q_len
        below = window - first  # queries that see fewer than W keys: first .. W - 1 keys
        return (first + window - 1) * below // 2 + window * (self.q_len - below)

    def macs(self) -> int:
        """Multiply-accumulates of QK and AV over all heads: ``B H pairs (E + F)``."""
        return self.batch * self.heads * self.attended_pairs() * (self.head_dim_e + self.head_dim_f)

    def visible_kv_len(self) -> int:
        """Keys that some query sees: the whole cache, or with a causal window of ``W`` the last
        ``min(M, W + P - 1)`` (the first query, at position ``M - P``, sees back to ``M - P - W + 1``):
        a windowed decode step reads ``min(M, W)`` keys."""
        if self.causal and self.sliding_window is not None:
            return min(self.kv_len, self.sliding_window + self.q_len - 1)
        return self.kv_len

    def kv_read_bytes(self, word_bytes: int) -> int:
        """Bytes of the K and V that some query sees, read once: ``B HKV visible_kv_len (E + F) word``
        (:meth:`kv_bytes` without a window)."""
        return self.batch * self.kv_heads * self.visible_kv_len() * (self.head_dim_e + self.head_dim_f) * word_bytes

    def kv_bytes(self, word_bytes: int) -> int:
        """Bytes of K and V read once (the KV cache of one layer): ``B HKV M (E + F) word``."""
        return self.batch * self.kv_heads * self.kv_len * (self.head_dim_e + self.head_dim_f) * word_bytes


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
    kv_heads: PositiveInt | None = None
    layers: PositiveInt = 1
    ffn_kind: Literal["mlp", "gated"] = "mlp"
    causal: bool = False
    sliding_window: PositiveInt | None = None
    phase: Literal["prefill", "decode", "chunked-prefill"] = "prefill"
    chunk_size: PositiveInt | None = None

    @field_validator("seq_lengths", mode="after")
    @classmethod
    def _check_seq_lengths(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        return _strictly_increasing(values)

    @model_validator(mode="after")
    def _every_number_has_a_source(self) -> Workload:
        known = (*SOURCED_FIELDS, *OPTIONAL_SOURCED_FIELDS)
        unknown = sorted(set(self.sources) - set(known))
        if unknown:
            raise _consistency(f"sources.{unknown[0]}", f"unknown key '{unknown[0]}' (known: {', '.join(known)})")
        missing = [name for name in SOURCED_FIELDS if name not in self.sources]
        missing += [name for name in OPTIONAL_SOURCED_FIELDS
                    if name in self.model_fields_set and getattr(self, name) is not None
                    and name not in self.sources]
        if missing:
            raise _consistency("sources", f"missing the source of '{missing[0]}' (every number the file "
                                          f"sets needs one)")
        return self

    @model_validator(mode="after")
    def _heads_phase_and_window_agree(self) -> Workload:
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise _consistency("kv_heads", f"expected a divisor of heads = {self.heads} (each key/value "
                                           f"head serves a whole group of query heads), got {self.kv_heads}")
        if self.phase == "chunked-prefill" and self.chunk_size is None:
            raise _consistency("chunk_size", "missing: phase 'chunked-prefill' needs the chunk size (tokens)")
        if self.phase != "chunked-prefill" and self.chunk_size is not None:
            raise _consistency("chunk_size", f"only meaningful with phase 'chunked-prefill', not '{self.phase}'")
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

    @property
    def key_value_heads(self) -> int:
        """``kv_heads``, or ``heads`` where the file does not set it (multi-head attention)."""
        return self.kv_heads if self.kv_heads is not None else self.heads

    def attention_shape(self, seq: int, *, phase: str | None = None, q_len: int | None = None,
                        batch: int | None = None) -> AttentionShape:
        """The attention call of one layer at ``seq`` tokens in ``phase`` (default: the workload's).

        ``q_len`` overrides the phase's query length (e.g. a chunk); ``batch`` the workload's batch.
        """
        seq = self.check_seq(seq)
        phase = self.phase if phase is None else phase
        if phase not in PHASES:
            raise MappingError(f"{self.origin}: phase: expected one of {', '.join(PHASES)}, got {phase!r}")
        if q_len is None:
            q_len = {"prefill": seq, "decode": 1}.get(phase, self.chunk_size or seq)
        if isinstance(q_len, bool) or not isinstance(q_len, int) or not 0 < q_len <= seq:
            raise MappingError(f"{self.origin}: q_len: expected a positive integer of at most the KV length "
                               f"{seq}, got {q_len!r}")
        return AttentionShape(batch=self.batch if batch is None else batch, heads=self.heads,
                              kv_heads=self.key_value_heads, q_len=q_len, kv_len=seq,
                              head_dim_e=self.head_dim_e, head_dim_f=self.head_dim_f, causal=self.causal,
                              sliding_window=self.sliding_window)

    def attention_macs(self, seq: int) -> int:
        """Multiply-accumulates of one attention layer (QK and AV) at ``seq`` tokens in the workload's phase.

        Prefill without a mask: ``B*H*M*P*(E+F)`` with ``M = P = seq``; a causal mask or a window keeps
        only the attended (query, key) pairs (:meth:`AttentionShape.attended_pairs`). The softmax's
        operations are not MACs of these two GEMM-like Einsums and are not counted.
        """
        return self.attention_shape(seq).macs()

    def decoder_features(self) -> list[str]:
        """What this workload asks of attention beyond the paper's encoders (empty for them): fewer K/V
        heads than query heads, a causal mask, a sliding window, a phase other than prefill."""
        features = []
        if self.key_value_heads != self.heads:
            features.append(f"kv_heads = {self.key_value_heads} of heads = {self.heads} (GQA/MQA)")
        if self.causal:
            features.append("causal")
        if self.sliding_window is not None:
            features.append(f"sliding_window = {self.sliding_window}")
        if self.phase != "prefill":
            features.append(f"phase = {self.phase}")
        return features

    def require_encoder_attention(self, what: str) -> None:
        """MappingError naming the file when :meth:`decoder_features` is not empty: ``what`` (a design)
        models non-causal self-attention with one K/V head per query head, and would silently drop them."""
        features = self.decoder_features()
        if features:
            raise MappingError(f"{self.origin}: {what} models non-causal prefill self-attention with one K/V head "
                               f"per query head; this workload has {', '.join(features)} (not simulated yet: "
                               f"issue #15)")

    def with_shape(self, *, phase: str | None = None, q_len: int | None = None, batch: int | None = None,
                   heads: int | None = None, kv_heads: int | None = None, causal: bool | None = None) -> Workload:
        """This workload with its attention shape changed (the command line's ``--phase``, ``--q-len``,
        ``--batch``, ``--heads``, ``--kv-heads``, ``--causal``), validated again; None keeps a value.
        ``q_len`` is a chunk of queries (phase ``chunked-prefill`` with that ``chunk_size``)."""
        data = self.model_dump(exclude_unset=True, exclude_none=True)
        data.pop("sources", None)
        sources = dict(self.sources)
        changes = {"phase": phase, "batch": batch, "heads": heads, "kv_heads": kv_heads, "causal": causal}
        if q_len is not None:
            if phase not in (None, "chunked-prefill"):
                raise MappingError(f"{self.origin}: q_len: a query length is a chunk (phase chunked-prefill); "
                                   f"phase {phase} fixes it (prefill: the KV length, decode: 1)")
            changes.update(phase="chunked-prefill", chunk_size=q_len)
        if changes.get("phase") not in (None, "chunked-prefill"):
            data.pop("chunk_size", None)
            sources.pop("chunk_size", None)
        if heads is not None and kv_heads is None and "kv_heads" in data and heads % data["kv_heads"]:
            data.pop("kv_heads")
        for key, value in changes.items():
            if value is not None:
                data[key] = value
                sources[key] = "command line / caller override"
        data["sources"] = sources
        shown = ", ".join(f"{k} {v}" for k, v in changes.items() if v is not None)
        return Workload.from_mapping(data, f"{self.origin} ({shown})" if shown else self.origin)

    def kv_cache_bytes(self, seq: int, word_bytes: int = 2) -> int:
        """Bytes of the KV cache of all layers at ``seq`` tokens: ``layers B HKV seq (E + F) word``."""
        return self.layers * self.attention_shape(seq).kv_bytes(word_bytes)

    def linear_gemms(self, seq: int) -> list[LinearGemm]:
        """One layer's linear layers at ``seq`` tokens (fact sheet §4.4), rows ``B * P`` (``P`` per phase).

        Q, K and V projections (``k = D``, ``n = H*E`` for Q and K, ``H*F`` for V; one entry
        ``qkv_projection`` with count 3 when ``E == F``, as the artifact models Q once and copies it;
        with fewer K/V heads, ``q_projection`` and one ``kv_projection`` of ``n = HKV*(E+F)``), the
        output projection (``k = H*F``, ``n = D``), and the feed-forward network: FFN1 (``k = D``,
        ``n = S``) and FFN2 (``k = S``, ``n = D``), or, gated, ``ffn_gate_up`` (count 2) and ``ffn_down``.
        LayerNorm, residuals, the activation and the gate's product are not GEMMs and are omitted. In
        decode the rows are the ``B`` new tokens: every weight is read for a handful of rows.
        """
        shape = self.attention_shape(seq)
        rows = shape.batch * shape.q_len
        width_e, width_f = self.heads * self.head_dim_e, self.heads * self.head_dim_f
        kv_width_e, kv_width_f = self.key_value_heads * self.head_dim_e, self.key_value_heads * self.head_dim_f
        if self.key_value_heads != self.heads:  # GQA / MQA: narrower K and V projections
            projections = [LinearGemm("q_projection", rows, width_e, self.d_model, 1),
                           LinearGemm("kv_projection", rows, kv_width_e + kv_width_f, self.d_model, 1)]
        elif width_e == width_f:
            projections = [LinearGemm("qkv_projection", rows, width_e, self.d_model, 3)]
        else:
            projections = [LinearGemm("qk_projection", rows, width_e, self.d_model, 2),
                           LinearGemm("v_projection", rows, width_f, self.d_model, 1)]
        if self.ffn_kind == "gated":  # SwiGLU-style: gate and up (D -> S), then down (S -> D)
            ffn = [LinearGemm("ffn_gate_up", rows, self.ffn, self.d_model, 2),
                   LinearGemm("ffn_down", rows, self.d_model, self.ffn, 1)]
        else:
            ffn = [LinearGemm("ffn1", rows, self.ffn, self.d_model, 1),
                   LinearGemm("ffn2", rows, self.d_model, self.ffn, 1)]
        return [*projections, LinearGemm("output_projection", rows, self.d_model, width_f, 1), *ffn]

    def linear_macs(self, seq: int) -> int:
        """Multiply-accumulates of all the linear layers of :meth:`linear_gemms` at ``seq``."""
        return sum(gemm.macs for gemm in self.linear_gemms(seq))


def _consistency(key_path: str, message: str) -> PydanticCustomError:
    """A cross-field error reported at ``key_path`` (see :func:`format_validation_error`)."""
    return PydanticCustomError("workload_consistency", "{message}", {"key_path": key_path, "message": message})


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
