"""Attention on GPU specs: one call -> one report (what ``attnsim gpu`` prints), and the published data.

Any cascade runs on a GPU with a ``target: gpu`` mapping (``specs/mappings/gpu-*.yaml``): the generic
mapper (:func:`mappers.gpu_cascade_mapper.map_cascade`) builds the schedules, :func:`run_gpu_mapping`
runs them on the engine and assembles the result -- the one place a GPU result is put together
(issue #11). ``--design NAME`` is a shorthand for a built-in (cascade, mapping) pair
(:data:`GPU_DESIGNS`). ``gpu_report`` returns a flat dict whose key names carry the units.
FlashAttention-2/-3's published H100 throughput (FA3 Fig. 5, Table 2) is data, not code:
``benchmarks/data/*.csv`` with its sources, read by ``benchmarks/fa3_published.py``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attnsim.archsim.engine import run as run_schedule
from attnsim.archsim.gpu_spec import DTYPES, GpuSpec, gpu_energy_breakdown_pj, load_gpu
from attnsim.einsum_ir import Cascade, builtin_names, builtin_path, resolve_cascade
from attnsim.mappers.gpu_cascade_mapper import map_cascade
from attnsim.mappers.gpu_common import (
    HEAD_DIMS,
    UNITS,
    GpuAttention,
    GpuMapping,
    copies_per_sm,
    dispatch_schedule,
    fa3_protocol_workload,
    waves,
)
from attnsim.mappers.gpu_mapping import gpu_section, with_switches
from attnsim.mappers.mapping_spec import MAPPINGS_DIR, MappingSpec, load_mapping
from attnsim.studies.errors import UsageError
from attnsim.studies.limits import MAX_GPU_ROWS, MAX_GPU_SEQ, size_problem

GPU_DESIGNS: dict[str, tuple[str, str]] = {
    "flash2": ("attention-1pass", "gpu-flash2"),
    "flash3": ("attention-1pass", "gpu-flash3"),
    "flat": ("attention-3pass-deferred", "gpu-flat"),
    "fusemax": ("attention-1pass", "gpu-fusemax"),
    "flashdecoding": ("split-k-attention", "gpu-flashdecoding"),
    "leanattention": ("split-k-attention", "gpu-leanattention"),
}
"""Design name -> (built-in cascade, mapping in specs/mappings/); causal calls use the cascade's
``-causal`` twin."""

SWITCHES: tuple[str, ...] = ("warp_specialized", "pingpong", "intra_pipeline")
"""Schedule switches of ``style: warp_specialized`` mappings (FA3's ablation)."""

DEFAULT_GPU = "h100-sxm"

REPORT_KEYS: tuple[str, ...] = (
    "design", "cascade", "mapping", "arch", "batch", "heads", "kv_heads", "seq", "q_len", "kv_len", "head_dim", "causal",
    "window", "dtype", "flops", "latency_s", "cycles", "traffic_bytes", "kv_cache_bytes", "hbm_bytes_per_s", "hbm_bandwidth_fraction",
    "tflops", "util_tensor", "util_mufu", "util_fp32", "util_smem", "util_l2", "util_hbm", "bound", "ctas",
    "resident_ctas", "waves", "block_m", "block_n", "energy_pj", "choices")
"""Keys of :func:`gpu_report` (and of ``attnsim gpu --json``)."""

def design_pair(design: str) -> tuple[str, str]:
    """The (cascade, mapping) names of ``--design``; UsageError for an unknown design."""
    if design not in GPU_DESIGNS:
        raise UsageError(f"gpu: --design: expected one of {', '.join(GPU_DESIGNS)}, got '{design}'")
    return GPU_DESIGNS[design]


def gpu_cascade(name_or_path: str, causal: bool) -> Cascade:
    """A cascade by name or path; with ``causal`` its causal form (a cascade with a filter, or the
    built-in ``<name>-causal``). UsageError when there is none."""
    cascade = _cached_cascade(name_or_path, _stamp(name_or_path))
    if not causal or is_causal(cascade):
        return cascade
    twin = f"{cascade.name}-causal"
    if twin in builtin_names():
        return _cached_cascade(twin, _stamp(twin))
    raise UsageError(f"gpu: --causal: cascade '{name_or_path}' has no causal form (expected a cascade "
                     f"with a filter such as 'where m <= p', or a built-in {twin})")


def _file_stamp(path: Path) -> tuple[str, int, int]:
    """What identifies a file's content for the caches below: its path, mtime and size."""
    try:
        stat = path.stat()
    except OSError:
        return (str(path), 0, 0)
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _stamp(name_or_path: str) -> tuple[str, int, int]:
    """The cache stamp of a cascade given by built-in name or path."""
    return _file_stamp(builtin_path(name_or_path) if name_or_path in builtin_names() else Path(name_or_path))


@functools.lru_cache(maxsize=64)
def _cached_cascade(name_or_path: str, stamp: tuple[str, int, int]) -> Cascade:
    """Parsing a cascade (sympy) costs far more than simulating a point: parse each file once."""
    return resolve_cascade(name_or_path)


def is_causal(cascade: Cascade) -> bool:
    """True when the cascade masks its scores (an Einsum has a filter)."""
    return any(einsum.filters for einsum in cascade.einsums)


DATAFLOW_MAPPINGS: dict[str, str] = {"flash2": "gpu-fa2-style", "flash3": "gpu-fa3-style"}
"""GPU mapping names that stand for a design's dataflow over *any* 1-pass cascade (``attnsim gpu
--cascade FILE --mapping flash2|flash3``): FA2's and FA3's tiles and schedules without the design's
grouping of the softmax Einsums (the design itself, ``--design flash2``, is the softmax cascade with
``gpu-flash2``)."""


def gpu_mapping_spec(name_or_path: str) -> MappingSpec:
    """A ``target: gpu`` mapping by name (specs/mappings/, or a :data:`DATAFLOW_MAPPINGS` name) or path;
    MappingError naming the file."""
    name_or_path = DATAFLOW_MAPPINGS.get(name_or_path, name_or_path)
    return _cached_mapping(name_or_path, _mapping_stamp(name_or_path))


def _mapping_stamp(name_or_path: str) -> tuple[str, int, int]:
    """The cache stamp of a mapping given by name (specs/mappings/) or path."""
    path = Path(name_or_path)
    return _file_stamp(path if path.suffix else MAPPINGS_DIR / f"{name_or_path}.yaml")


@functools.lru_cache(maxsize=64)
def _cached_mapping(name_or_path: str, stamp: tuple[str, int, int]) -> MappingSpec:
    mapping = load_mapping(name_or_path)
    gpu_section(mapping)
    return mapping


PHASES: tuple[str, ...] = ("prefill", "decode", "chunked-prefill")
"""``--phase``: queries = keys; one query per sequence over a KV cache; a chunk of queries (``--q-len``)."""


def make_workload(seq: int, head_dim: int, *, causal: bool = False, dtype: str = "fp16",
                  batch: int | None = None, heads: int | None = None, q_len: int | None = None,
                  kv_heads: int | None = None, phase: str = "prefill", window: int | None = None) -> GpuAttention:
    """FA3's protocol shape unless batch/heads are given; ``seq`` is the key/value length, ``q_len`` the
    query length (default by ``phase``: ``seq`` in prefill, 1 in decode; chunked prefill needs it).
    A causal mask over a single query (at the last position) masks nothing and is dropped, as FA2's
    ``mha_fwd`` does. ``window``: a causal sliding window of that many keys (implies causal).
    UsageError (one line) on bad values."""
    for name, value in (("--seq", seq), ("--batch", batch), ("--heads", heads), ("--q-len", q_len),
                        ("--kv-heads", kv_heads), ("--window", window)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UsageError(f"gpu: {name}: expected a positive integer, got {value!r}")
    if head_dim not in HEAD_DIMS:
        raise UsageError(f"gpu: --head-dim: expected one of {', '.join(map(str, HEAD_DIMS))}, "
                         f"got {head_dim!r}")
    if dtype not in DTYPES:
        raise UsageError(f"gpu: --dtype: expected one of {', '.join(DTYPES)}, got '{dtype}'")
    if phase not in PHASES:
        raise UsageError(f"gpu: --phase: expected one of {', '.join(PHASES)}, got '{phase}'")
    problem = size_problem("--seq", seq, MAX_GPU_SEQ, "GPU attention")
    if problem is not None:
        raise UsageError(f"gpu: {problem}")
    if q_len is None:
        if phase == "chunked-prefill":
            raise UsageError("gpu: --q-len: missing (--phase chunked-prefill needs the chunk's query length)")
        q_len = 1 if phase == "decode" else seq
    elif phase == "decode" and q_len != 1:
        raise UsageError(f"gpu: --q-len: expected 1 with --phase decode (one new token per sequence), got {q_len}")
    if q_len > seq:
        raise UsageError(f"gpu: --q-len: expected at most the KV length {seq}, got {q_len}")
    workload = fa3_protocol_workload(seq, head_dim, causal=causal and q_len > 1, dtype=dtype, batch=batch,
                                     heads=heads)
    if kv_heads is not None and workload.heads % kv_heads:
        raise UsageError(f"gpu: --kv-heads: expected a divisor of the {workload.heads} query heads, got {kv_heads}")
    workload = replace(workload, q_len=q_len, kv_heads=kv_heads or workload.heads)
    if window is not None:
        workload = replace(workload, causal=True, window=window)
    rows = workload.batch * workload.heads * workload.q_len
    problem = size_problem("--batch x --heads x --q-len", rows, MAX_GPU_ROWS, "GPU attention")
    if problem is not None:
        raise UsageError(f"gpu: {problem}")
    return workload


def predict(spec: GpuSpec, design: str, workload: GpuAttention,
            switches: Mapping[str, bool] | None = None) -> GpuRun:
    """Map ``workload`` with ``design``'s (cascade, mapping) on ``spec`` and simulate it."""
    cascade_name, mapping_name = design_pair(design)
    return predict_cascade(spec, cascade_name, mapping_name, workload, switches=switches, design=design)


def predict_cascade(spec: GpuSpec, cascade: str | Cascade, mapping: str | MappingSpec, workload: GpuAttention,
                    *, switches: Mapping[str, bool] | None = None, design: str | None = None) -> GpuRun:
    """Map ``workload`` with any cascade and GPU mapping (names or paths) on ``spec``; simulate it."""
    return run_gpu_mapping(build_gpu_mapping(spec, cascade, mapping, workload, switches=switches, design=design),
                           spec)


def build_gpu_mapping(spec: GpuSpec, cascade: str | Cascade, mapping: str | MappingSpec, workload: GpuAttention,
                      *, switches: Mapping[str, bool] | None = None, design: str | None = None) -> GpuMapping:
    """The schedules of one call (no engine run): the generic mapper on the resolved pair."""
    cascade_obj = gpu_cascade(cascade, workload.causal) if isinstance(cascade, str) else cascade
    mapping_obj = gpu_mapping_spec(mapping) if isinstance(mapping, str) else mapping
    section = gpu_section(mapping_obj)
    if switches:
        if section.style != "warp_specialized":
            raise UsageError(f"gpu: --no-warp-specialization/--no-pingpong/--no-intra-pipeline: only for "
                             f"warp_specialized mappings, got '{design or mapping_obj.name}'")
        section = with_switches(section, **{k: bool(v) for k, v in switches.items() if k in SWITCHES})
    if is_causal(cascade_obj) and not workload.causal:
        workload = replace(workload, causal=True)
    return map_cascade(cascade_obj, mapping_obj, workload, spec, section=section, design=design)


# --------------------------------------------------------------------------------------------------
# Running a mapping and assembling its result (the one place; mappers never run the engine).


@dataclass(frozen=True)
class GpuRun:
    """Outcome of :func:`run_gpu_mapping`: latency, FA3-convention TFLOPS, utilisations, bound, energy."""

    design: str
    workload: GpuAttention
    latency_s: float
    cycles: int
    tflops: float
    utilisation: dict[str, float]
    bound: str
    ctas: int
    resident_ctas: int
    waves: int
    actions: dict[str, float]
    energy_pj: float
    energy_breakdown_pj: dict[str, float]
    choices: dict[str, Any]

    @property
    def hbm_bytes(self) -> float:
        """HBM traffic (reads and writes), in bytes."""
        return self.actions.get("hbm.byte", 0.0)


SERIAL_BOUND_MARGIN = 1.1
"""``tensor+mufu`` is named the bound when the serialised tensor + exposed MUFU utilisation exceeds
every single unit's by this factor (the exponentials, not one unit alone, set the time)."""


def bounding_unit(utilisation: Mapping[str, float], tensor_mufu_serial: float) -> str:
    """The busiest unit, or ``tensor+mufu`` when the tensor cores and the non-overlapping MUFU work
    together are busier than any unit by :data:`SERIAL_BOUND_MARGIN`."""
    busiest = max(UNITS, key=lambda unit: (utilisation.get(unit, 0.0), -UNITS.index(unit)))
    if tensor_mufu_serial > SERIAL_BOUND_MARGIN * utilisation.get(busiest, 0.0):
        return "tensor+mufu"
    return busiest


def run_gpu_mapping(mapping: GpuMapping, spec: GpuSpec) -> GpuRun:
    """Run every distinct CTA group's schedule on the engine, then the CTA dispatch, then (split-K,
    stream-K) the merge CTAs' schedules and their dispatch; aggregate. A stream-K CTA's segments run
    one after the other: its cycles, busy cycles and actions are the sums of its segments'."""
    resident = mapping.occupancy.resident_ctas
    copies = copies_per_sm(mapping.ctas, spec.sms, resident)
    segments = dict.fromkeys(part for work in mapping.order for part in work.parts())
    results = {work: run_schedule(mapping.cta_schedule(work) if copies == resident else
                                  mapping.cta_schedule(work, copies)) for work in segments}
    cta_cycles = {work: sum(results[p].cycles for p in work.parts()) for work in dict.fromkeys(mapping.order)}
    dispatch = run_schedule(dispatch_schedule([cta_cycles[w] for w in mapping.order], spec.sms * copies,
                                              mapping.launch_cycles))
    total_cycles = dispatch.cycles
    busy = {unit: 0.0 for unit in UNITS}
    serial_busy = 0.0
    actions: dict[str, float] = {}
    overlap = spec.calibration_value("mufu_tensor_overlap")

    def add(result: Any, copies: int) -> None:
        nonlocal serial_busy
        for unit in UNITS:
            busy[unit] += result.busy_cycles.get(unit, 0.0) / copies
        serial_busy += (result.busy_cycles.get("tensor", 0.0)
                        + (1 - overlap) * result.busy_cycles.get("mufu", 0.0)) / copies
        for action, count in result.actions.items():
            actions[action] = actions.get(action, 0.0) + count / copies

    for work in mapping.order:   # each result covers `copies` CTAs
        for part in work.parts():
            add(results[part], copies)
    merge_cycles = 0
    if mapping.merges and mapping.merge_schedule is not None:
        merged = {parts: run_schedule(mapping.merge_schedule(parts)) for parts in dict.fromkeys(mapping.merges)}
        merge_cycles = run_schedule(dispatch_schedule([merged[p].cycles for p in mapping.merges], spec.sms)).cycles
        for parts in mapping.merges:
            add(merged[parts], 1)
        total_cycles += merge_cycles
    sm_cycles = total_cycles * spec.sms
    utilisation = {unit: busy[unit] / sm_cycles for unit in UNITS}
    latency_s = total_cycles / spec.clock_hz
    breakdown = gpu_energy_breakdown_pj(spec, actions, latency_s)
    return GpuRun(design=mapping.design, workload=mapping.workload, latency_s=latency_s, cycles=total_cycles,
                  tflops=mapping.workload.flops / latency_s / 1e12, utilisation=utilisation,
                  bound=bounding_unit(utilisation, serial_busy / sm_cycles), ctas=mapping.ctas,
                  resident_ctas=resident, waves=waves(mapping.ctas, spec.sms, resident), actions=actions,
                  energy_pj=math.fsum(breakdown.values()), energy_breakdown_pj=breakdown,
                  choices={**mapping.choices, "equal_ctas": len(set(mapping.order)) == 1,
                           "cta_cycles_max": max(cta_cycles.values()), "merge_cycles": merge_cycles,
                           "ctas_per_sm": copies})


def run_report(spec: GpuSpec, design: str, workload: GpuAttention, run: GpuRun) -> dict[str, Any]:
    """The flat report of one simulated call (keys :data:`REPORT_KEYS`)."""
    util = run.utilisation
    workload = run.workload
    return {
        "design": design, "cascade": run.choices.get("cascade"), "mapping": run.choices.get("mapping"),
        "arch": spec.name, "batch": workload.batch, "heads": workload.heads, "kv_heads": workload.kv_heads,
        "seq": workload.seq, "q_len": workload.q_len, "kv_len": workload.seq, "head_dim": workload.head_dim,
        "causal": workload.causal, "window": workload.window, "dtype": workload.dtype, "flops": workload.flops, "latency_s": run.latency_s,
        "cycles": run.cycles, "traffic_bytes": run.hbm_bytes, "kv_cache_bytes": workload.kv_cache_bytes,
        "hbm_bytes_per_s": run.hbm_bytes / run.latency_s,
        "hbm_bandwidth_fraction": run.hbm_bytes / run.latency_s / spec.memory.hbm_bandwidth_bytes_per_s.value,
        "tflops": run.tflops, "util_tensor": util["tensor"], "util_mufu": util["mufu"],
        "util_fp32": util["fp32"], "util_smem": util["smem"], "util_l2": util["l2"],
        "util_hbm": util["hbm"], "bound": run.bound, "ctas": run.ctas,
        "resident_ctas": run.resident_ctas, "waves": run.waves,
        "block_m": run.choices.get("block_m"), "block_n": run.choices.get("block_n"),
        "energy_pj": run.energy_pj,
        "choices": {k: v for k, v in run.choices.items() if k not in ("block_m", "block_n", "cascade", "mapping")},
    }


def gpu_report(arch: str, design: str | None, seq: int, head_dim: int, *, causal: bool = False,
               dtype: str = "fp16", batch: int | None = None, heads: int | None = None,
               switches: Mapping[str, bool] | None = None, cascade: str | None = None,
               mapping: str | None = None, overrides: dict[str, object] | None = None,
               q_len: int | None = None, kv_heads: int | None = None, phase: str = "prefill",
               window: int | None = None) -> dict[str, Any]:
    """Everything ``attnsim gpu --json`` prints (:data:`REPORT_KEYS`) for one call: ``design`` or an
    explicit ``cascade`` and ``mapping`` (names or paths); ``overrides``: ``{"dotted.key": value}``
    GPU-spec overrides (``--set``). ``seq``: the key/value length; ``q_len``, ``kv_heads``, ``phase``:
    :func:`make_workload`. ``traffic_bytes``: HBM reads + writes; ``hbm_bytes_per_s``: those over the
    latency, ``hbm_bandwidth_fraction`` of the spec's peak."""
    if design is not None and (cascade is not None or mapping is not None):
        raise UsageError("gpu: --design: give either --design or --cascade and --mapping, not both")
    if design is None:
        if cascade is None or mapping is None:
            raise UsageError(f"gpu: --{'mapping' if cascade is not None else 'cascade'}: missing (with "
                             f"--{'cascade' if cascade is not None else 'mapping'}, give both, or --design)")
    else:
        cascade, mapping = design_pair(design)
    workload = make_workload(seq, head_dim, causal=causal, dtype=dtype, batch=batch, heads=heads, q_len=q_len,
                             kv_heads=kv_heads, phase=phase, window=window)
    spec = load_gpu(arch, overrides)
    run = predict_cascade(spec, cascade, mapping, workload, switches=switches, design=design)
    return run_report(spec, design or run.design, workload, run)


def mape_percent(predicted: list[float], published: list[float]) -> float:
    """Mean absolute percentage error of ``predicted`` against ``published``, in percent."""
    if len(predicted) != len(published) or not published:
        raise ValueError("mape_percent: expected two non-empty lists of equal length")
    return 100.0 * sum(abs(p - q) / q for p, q in zip(predicted, published)) / len(published)


__all__ = ["DATAFLOW_MAPPINGS", "DEFAULT_GPU", "GPU_DESIGNS", "PHASES",
           "GpuRun", "REPORT_KEYS", "SWITCHES", "bounding_unit", "build_gpu_mapping", "design_pair", "gpu_cascade",
           "gpu_mapping_spec", "gpu_report", "is_causal", "make_workload", "mape_percent", "predict",
           "predict_cascade", "run_gpu_mapping", "run_report"]
