"""The backward pass (and forward + backward) of FlashAttention-2/-3 on GPU specs (issue #17).

:func:`run_backward` runs a :class:`~mappers.gpu_template_backward.BackwardMapping` on the engine:
each distinct CTA's schedule, the dispatch of the CTAs onto the SMs (one resident CTA per SM: the
backward kernels use most of the register file and shared memory), and the pre- and
post-processing kernels; the kernels run one after the other on the stream. ``tflops`` uses the FA
convention: backward = 2.5 x the forward FLOPs, forward + backward = 3.5 x.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from attnsim.archsim.engine import run as run_schedule
from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.mappers.gpu_common import GpuAttention, dispatch_schedule
from attnsim.mappers.gpu_template_backward import map_backward
from attnsim.mappers.mapping_spec import MappingSpec, load_mapping
from attnsim.studies.errors import UsageError

BACKWARD_DESIGNS: dict[str, str] = {"flash2": "gpu-flash2-backward", "flash3": "gpu-flash3-backward"}
"""Design -> backward mapping in specs/mappings/."""
PASSES: tuple[str, ...] = ("forward", "backward", "forward+backward")


@dataclass(frozen=True)
class BackwardRun:
    """A simulated backward call: latency (all three kernels), TFLOPS (FA convention), kernel cycles."""

    workload: GpuAttention
    latency_s: float
    cycles: int
    tflops: float
    kernel_cycles: dict[str, int]
    choices: dict[str, Any]


@functools.lru_cache(maxsize=8)
def backward_mapping_spec(name: str) -> MappingSpec:
    """A backward mapping by name or path."""
    return load_mapping(name)


def backward_mapping_name(design: str) -> str:
    if design not in BACKWARD_DESIGNS:
        raise UsageError(f"gpu: --pass backward: expected --design one of {', '.join(BACKWARD_DESIGNS)}, "
                         f"got '{design}'")
    return BACKWARD_DESIGNS[design]


def run_backward(spec: GpuSpec, design: str, workload: GpuAttention) -> BackwardRun:
    """Map and simulate the backward pass of ``design`` (flash2, flash3) for ``workload``."""
    mapping = map_backward(backward_mapping_spec(backward_mapping_name(design)), workload, spec)
    results = {blocks: run_schedule(mapping.cta_schedule(blocks)).cycles for blocks in dict.fromkeys(mapping.order)}
    main = run_schedule(dispatch_schedule([results[b] for b in mapping.order], spec.sms, mapping.launch_cycles)).cycles
    pre, post = (run_schedule(s).cycles + mapping.launch_cycles for s in mapping.helper_schedules)
    total = pre + main + post
    latency_s = total / spec.clock_hz
    return BackwardRun(workload, latency_s, total, mapping.flops / latency_s / 1e12,
                       {"preprocess": pre, "main": main, "postprocess": post}, mapping.choices)


PASS_KEYS: tuple[str, ...] = ("design", "arch", "pass", "batch", "heads", "seq", "head_dim", "causal", "dtype",
                               "flops", "latency_s", "cycles", "tflops", "forward_latency_s", "backward_latency_s",
                               "backward_kernel_cycles", "block_m", "block_n")
"""Keys of :func:`pass_report` (``attnsim gpu --pass backward|forward+backward --json``)."""


def pass_report(arch: str, design: str, seq: int, head_dim: int, pass_: str, *, causal: bool = False,
                dtype: str = "fp16", batch: int | None = None, heads: int | None = None,
                overrides: dict[str, object] | None = None) -> dict[str, Any]:
    """The report of a backward or forward + backward call (FA convention FLOPs: 2.5x / 3.5x forward)."""
    from attnsim.archsim.gpu_spec import load_gpu
    from attnsim.studies.gpu import make_workload, predict

    if pass_ not in PASSES[1:]:
        raise UsageError(f"gpu: --pass: expected one of {', '.join(PASSES)}, got '{pass_}'")
    if dtype == "fp8":
        raise UsageError("gpu: --dtype: the backward pass is modelled in fp16 or bf16 (FA3's backward has no "
                         "FP8 kernel), got 'fp8'")
    workload = make_workload(seq, head_dim, causal=causal, dtype=dtype, batch=batch, heads=heads)
    spec = load_gpu(arch, overrides)
    backward = run_backward(spec, design, workload)
    forward_s = predict(spec, design, workload).latency_s if pass_ == "forward+backward" else 0.0
    flops = (3.5 if pass_ == "forward+backward" else 2.5) * workload.flops
    latency_s = forward_s + backward.latency_s
    return {"design": design, "arch": spec.name, "pass": pass_, "batch": workload.batch, "heads": workload.heads,
            "seq": workload.seq, "head_dim": workload.head_dim, "causal": workload.causal, "dtype": workload.dtype,
            "flops": flops, "latency_s": latency_s, "cycles": round(latency_s * spec.clock_hz),
            "tflops": flops / latency_s / 1e12, "forward_latency_s": forward_s,
            "backward_latency_s": backward.latency_s, "backward_kernel_cycles": backward.kernel_cycles,
            "block_m": backward.choices["block_m"], "block_n": backward.choices["block_n"]}


__all__ = ["BACKWARD_DESIGNS", "PASSES", "PASS_KEYS", "BackwardRun", "backward_mapping_spec", "pass_report",
           "run_backward"]
