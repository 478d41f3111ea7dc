"""GPU specs: YAML files with ``kind: gpu`` in ``specs/arch/`` -> validated, frozen :class:`GpuSpec` objects.

A GPU spec describes an H100-like GPU at the level the attention mappers (``mappers.gpu_*``) need: the
number of SMs, the clocks, what one SM does per clock (tensor-core FLOPs per precision, FP32 FMA lanes,
MUFU ops, shared-memory bytes), its storage (register file, shared memory per SM and per CTA, L2), the
memory system (HBM and L2 bandwidth, planning latencies), named calibration constants and an energy
table. **Every number is a mapping with a ``source``** (``{value: 132, source: "..."}``); calibration
constants also carry a ``justification``; energy entries say whether they are ``estimate`` s. See
``specs/arch/h100-sxm.yaml`` for the annotated reference.

Units are in the key names: ``*_hz`` (Hz), ``*_bytes`` (bytes), ``*_bytes_per_s``, ``*_cycles``
(cycles of the tensor clock), energies in pJ per ``per`` (``flop``, ``op``, ``byte``) and power in W.

Every error is an :class:`archsim.errors.SpecError` with one line naming the file (or the ``--set``
override) and the key path, e.g. ``specs/arch/h100-sxm.yaml: sm_count.value: expected a positive
integer, got 0`` -- the same style as :mod:`archsim.spec`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from attnsim.archsim.errors import SpecError
from attnsim.archsim.spec import (
    NonEmptyText,
    SpecDocument,
    PositiveInt,
    PositiveNumber,
    Text,
    describe_value as _describe,
    _reject,
    available_archs,
    read_yaml_mapping,
    resolve_spec_path,
    set_path,
    spec_error,
)

GPU_KIND = "gpu"
"""The value of the top-level ``kind`` key that marks a GPU spec."""

DTYPES: tuple[str, ...] = ("fp16", "bf16", "fp8")
"""Element types the tensor cores are described for (``per_sm_per_clock.tensor_flops``)."""

DTYPE_BYTES: dict[str, int] = {"fp16": 2, "bf16": 2, "fp8": 1}
"""Bytes per element of each dtype (Q, K, V and the P operand of the second GEMM)."""


def _fraction(value: object) -> float:
    """A number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)) \
            or not 0.0 <= float(value) <= 1.0:
        raise _reject("fraction", "a number in [0, 1]", value)
    return float(value)


def _non_negative(value: object) -> float:
    """A number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)) \
            or float(value) < 0:
        raise _reject("non_negative_number", "a number >= 0", value)
    return float(value)


def _boolean(value: object) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise _reject("boolean", "true or false", value)
    return value


Fraction = Annotated[float, PlainValidator(_fraction)]
Boolean = Annotated[bool, PlainValidator(_boolean)]
NonNegative = Annotated[float, PlainValidator(_non_negative)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourcedInt(_Section):
    """A positive integer and where it comes from."""

    value: PositiveInt
    source: NonEmptyText


class SourcedNumber(_Section):
    """A positive number and where it comes from."""

    value: PositiveNumber
    source: NonEmptyText


class Calibration(_Section):
    """A named calibration constant: value in [0, 1], where it comes from and why it is needed.

    Calibration constants are shared by every point the model predicts; none is fitted per point.
    """

    value: Fraction
    source: NonEmptyText
    justification: NonEmptyText


class Clocks(_Section):
    """``tensor_hz``: the clock of the tensor-core FLOPS figures (FA3's fixed clock); ``boost_hz``."""

    tensor_hz: SourcedNumber
    boost_hz: SourcedNumber


class TensorFlops(_Section):
    """Dense tensor-core FLOPs per SM per clock for each element type."""

    fp16: SourcedInt
    bf16: SourcedInt
    fp8: SourcedInt | None = None   # absent: no FP8 tensor cores (A100)
    tf32: SourcedInt | None = None  # TF32 operands (FP32 inputs on the tensor cores); absent: not described


class PerSmPerClock(_Section):
    """What one SM does in one clock: tensor FLOPs, FP32 FMA lanes, MUFU results, shared-memory bytes."""

    tensor_flops: TensorFlops
    fp32_lanes: SourcedInt
    mufu_ops: SourcedInt
    smem_bytes: SourcedInt


class Storage(_Section):
    """On-chip capacities in bytes (register file and shared memory per SM, per CTA; L2 per GPU)."""

    register_file_bytes_per_sm: SourcedInt
    max_registers_per_thread: SourcedInt
    smem_bytes_per_sm: SourcedInt
    smem_bytes_per_cta: SourcedInt
    l2_bytes: SourcedInt


class Memory(_Section):
    """HBM and L2: capacity, bandwidth (bytes/s) and planning latencies (tensor-clock cycles)."""

    hbm_bytes: SourcedNumber
    hbm_bandwidth_bytes_per_s: SourcedNumber
    l2_bandwidth_bytes_per_s: SourcedNumber
    hbm_latency_cycles: SourcedInt
    l2_latency_cycles: SourcedInt


class Latencies(_Section):
    """Instruction latencies in SM clock cycles (issue to result / to completion), for the named
    schedule mechanisms that price exposed latency (mappers/gpu_mechanisms.py ``barrier_drain``).

    - ``smem_cycles``: a shared-memory access (``ld.shared`` / ``ldmatrix`` / ``st.shared``).
    - ``mma_sync_cycles``: one ``mma.sync`` (HMMA) instruction, issue to accumulator result.
    - ``fp32_cycles``: one dependent FP32 ALU instruction (FADD, FMUL, FFMA, the F32 -> F16 convert).
    """

    smem_cycles: SourcedInt
    mma_sync_cycles: SourcedInt
    fp32_cycles: SourcedInt


class CalibrationTable(_Section):
    """The model's named calibration constants (see ``specs/arch/h100-sxm.yaml`` for each justification).

    - ``mma_sync_tensor_fraction``: fraction of the tensor peak that legacy ``mma.sync`` reaches (FA2).
    - ``wgmma_tensor_fraction``: fraction of the tensor peak that ``wgmma`` reaches (FA3, FuseMax, FLAT).
    - ``mufu_tensor_overlap``: fraction of MUFU (exp) time that can run while the tensor cores run.
    """

    mma_sync_tensor_fraction: Calibration
    wgmma_tensor_fraction: Calibration
    mufu_tensor_overlap: Calibration


MUFU_PRIMITIVES_DEFAULT: tuple[str, ...] = ("exp", "log", "sqrt")
"""Functions the special-function unit computes when a spec declares no ``special_functions`` section."""


class SourcedNames(_Section):
    """A list of function names and where it comes from."""

    value: tuple[NonEmptyText, ...]
    source: NonEmptyText


class FunctionForm(_Section):
    """How the SM computes a composite map function: ``expr`` over its argument ``x`` in the Einsum
    expression grammar (e.g. ``0.5 * tanh(0.5 * x) + 0.5`` for sigmoid), and where it comes from."""

    expr: NonEmptyText
    source: NonEmptyText


class SpecialFunctions(_Section):
    """``mufu``: the functions one MUFU instruction computes (each counts one MUFU op);
    ``forms``: composite functions written in those (the form replaces the function's textbook
    definition when its cost is counted)."""

    mufu: SourcedNames
    forms: dict[str, FunctionForm] = {}


class EnergyEntry(_Section):
    """``pj`` picojoules per ``per`` (one FLOP, one op, one byte); ``estimate`` marks unmeasured values."""

    pj: NonNegative
    per: Literal["flop", "op", "byte"]
    source: NonEmptyText
    estimate: Boolean


class Power(_Section):
    """Board power in W: the TDP (an upper bound for checks) and the static (idle) power charged per second."""

    tdp_w: SourcedNumber
    static_w: SourcedNumber


ENERGY_ACTIONS: dict[str, str] = {
    "tensor.flop_fp16": "flop", "tensor.flop_bf16": "flop", "tensor.flop_fp8": "flop",
    "fp32.op": "op", "mufu.op": "op", "smem.byte": "byte", "l2.byte": "byte", "hbm.byte": "byte",
}
"""Every action a GPU schedule counts, and the unit one count is in."""

OPTIONAL_ENERGY_ACTIONS: dict[str, str] = {"tensor.flop_tf32": "flop"}
"""Actions a spec may price (a schedule that counts one on a spec without it is refused by
:func:`gpu_energy_breakdown_pj`, naming the action): TF32 tensor FLOPs (FP32 operands, Lightning-2's
Triton kernel)."""

TENSOR_TYPES: tuple[str, ...] = DTYPES + ("tf32",)
"""Operand types the tensor cores may be described for: the workload dtypes plus TF32."""


GPU_FEATURES: tuple[str, ...] = ("mma_sync", "cp_async", "wgmma", "tma", "warp_specialization", "clusters")
"""Instruction-set features a GPU mapping may need: ``mma.sync`` tensor instructions, ``cp.async`` copies
(Ampere+), and Hopper's ``wgmma``, TMA, warp specialisation with register reallocation (``setmaxnreg``)
and thread-block clusters (TMA multicast)."""


class Features(_Section):
    """The features of :data:`GPU_FEATURES` the GPU has, with where that is stated."""

    value: list[Literal["mma_sync", "cp_async", "wgmma", "tma", "warp_specialization", "clusters"]]
    source: NonEmptyText


class GpuSpec(SpecDocument):
    """A validated, immutable GPU spec. Build it with :func:`load_gpu` or :meth:`from_mapping`."""

    kind: Literal["gpu"]
    name: NonEmptyText
    description: Text = ""
    sm_count: SourcedInt
    clocks: Clocks
    per_sm_per_clock: PerSmPerClock
    storage: Storage
    memory: Memory
    calibration: CalibrationTable
    power: Power
    energy: dict[str, EnergyEntry]
    features: Features | None = None   # absent: every feature of GPU_FEATURES (Hopper)
    special_functions: SpecialFunctions | None = None
    latencies: Latencies | None = None   # absent: mechanisms that need instruction latencies refuse

    # -- derived quantities -----------------------------------------------------------------------

    @property
    def sms(self) -> int:
        """Number of SMs."""
        return self.sm_count.value

    @property
    def clock_hz(self) -> float:
        """The clock the model runs at (the tensor clock of FA3's protocol), in Hz."""
        return self.clocks.tensor_hz.value

    def tensor_flops_per_cycle(self, dtype: str) -> int:
        """Dense tensor-core FLOPs per SM per clock for ``dtype`` (fp16, bf16, fp8, tf32)."""
        if dtype not in TENSOR_TYPES:
            raise SpecError(f"{self._origin}: dtype: expected one of {', '.join(TENSOR_TYPES)}, got {dtype!r}")
        entry = getattr(self.per_sm_per_clock.tensor_flops, dtype)
        if entry is None:
            raise SpecError(f"{self._origin}: per_sm_per_clock.tensor_flops.{dtype}: missing ({self.name} has "
                            f"no {dtype} tensor cores)")
        return entry.value

    def has_feature(self, feature: str) -> bool:
        """True when the GPU has ``feature`` (one of :data:`GPU_FEATURES`)."""
        return self.features is None or feature in self.features.value

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The GPU's features (:data:`GPU_FEATURES` when the spec lists none)."""
        return GPU_FEATURES if self.features is None else tuple(self.features.value)

    def peak_tensor_flops_per_s(self, dtype: str) -> float:
        """Dense tensor peak of the whole GPU in FLOP/s at the tensor clock."""
        return self.sms * self.tensor_flops_per_cycle(dtype) * self.clock_hz

    @property
    def hbm_bytes_per_cycle_per_sm(self) -> float:
        """One SM's share of the HBM bandwidth, in bytes per tensor-clock cycle (all SMs busy)."""
        return self.memory.hbm_bandwidth_bytes_per_s.value / (self.sms * self.clock_hz)

    @property
    def l2_bytes_per_cycle_per_sm(self) -> float:
        """One SM's share of the L2 bandwidth, in bytes per tensor-clock cycle (all SMs busy)."""
        return self.memory.l2_bandwidth_bytes_per_s.value / (self.sms * self.clock_hz)

    @property
    def mufu_functions(self) -> frozenset[str]:
        """Functions one MUFU instruction computes (``special_functions.mufu``; default exp, log, sqrt)."""
        if self.special_functions is None:
            return frozenset(MUFU_PRIMITIVES_DEFAULT)
        return frozenset(self.special_functions.mufu.value)

    @property
    def function_forms(self) -> dict[str, str]:
        """Composite function -> the expression over ``x`` the SM evaluates it with (may be empty)."""
        if self.special_functions is None:
            return {}
        return {name: form.expr for name, form in self.special_functions.forms.items()}

    def calibration_value(self, name: str) -> float:
        """The value of calibration constant ``name``."""
        return getattr(self.calibration, name).value

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "<mapping>") -> GpuSpec:
        """Validate a plain mapping (as read from YAML); errors name ``origin`` and the key path."""
        return _validate(data, origin, {})

    def with_overrides(self, overrides: Mapping[str, object] | None) -> GpuSpec:
        """A new, re-validated spec with ``{"dotted.key.path": value}`` replaced; self is unchanged.

        E.g. ``{"memory.hbm_bandwidth_bytes_per_s.value": 4.8e12}``. Unknown keys are refused.
        """
        if not overrides:
            return self
        data = self.model_dump()
        for key, value in overrides.items():
            set_path(GpuSpec, data, key, value, new_entries=False)
        return _validate(data, self._origin, dict(overrides))

    # -- cross-field checks ---------------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_consistency(self) -> GpuSpec:
        storage = self.storage
        if storage.smem_bytes_per_cta.value > storage.smem_bytes_per_sm.value:
            raise _inconsistent("storage.smem_bytes_per_cta.value",
                                f"expected at most smem_bytes_per_sm ({storage.smem_bytes_per_sm.value}), "
                                f"got {storage.smem_bytes_per_cta.value}")
        if self.clocks.boost_hz.value < self.clocks.tensor_hz.value:
            raise _inconsistent("clocks.boost_hz.value", f"expected at least tensor_hz "
                                f"({self.clocks.tensor_hz.value:g}), got {self.clocks.boost_hz.value:g}")
        for key, entry in self.energy.items():
            known = {**ENERGY_ACTIONS, **OPTIONAL_ENERGY_ACTIONS}
            if key not in known:
                raise _inconsistent(f"energy.{key}", f"unknown action '{key}' (known: "
                                    f"{', '.join(known)})")
            if entry.per != known[key]:
                raise _inconsistent(f"energy.{key}.per", f"expected '{known[key]}' for {key}, "
                                    f"got '{entry.per}'")
        missing = [key for key in ENERGY_ACTIONS if key not in self.energy]
        if missing:
            raise _inconsistent("energy", f"missing entry '{missing[0]}'")
        if self.special_functions is not None:
            _check_special_functions(self.special_functions)
        if self.power.static_w.value > self.power.tdp_w.value:
            raise _inconsistent("power.static_w.value", f"expected at most tdp_w "
                                f"({self.power.tdp_w.value:g}), got {self.power.static_w.value:g}")
        return self


def _check_special_functions(section: SpecialFunctions) -> None:
    """Every name is a known function and every form parses over ``x`` with the Einsum grammar."""
    from attnsim.einsum_ir import functions
    from attnsim.einsum_ir.errors import CascadeError
    from attnsim.einsum_ir.syntax import parse_function_body
    for i, name in enumerate(section.mufu.value):
        if functions.get_function(name) is None:
            raise _inconsistent(f"special_functions.mufu.value[{i}]", f"unknown function '{name}' (known: "
                                f"{', '.join(functions.function_names())})")
    for name, form in section.forms.items():
        if functions.get_function(name) is None:
            raise _inconsistent(f"special_functions.forms.{name}", f"unknown function '{name}'")
        try:
            parse_function_body(form.expr, ("x",), line=1, source=f"form of {name}")
        except CascadeError as exc:
            raise _inconsistent(f"special_functions.forms.{name}.expr",
                                f"expected an expression of x in the Einsum grammar ({exc})") from None


# --------------------------------------------------------------------------------------------------
# Validation errors -> SpecError (one line: origin, key path, what was expected).


def _inconsistent(key_path: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("gpu_consistency", "{message}", {"key_path": key_path, "message": message})


def _validate(data: Mapping[str, Any], origin: str, overrides: Mapping[str, object]) -> GpuSpec:
    if not isinstance(data, Mapping):
        raise SpecError(f"{origin}: expected a mapping of keys at the top level, got {_describe(data)}")
    if data.get("kind") != GPU_KIND:
        raise SpecError(f"{origin}: kind: expected 'gpu' (a GPU spec starts with 'kind: gpu'), got "
                        f"{_describe(data.get('kind')) if 'kind' in data else 'no kind key'}")
    try:
        spec = GpuSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(GpuSpec, exc, origin, overrides) from None
    spec._origin = origin
    return spec


# --------------------------------------------------------------------------------------------------
# Loading.


def is_gpu_mapping(data: Mapping[str, Any]) -> bool:
    """True if a spec mapping (as read from YAML) declares ``kind: gpu``."""
    return isinstance(data, Mapping) and data.get("kind") == GPU_KIND


def available_gpus() -> list[str]:
    """Names (file stems) of the GPU specs shipped in ``specs/arch/``."""
    return available_archs("gpu")


def load_gpu(path_or_name: str | Path, overrides: Mapping[str, object] | None = None) -> GpuSpec:
    """Load and validate a GPU spec: a path to a YAML file, or the name of one in ``specs/arch/``.

    Raises SpecError (one line, naming the file or override and the key path) on any problem.
    """
    path, display = resolve_spec_path(path_or_name, GPU_KIND)
    spec = _validate(read_yaml_mapping(path, display), display, {})
    return spec.with_overrides(overrides)


# --------------------------------------------------------------------------------------------------
# Energy.


def gpu_energy_breakdown_pj(spec: GpuSpec, actions: Mapping[str, float], latency_s: float) -> dict[str, float]:
    """Energy in pJ per action key, plus ``static`` (static power x ``latency_s``).

    ``actions`` = {action: count} in the units of :data:`ENERGY_ACTIONS` (FLOPs, ops, bytes). Raises
    SpecError naming the action if the table has no entry for it or a count is negative / not finite.
    """
    breakdown: dict[str, float] = {}
    for action, count in actions.items():
        entry = spec.energy.get(action)
        if entry is None:
            raise SpecError(f"{spec.origin}: energy: no entry for action '{action}' "
                            f"(known: {', '.join(spec.energy)})")
        if isinstance(count, bool) or not isinstance(count, (int, float)) or not math.isfinite(count) \
                or count < 0:
            raise SpecError(f"action '{action}': expected a count >= 0, got {count!r}")
        breakdown[action] = count * entry.pj
    if not math.isfinite(latency_s) or latency_s < 0:
        raise SpecError(f"latency_s: expected a number >= 0, got {latency_s!r}")
    breakdown["static"] = spec.power.static_w.value * latency_s * 1e12
    return breakdown

