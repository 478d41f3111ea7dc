"""Simulate one attention design -- or any cascade under a mapping file -- at one (model, sequence length)
point: map, run the engine, report.

:func:`simulate` is what ``attnsim simulate`` prints (``--json``) and what ``attnsim paper`` runs per
point. Units are in the key names: ``latency_s``, ``cycles``, ``energy_pj``, ``traffic_bytes``,
``area_mm2``; utilisations are fractions of the array's PE-cycles.

End to end (``end_to_end=True``): the encoder layer's linear layers (``Workload.linear_gemms``: Q/K/V
projections, output projection, FFN1, FFN2) are mapped by :mod:`mappers.gemm` on the same
architecture with fully pipelined folds (``fill_drain="overlapped"``), each with the dataflow whose
plan promises the fewest cycles (``max(DRAM time, MAC steps)`` from :func:`mappers.gemm.plan_gemm`);
only that one is simulated. Top-level ``latency_s``, ``cycles``, ``energy_pj`` and ``traffic_bytes``
become ``layers`` x (attention + linear) (the paper's encoders have one layer); ``util_2d``, ``util_1d``
and ``per_einsum`` stay those of attention (the paper's utilisation figures are attention-only). A
workload with more than one layer (the decoder LLMs) also gets the per-token keys of studies/llm.py:
``per_layer_latency_s``, ``ttft_s`` (prefill) / ``tpot_s`` (decode), ``weight_bytes``,
``kv_cache_bytes_per_step`` / ``_per_token``, and ``parts`` (each with its ``bound``: ``2d_array``,
``1d_array`` or ``dram``, the busiest resource). ``shape`` overrides the workload's phase, batch, heads, ...
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from attnsim.archsim.engine import run as run_schedule
from attnsim.archsim.result import Result
from attnsim.archsim.spec import Arch, load_arch
from attnsim.archsim.trace import write_trace
from attnsim.studies.limits import MAX_ATTENTION_SEQ, size_problem
from attnsim.studies.outputs import output_file
from attnsim.mappers.attention_ops import bytes_per_cycle
from attnsim.mappers.designs import DESIGNS, MapOptions, design as design_entry, mapper as design_mapper, masked_point
from attnsim.mappers.gemm import DATAFLOWS, map_gemm, plan_gemm
from attnsim.mappers.workloads import Workload, load_workload
from attnsim.studies.errors import UsageError

TRACE_MAX_OPS = 200_000
"""``--trace`` refuses schedules that execute more operations than this (one CSV row each)."""

ARRAYS = ("pe2d", "pe1d")


def parse_seq(text: str | int, option: str = "--seq") -> int:
    """``"4096"``, ``"4K"`` (x1024) or ``"1M"`` (x1048576) -> a positive int; UsageError naming ``option``."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        raw = str(text).strip()
        scale = {"k": 1024, "m": 1024 * 1024}.get(raw[-1:].lower(), 1)
        digits = raw[:-1] if scale > 1 else raw
        try:
            value = int(digits) * scale
        except ValueError:
            raise UsageError(f"{option}: expected a positive integer (optionally with K or M), "
                             f"got '{text}'") from None
    if value < 1:
        raise UsageError(f"{option}: expected a positive integer, got {value}")
    return value


def load_mapper(name: str):  # type: ignore[no-untyped-def]
    """The design's ``map_attention``; MappingError for an unknown design, UsageError if not importable."""
    entry = design_entry(name)
    try:
        return design_mapper(name)
    except (ImportError, AttributeError) as exc:
        reason = " ".join(str(exc).split())
        raise UsageError(f"design '{name}': its mapper {entry.entry} is not available ({reason})") from None


def per_einsum_report(result: Result) -> dict[str, dict[str, float]]:
    """Einsum -> busy cycles on each array / total cycles, and busy cycles on the arrays."""
    total = result.cycles
    report = {}
    for einsum, busy in sorted(result.per_einsum.items()):
        array_busy = {unit: busy.get(unit, 0.0) for unit in ARRAYS}
        if not einsum or not any(array_busy.values()):
            continue
        report[einsum] = {"util_2d": array_busy["pe2d"] / total if total else 0.0,
                          "util_1d": array_busy["pe1d"] / total if total else 0.0,
                          "cycles": array_busy["pe2d"] + array_busy["pe1d"]}
    return report


def _estimated_gemm_cycles(m: int, n: int, k: int, arch: Arch, dataflow: str) -> float:
    plan = plan_gemm(m, n, k, arch, dataflow, "overlapped")
    mac_steps = sum(fold.temporal * count for fold, count in plan.fold_kinds)
    dram = (plan.dram_read_bytes + plan.dram_write_bytes) / float(bytes_per_cycle(arch))
    return max(mac_steps, dram)


@lru_cache(maxsize=256)
def _linear_gemm(m: int, n: int, k: int, arch: Arch) -> dict[str, Any]:
    """One linear layer on ``arch``: the most promising dataflow, simulated (cached per shape and arch)."""
    dataflow = min(DATAFLOWS, key=lambda df: (_estimated_gemm_cycles(m, n, k, arch, df), DATAFLOWS.index(df)))
    result = run_schedule(map_gemm(m, n, k, arch, dataflow, "overlapped", einsum="linear"), arch)
    return {"dataflow": dataflow, "cycles": result.cycles, "latency_s": result.latency_s,
            "energy_pj": result.energy_pj, "traffic_bytes": result.traffic_bytes,
            "util_2d": result.utilisation.get("pe2d", 0.0), "util_1d": result.utilisation.get("pe1d", 0.0)}


def spatial_bound(util_2d: float, util_1d: float, traffic_bytes: float, cycles: float, arch: Arch) -> str:
    """The busiest resource of a spatial run: ``2d_array``, ``1d_array`` or ``dram`` (traffic over the
    DRAM interface's bytes per cycle, as a fraction of the cycles)."""
    dram = traffic_bytes / float(bytes_per_cycle(arch)) / cycles if cycles else 0.0
    busy = {"2d_array": util_2d, "1d_array": util_1d, "dram": dram}
    return max(busy, key=lambda name: (busy[name], -list(busy).index(name)))


def linear_layers(workload: Workload, seq: int, arch: Arch) -> dict[str, Any]:
    """The encoder layer's linear layers at ``seq`` on ``arch``: totals and one entry per layer."""
    layers = []
    for gemm in workload.linear_gemms(seq):
        one = _linear_gemm(gemm.m, gemm.n, gemm.k, arch)
        layers.append({"name": gemm.name, "m": gemm.m, "n": gemm.n, "k": gemm.k, "count": gemm.count, **one})
    return {
        "layers": layers,
        "cycles": sum(layer["cycles"] * layer["count"] for layer in layers),
        "latency_s": math.fsum(layer["latency_s"] * layer["count"] for layer in layers),
        "energy_pj": math.fsum(layer["energy_pj"] * layer["count"] for layer in layers),
        "traffic_bytes": math.fsum(layer["traffic_bytes"] * layer["count"] for layer in layers),
    }


def attention_bounds(workload: Workload, seq: int, arch: Arch, result: Result) -> dict[str, Any]:
    """The point's attention shape and what bounds it: ``kv_bytes`` (K and V of one layer, read once),
    ``kv_read_bytes`` (the K and V some query sees: the last ``min(M, W + P - 1)`` keys under a causal
    window), ``compulsory_bytes`` (Q, the K and V read, and the output, each moved once), ``dram_floor_s`` = compulsory bytes
    over the DRAM bandwidth (no mapping is faster), ``dram_bandwidth_fraction`` (achieved traffic /
    latency over the bandwidth) and ``bound``: the busiest of the DRAM channel and the two arrays
    (:func:`spatial_bound`)."""
    shape = workload.attention_shape(seq)
    word = arch.word_bytes
    queries = shape.batch * shape.heads * shape.q_len
    compulsory = shape.kv_read_bytes(word) + queries * (shape.head_dim_e + shape.head_dim_f) * word
    bandwidth = float(arch.dram.bandwidth_bytes_per_s)
    return {
        "phase": workload.phase, "batch": shape.batch, "heads": shape.heads, "kv_heads": shape.kv_heads,
        "q_len": shape.q_len, "kv_len": shape.kv_len, "causal": shape.causal,
        "kv_bytes": shape.kv_bytes(word), "kv_read_bytes": shape.kv_read_bytes(word), "compulsory_bytes": compulsory,
        "dram_floor_s": compulsory / bandwidth,
        "dram_bandwidth_fraction": result.traffic_bytes / result.latency_s / bandwidth if result.latency_s else 0.0,
        "bound": spatial_bound(result.utilisation.get("pe2d", 0.0), result.utilisation.get("pe1d", 0.0),
                               result.traffic_bytes, result.cycles, arch),
    }


def _resolve_mapping(design: str | None, cascade: str | None, mapping: Any, masked: bool = False
                     ) -> tuple[str, str | None, str | None, Any, Any, str | None]:
    """(label, cascade name, mapping name, Cascade, MappingSpec, default arch) of the point; ``masked``:
    the point needs the causal mask (a design then runs its ``causal_cascade``)."""
    from attnsim.mappers.cascade_mapper import load_cascade_arg
    from attnsim.mappers.mapping_spec import load_mapping

    if design is not None:
        if mapping is not None or cascade is not None:
            raise UsageError("--design is a shorthand for --cascade and --mapping; give one or the other")
        entry = design_entry(design)
        cascade_name = entry.cascade_for(masked)
        if entry.mapping is None:
            return design, cascade_name, None, None, None, entry.default_arch
        return (design, cascade_name, entry.mapping, load_cascade_arg(cascade_name), load_mapping(entry.mapping),
                entry.default_arch)
    if mapping is None:
        raise UsageError("expected --design, or --mapping (with --cascade unless the mapping names its cascade)")
    from attnsim.mappers.mapping_spec import MappingSpec

    spec = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
    cascade_name = cascade or spec.cascade
    if cascade_name is None:
        raise UsageError(f"{spec.origin}: the mapping names no cascade; give --cascade")
    label = spec.name
    return label, cascade_name, spec.name, load_cascade_arg(cascade_name), spec, spec.arch


def simulate(design: str | None, model: str | Workload, seq: int, arch: str | Path | Arch | None = None,
             overrides: dict[str, object] | None = None, end_to_end: bool = False, closed_form: bool = False,
             trace: str | Path | None = None, cascade: str | None = None,
             mapping: Any = None, shape: dict[str, Any] | None = None) -> dict[str, Any]:
    """Map ``design`` (or ``cascade`` under ``mapping``) for ``model`` at ``seq`` tokens on ``arch``
    (default: the design's or the mapping's), run it, report.

    Args:
        design: a name in :data:`mappers.designs.DESIGNS` (a shorthand for its cascade and mapping), or
            None with ``mapping``.
        model: a workload name in ``specs/workloads/``, a YAML path, or a Workload.
        seq: sequence length M = P (tokens).
        arch: architecture name, YAML path or Arch; None = the design's ``default_arch``.
        overrides: ``{"dotted.key": value}`` architecture overrides (``--set``).
        end_to_end: add the linear layers (module docstring).
        closed_form: map with ``MapOptions(closed_form=True)`` (the artifact's analytical model).
        trace: write the attention schedule's per-operation timeline there (full simulation; refused above
            :data:`TRACE_MAX_OPS` operations): trace-event JSON for Perfetto, CSV for a ``.csv`` suffix.
        cascade: a built-in cascade name or a cascade file (default: the mapping's ``cascade``).
        mapping: a mapping name in ``specs/mappings/``, a mapping file or a MappingSpec (with ``design=None``).
        shape: changes to the workload's attention shape (:meth:`Workload.with_shape`: ``phase``,
            ``q_len``, ``batch``, ``heads``, ``kv_heads``, ``causal``); ``seq`` is then the KV length.
            A causal point with more than one query runs a design's causal cascade.

    Raises the layers' user errors (UsageError, MappingError, SpecError) with one-line messages.
    """
    from attnsim.mappers.cascade_mapper import map_cascade

    if trace is not None:
        output_file("--trace", trace)
    workload = model if isinstance(model, Workload) else load_workload(model)
    if shape:
        workload = workload.with_shape(**shape)
    seq = workload.check_seq(seq)
    label, cascade_name, mapping_name, cascade_obj, mapping_obj, default_arch = _resolve_mapping(
        design, cascade, mapping, masked_point(workload, seq))
    problem = size_problem("--seq", seq, MAX_ATTENTION_SEQ, "attention on a spatial array")
    if problem is not None:
        raise UsageError(problem)
    if isinstance(arch, Arch):
        arch_spec = arch.with_overrides(overrides)
    else:
        if arch is None and default_arch is None:
            raise UsageError(f"{mapping_obj.origin}: the mapping names no arch; give --arch")
        arch_spec = load_arch(arch if arch is not None else default_arch, overrides)
    options = MapOptions(closed_form=closed_form)
    if mapping_obj is None:
        mapped = load_mapper(label)(workload, seq, arch_spec, options=options)
    else:
        mapped = map_cascade(cascade_obj, mapping_obj, workload, seq, arch_spec, options=options)
    schedule = mapped.schedule
    if trace is not None and schedule.op_count > TRACE_MAX_OPS:
        raise UsageError(f"--trace: the schedule executes {schedule.op_count} operations, more than the "
                         f"{TRACE_MAX_OPS} a trace may hold; use a smaller --seq or model")
    result = run_schedule(schedule, arch_spec, trace=trace is not None)
    if trace is not None:
        write_trace(result, trace, process_name=f"{label} on {arch_spec.name}: {workload.name}, seq {seq}")
    report: dict[str, Any] = {
        "design": label, "cascade": cascade_name, "mapping": mapping_name,
        "model": workload.name, "seq": seq, "arch": arch_spec.name,
        "closed_form": closed_form,
        "latency_s": result.latency_s, "cycles": result.cycles, "energy_pj": result.energy_pj,
        "traffic_bytes": result.traffic_bytes,
        "util_2d": result.utilisation.get("pe2d", 0.0), "util_1d": result.utilisation.get("pe1d", 0.0),
        "area_mm2": result.area_mm2, "array_pes_2d": arch_spec.pes_2d, "array_pes_1d": arch_spec.pes_1d,
        "per_einsum": per_einsum_report(result),
        "energy_breakdown_pj": dict(result.energy_breakdown_pj),
        "choices": mapped.choices,
        **attention_bounds(workload, seq, arch_spec, result),
    }
    if end_to_end:
        linear = linear_layers(workload, seq, arch_spec)
        layers = workload.layers
        report.update({
            "attention_latency_s": layers * result.latency_s, "linear_latency_s": layers * linear["latency_s"],
            "attention_energy_pj": layers * result.energy_pj, "linear_energy_pj": layers * linear["energy_pj"],
            "attention_cycles": layers * result.cycles, "linear_cycles": layers * linear["cycles"],
            "attention_traffic_bytes": layers * result.traffic_bytes,
            "linear_traffic_bytes": layers * linear["traffic_bytes"],
            "linear_layers": linear["layers"],
            "latency_s": layers * (result.latency_s + linear["latency_s"]),
            "energy_pj": layers * (result.energy_pj + linear["energy_pj"]),
            "cycles": layers * (result.cycles + linear["cycles"]),
            "traffic_bytes": layers * (result.traffic_bytes + linear["traffic_bytes"]),
        })
        if layers > 1:
            report.update(_per_token(workload, seq, arch_spec, report, result, linear))
    return report


def _per_token(workload: Workload, seq: int, arch: Arch, report: dict[str, Any], attention: Result,
               linear: dict[str, Any]) -> dict[str, Any]:
    """The per-token keys of a multi-layer (decoder LLM) workload (module docstring)."""
    from attnsim.studies.llm import PHASE_LATENCY_KEYS

    shape = workload.attention_shape(seq)
    word = arch.word_bytes
    parts = [{"name": "attention", "count": 1, "latency_s": attention.latency_s,
              "traffic_bytes": attention.traffic_bytes,
              "bound": spatial_bound(report["util_2d"], report["util_1d"], attention.traffic_bytes,
                                     attention.cycles, arch)}]
    for layer in linear["layers"]:
        parts.append({"name": layer["name"], "count": layer["count"], "latency_s": layer["latency_s"] * layer["count"],
                      "traffic_bytes": layer["traffic_bytes"] * layer["count"], "dataflow": layer["dataflow"],
                      "bound": spatial_bound(layer["util_2d"], layer["util_1d"], layer["traffic_bytes"],
                                             layer["cycles"], arch)})
    longest = max(parts, key=lambda part: part["latency_s"])
    kv_step = workload.layers * shape.kv_bytes(word)
    return {"layers": workload.layers, "phase": workload.phase, "batch": shape.batch, "q_len": shape.q_len,
            "per_layer_latency_s": report["latency_s"] / workload.layers,
            PHASE_LATENCY_KEYS[workload.phase]: report["latency_s"],
            "weight_bytes": workload.layers * sum(g.n * g.k * g.count for g in workload.linear_gemms(seq)) * word,
            "kv_cache_bytes_per_step": kv_step, "kv_cache_bytes_per_token": kv_step / (shape.batch * shape.q_len),
            "bound": longest["bound"], "bound_part": longest["name"], "parts": parts}



__all__ = ["TRACE_MAX_OPS", "attention_bounds", "linear_layers", "load_mapper", "parse_seq", "per_einsum_report",
           "simulate", "spatial_bound"]
