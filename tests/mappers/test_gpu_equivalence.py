"""The generic GPU path equals the retired hand-written GPU mappers on the FP16 validation points.

Oracle: the hand-written FlashAttention-2/-3, FLAT and FuseMax mappers that attnsim shipped before
the generic mapper (tests/mappers/handwritten_gpu_*.py, written design by design in Python, with the
issue #12 extent clip added to their loads and stores). The generic path builds each design from a
built-in cascade and a mapping file (studies.gpu.GPU_DESIGNS). Both run on the same engine via
studies.gpu.run_gpu_mapping. Points: docs/validation.md's FP16 grid (FA3 Fig. 5), 6 sequence
lengths x 3 head dims x causal or not = 36 per design, on h100-sxm. Tolerance: the issue's 0.1%
(the achieved deviation is 0: the schedules are the same operation for operation).

The hand-written mappers predate the named mechanisms of issue #17 (mappers/gpu_mechanisms.py:
fixed per-CTA costs, the persistent overlap, the FP8 layout work), so the generic path runs here with
every mechanism switched off; tests/mappers/test_gpu_mechanisms.py checks each mechanism.
"""
from __future__ import annotations

import sys
from pathlib import Path

import handwritten_gpu_flash2
import handwritten_gpu_flash3
import handwritten_gpu_flat
import handwritten_gpu_fusemax
import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_common import fa3_protocol_workload
from attnsim.mappers.gpu_cascade_mapper import map_cascade
from attnsim.mappers.gpu_mapping import gpu_section
from attnsim.mappers.gpu_mechanisms import IN_PHASE_MECHANISMS, MECHANISMS, with_mechanisms
from attnsim.studies.gpu import GPU_DESIGNS, gpu_cascade, gpu_mapping_spec, run_gpu_mapping

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fa3_published import FA3_SEQLENS  # noqa: E402  (published data, CSV)

H100 = load_gpu("h100-sxm")
HANDWRITTEN = {"flash2": handwritten_gpu_flash2, "flash3": handwritten_gpu_flash3, "flat": handwritten_gpu_flat,
               "fusemax": handwritten_gpu_fusemax}
TOLERANCE = 1e-3
UTILISATIONS = ("tensor", "mufu", "fp32", "smem", "l2", "hbm")


def _without_mechanisms(design: str, workload):
    """The generic path's mapping of ``workload`` with every named mechanism off."""
    cascade, mapping = GPU_DESIGNS[design]
    spec = gpu_mapping_spec(mapping)
    section = with_mechanisms(gpu_section(spec), **{name: False for name in MECHANISMS + IN_PHASE_MECHANISMS})
    return map_cascade(gpu_cascade(cascade, workload.causal), spec, workload, H100, section=section, design=design)


def _relative(new: float, old: float) -> float:
    return abs(new - old) / abs(old) if old else abs(new)


@pytest.mark.parametrize("design", sorted(HANDWRITTEN))
def test_generic_path_equals_handwritten_mapper(design: str) -> None:
    worst: dict[str, float] = {}
    points = 0
    for head_dim in (64, 128, 256):
        for causal in (False, True):
            for seq in FA3_SEQLENS:
                workload = fa3_protocol_workload(seq, head_dim, causal=causal)
                old = run_gpu_mapping(HANDWRITTEN[design].map_attention(workload, H100), H100)
                new = run_gpu_mapping(_without_mechanisms(design, workload), H100)
                deviations = {"latency_s": _relative(new.latency_s, old.latency_s),
                              "energy_pj": _relative(new.energy_pj, old.energy_pj),
                              "hbm_bytes": _relative(new.hbm_bytes, old.actions.get("hbm.byte", 0.0))}
                deviations.update({f"util_{u}": _relative(new.utilisation[u], old.utilisation[u])
                                   for u in UTILISATIONS})
                for key, value in deviations.items():
                    worst[key] = max(worst.get(key, 0.0), value)
                assert new.bound == old.bound, (design, head_dim, causal, seq)
                points += 1
    assert points == 36
    print(design, {key: f"{value:.2e}" for key, value in worst.items()})
    for key, value in worst.items():
        assert value <= TOLERANCE, (design, key, value)
