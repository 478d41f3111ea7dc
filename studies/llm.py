"""End to end per token for decoder LLMs on GPUs: prefill (time to first token) and decode (time per output token).

One forward step of the model = ``layers`` x (attention + the layer's linear layers). The linear layers are
the workload's (:meth:`mappers.workloads.Workload.linear_gemms`): Q and K/V projections (the K/V ones
``kv_heads x head_dim`` wide under GQA/MQA), the output projection and the FFN (gated: gate + up, then
down), with ``batch x q_len`` rows (``batch`` in decode). Each GEMM is priced by
:func:`mappers.gpu_gemm.gpu_gemm`; attention by the GPU design's mapping (:func:`studies.gpu.predict_cascade`)
on the step's shape (decode: one query per sequence over ``kv_len`` cached tokens; a sliding window caps the
keys a query reads). Not counted (they are not GEMMs nor attention): norms, residual adds, the activation,
rotary embeddings, the embedding lookup and the LM head (the workload files declare no vocabulary).

Units are in the key names. ``latency_s`` is one step; ``ttft_s`` (prefill) or ``tpot_s`` (decode) name it
by phase. ``kv_cache_bytes_per_step``: K and V bytes every layer reads in the step (all sequences);
``kv_cache_bytes_per_token``: the same per token of the step (per sequence in decode, per prompt token in
prefill). ``weight_bytes``: the linear
layers' weights of all layers (read at least once per step). ``parts`` lists one entry per part of one
layer with its latency, FLOPs, HBM bytes and ``bound`` (``hbm``, ``tensor``, ``mufu``, ``tensor+mufu`` ...);
``bound`` is the bound of the part that takes the longest over the step.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from attnsim.archsim.gpu_spec import GpuSpec, load_gpu
from attnsim.mappers.gpu_gemm import gpu_gemm
from attnsim.mappers.workloads import Workload, load_workload
from attnsim.studies.errors import UsageError
from attnsim.studies.points import ParamProblem, PointKind

PHASE_LATENCY_KEYS: dict[str, str] = {"prefill": "ttft_s", "decode": "tpot_s",
                                      "chunked-prefill": "chunk_latency_s"}
"""The per-phase name of one step's latency."""


def step_workload(workload: Workload, phase: str | None = None, batch: int | None = None,
                  q_len: int | None = None) -> Workload:
    """``workload`` with the step's phase, batch and (chunked prefill) chunk size
    (:meth:`Workload.with_shape`); UsageError on a bad phase or a chunked prefill without a chunk."""
    phase = workload.phase if phase is None else phase
    if phase not in PHASE_LATENCY_KEYS:
        raise UsageError(f"--phase: expected one of {', '.join(PHASE_LATENCY_KEYS)}, got '{phase}'")
    chunk = q_len if phase == "chunked-prefill" else None
    if phase == "chunked-prefill" and chunk is None and workload.chunk_size is None:
        raise UsageError("--q-len: missing (--phase chunked-prefill needs the chunk's query length)")
    return workload.with_shape(phase=phase, batch=batch, q_len=chunk)


def attended_kv_len(workload: Workload, kv_len: int) -> int:
    """Keys one decode query reads: ``kv_len``, capped by the workload's sliding window."""
    window = workload.sliding_window
    return kv_len if window is None or workload.phase != "decode" else min(kv_len, window)


def linear_parts(workload: Workload, kv_len: int, spec: GpuSpec, dtype: str) -> list[dict[str, Any]]:
    """One layer's linear layers at the step's shape, each priced on ``spec`` (count GEMMs per entry)."""
    parts = []
    for gemm in workload.linear_gemms(kv_len):
        one = gpu_gemm(gemm.m, gemm.n, gemm.k, spec, dtype)
        parts.append({"name": gemm.name, "count": gemm.count, "m": gemm.m, "n": gemm.n, "k": gemm.k,
                      "latency_s": one.latency_s * gemm.count, "flops": one.flops * gemm.count,
                      "hbm_bytes": one.hbm_bytes * gemm.count, "weight_bytes": one.weight_bytes * gemm.count,
                      "bound": one.bound, "block_m": one.block_m, "block_n": one.block_n, "split_k": one.split_k,
                      "ctas": one.ctas, "waves": one.waves})
    return parts


def gpu_end_to_end(arch: str | GpuSpec, design: str, model: str | Workload, kv_len: int, *,
                   phase: str | None = None, batch: int | None = None, q_len: int | None = None,
                   kv_heads: int | None = None, dtype: str = "fp16",
                   overrides: dict[str, object] | None = None) -> dict[str, Any]:
    """One forward step of ``model`` on GPU ``arch`` with attention design ``design`` (module docstring).

    ``kv_len``: the context (tokens in the KV cache; in prefill the prompt length); ``phase``, ``batch``,
    ``q_len`` (chunked prefill), ``kv_heads``: override the workload's. UsageError / MappingError on bad input.
    """
    from attnsim.studies.gpu import design_pair, make_workload, predict_cascade, run_report

    workload = step_workload(model if isinstance(model, Workload) else load_workload(model), phase, batch, q_len)
    if kv_heads is not None:
        workload = workload.model_copy(update={"kv_heads": kv_heads})
    if workload.head_dim_e != workload.head_dim_f:
        raise UsageError(f"{workload.origin}: head_dim_e {workload.head_dim_e} != head_dim_f "
                         f"{workload.head_dim_f}; the GPU mappings need equal widths")
    if workload.phase != "decode" and workload.sliding_window is not None and kv_len > workload.sliding_window:
        raise UsageError(f"{workload.origin}: sliding_window {workload.sliding_window} < the KV length {kv_len}; "
                         f"GPU mappings model a window in decode only")
    spec = arch if isinstance(arch, GpuSpec) else load_gpu(arch, overrides)
    shape = workload.attention_shape(kv_len)
    attention_workload = make_workload(attended_kv_len(workload, kv_len), workload.head_dim_e,
                                       causal=workload.causal, dtype=dtype, batch=shape.batch,
                                       heads=workload.heads, q_len=shape.q_len,
                                       kv_heads=workload.key_value_heads, phase=workload.phase)
    cascade, mapping = design_pair(design)
    run = predict_cascade(spec, cascade, mapping, attention_workload, design=design)
    attention = run_report(spec, design, attention_workload, run)
    parts = [{"name": "attention", "count": 1, "latency_s": attention["latency_s"], "flops": attention["flops"],
              "hbm_bytes": attention["traffic_bytes"], "weight_bytes": 0.0, "bound": attention["bound"],
              "kv_cache_bytes": attention["kv_cache_bytes"], "ctas": attention["ctas"],
              "waves": attention["waves"]}]
    parts += linear_parts(workload, kv_len, spec, dtype)
    layers = workload.layers
    per_layer = math.fsum(part["latency_s"] for part in parts)
    latency = layers * per_layer
    hbm_bytes = layers * math.fsum(part["hbm_bytes"] for part in parts)
    kv_step = layers * attention_workload.kv_cache_bytes
    peak_bw = spec.memory.hbm_bandwidth_bytes_per_s.value
    longest = max(parts, key=lambda part: part["latency_s"])
    tokens = shape.batch * shape.q_len
    report: dict[str, Any] = {
        "model": workload.name, "arch": spec.name, "design": design, "phase": workload.phase,
        "batch": shape.batch, "q_len": shape.q_len, "kv_len": kv_len, "attended_kv_len": attention_workload.seq,
        "heads": workload.heads, "kv_heads": workload.key_value_heads, "head_dim": workload.head_dim_e,
        "layers": layers, "dtype": dtype, "causal": attention_workload.causal,
        "latency_s": latency, PHASE_LATENCY_KEYS[workload.phase]: latency,
        "tokens_per_s": tokens / latency,
        "per_layer_latency_s": per_layer,
        "attention_latency_s": layers * parts[0]["latency_s"],
        "linear_latency_s": layers * math.fsum(part["latency_s"] for part in parts[1:]),
        "flops": layers * math.fsum(part["flops"] for part in parts),
        "hbm_bytes": hbm_bytes, "hbm_bandwidth_fraction": hbm_bytes / latency / peak_bw,
        "weight_bytes": layers * math.fsum(part["weight_bytes"] for part in parts),
        "kv_cache_bytes_per_step": kv_step, "kv_cache_bytes_per_token": kv_step / tokens,
        "peak_hbm_bytes_per_s": peak_bw, "peak_flops_per_s": spec.peak_tensor_flops_per_s(dtype),
        "bound": longest["bound"], "bound_part": longest["name"],
        "attention_bound": attention["bound"], "attention_hbm_bandwidth_fraction": attention["hbm_bandwidth_fraction"],
        "parts": parts,
    }
    return report


# --------------------------------------------------------------------------------------------------
# The ``llm`` point kind (registered in studies.points.BUILTIN_KINDS).


def _check_llm(params: Mapping[str, Any]) -> None:
    from attnsim.archsim.gpu_spec import DTYPES
    from attnsim.mappers.errors import MappingError
    from attnsim.studies.gpu import GPU_DESIGNS

    if params["design"] not in GPU_DESIGNS:
        raise ParamProblem("design", f"expected one of {', '.join(GPU_DESIGNS)}, got {params['design']!r}")
    try:
        load_workload(params["model"])
    except MappingError as exc:
        raise ParamProblem("model", " ".join(str(exc).split())) from None
    for key in ("kv_len", "batch", "q_len", "kv_heads"):
        value = params[key]
        if (value is not None or key == "kv_len") and (isinstance(value, bool) or not isinstance(value, int)
                                                       or value < 1):
            raise ParamProblem(key, f"expected a positive integer, got {value!r}")
    if params["phase"] is not None and params["phase"] not in PHASE_LATENCY_KEYS:
        raise ParamProblem("phase", f"expected one of {', '.join(PHASE_LATENCY_KEYS)}, got {params['phase']!r}")
    for key in ("causal", "end_to_end"):
        if params[key] is not None and not isinstance(params[key], bool):
            raise ParamProblem(key, f"expected true or false, got {params[key]!r}")
    if params["dtype"] not in DTYPES:
        raise ParamProblem("dtype", f"expected one of {', '.join(DTYPES)}, got {params['dtype']!r}")


def evaluate_llm(point: Mapping[str, Any]) -> dict[str, Any]:
    """One point of an LLM-inference study on a GPU: the attention call of one layer (the keys of
    :data:`studies.gpu.REPORT_KEYS`), or with ``end_to_end`` the whole step (:func:`gpu_end_to_end`)."""
    from attnsim.studies.gpu import design_pair, make_workload, predict_cascade, run_report

    params = point["params"]
    spec = GpuSpec.from_mapping(point["arch"], origin=f"<{point['arch'].get('name', 'gpu')}>")
    workload = load_workload(params["model"])
    if params["causal"] is not None:
        workload = workload.model_copy(update={"causal": params["causal"]})
    if params["end_to_end"]:
        return gpu_end_to_end(spec, params["design"], workload, params["kv_len"], phase=params["phase"],
                              batch=params["batch"], q_len=params["q_len"], kv_heads=params["kv_heads"],
                              dtype=params["dtype"])
    step = step_workload(workload, params["phase"], params["batch"], params["q_len"])
    shape = step.attention_shape(params["kv_len"])
    attention = make_workload(attended_kv_len(step, params["kv_len"]), step.head_dim_e, causal=step.causal,
                              dtype=params["dtype"], batch=shape.batch, heads=step.heads, q_len=shape.q_len,
                              kv_heads=params["kv_heads"] or step.key_value_heads, phase=step.phase)
    cascade, mapping = design_pair(params["design"])
    run = predict_cascade(spec, cascade, mapping, attention, design=params["design"])
    report = run_report(spec, params["design"], attention, run)
    report["group_size"] = attention.group
    report["peak_flops_per_s"] = spec.peak_tensor_flops_per_s(params["dtype"])
    report["dram_bandwidth_bytes_per_s"] = spec.memory.hbm_bandwidth_bytes_per_s.value
    return report


def _default_gpu(params: Mapping[str, Any]) -> str:
    from attnsim.studies.gpu import DEFAULT_GPU

    return DEFAULT_GPU


def _load_gpu_spec(name_or_path: str) -> GpuSpec:
    return load_gpu(name_or_path)


LLM_KIND = PointKind(
    name="llm", evaluate=evaluate_llm, required=("design", "model", "kv_len"),
    defaults={"phase": None, "batch": None, "q_len": None, "kv_heads": None, "causal": None, "dtype": "fp16",
              "end_to_end": False, "arch": None},
    check=_check_llm, default_arch=_default_gpu, arch_loader=_load_gpu_spec,
    description="an LLM inference step on a GPU (studies.llm): design, model (a workload), kv_len; phase, "
                "batch, q_len, kv_heads, causal override the workload; end_to_end: the whole step")


__all__ = ["LLM_KIND", "PHASE_LATENCY_KEYS", "attended_kv_len", "evaluate_llm", "gpu_end_to_end", "linear_parts",
           "step_workload"]
