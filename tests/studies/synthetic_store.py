"""A small synthetic results store for the plot and report tests: a real study file (attention kind,
two grids), its real point keys, and made-up results given by closed forms that the tests recompute.

Nothing is simulated: every result is a formula of (design, model, seq) below, so a test knows every
value a figure or the report must show without trusting the code under test.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attnsim.studies.points import resolve_points
from attnsim.studies.store import ResultStore
from attnsim.studies.study import load_study

DESIGNS = ("unfused", "flat", "fusemax-cascade", "fusemax-arch", "fusemax")
MODELS = ("bert-base", "xlm")
SEQS = (1024, 4096)
PE_DIMS = (64, 128)

ATTENTION_LATENCY_S = {"unfused": 2.0, "flat": 1.25, "fusemax-cascade": 1.5, "fusemax-arch": 0.5, "fusemax": 0.2}
ATTENTION_ENERGY_PJ = {"unfused": 100.0, "flat": 95.0, "fusemax-cascade": 90.0, "fusemax-arch": 80.0,
                       "fusemax": 75.0}
MODEL_SCALE = {"bert-base": 1.0, "xlm": 3.0}
UTIL_2D = {"unfused": 0.08, "flat": 0.125, "fusemax-cascade": 0.11, "fusemax-arch": 0.3, "fusemax": 0.9}
UTIL_1D = {"unfused": 0.6, "flat": 1.0, "fusemax-cascade": 1.0, "fusemax-arch": 0.33, "fusemax": 1.0}
EINSUM_SHARES = {"BQK": 0.4, "LM": 0.01, "SLN": 0.05, "SLD": 0.01, "SLNV": 0.4, "AV": 0.0}
"""Per-Einsum 2D activity of the 1-pass designs, times the design's 2D utilisation / 0.87."""
PEAK_FLOPS_PER_S = 1.0e14
BANDWIDTH_BYTES_PER_S = 4.0e11

STUDY = """\
name: synthetic
description: "synthetic results for the plot tests"
kind: attention
grid:
  - design: [unfused, flat, fusemax-cascade, fusemax-arch, fusemax]
    model: [bert-base, xlm]
    seq: [1024, 4096]
  - design: [fusemax]
    model: [bert-base, xlm]
    seq: [262144]
    end_to_end: [false]
    sizing: [pareto]
    pe_dim: [64, 128]
plots:
  - {name: util1d, type: bars, title: "1D utilisation", where: {sizing: none}, metric: util_1d,
     ylabel: "1D array utilisation (fraction of PE-cycles)"}
  - {name: speedup, type: bars, title: "attention speedup", where: {sizing: none}, metric: attention_latency_s,
     normalise: speedup, baseline: unfused, ylabel: "attention speedup over Unfused (x, latency ratio)",
     headlines: [attention_speedup_vs_flat]}
  - {name: energy, type: bars, title: "energy", where: {sizing: none}, metric: energy_pj, normalise: relative,
     baseline: unfused, ylabel: "end-to-end energy / Unfused's (energy ratio)"}
  - {name: stack, type: einsum_stack, title: "per Einsum",
     where: {sizing: none, model: bert-base, design: [flat, fusemax-cascade, fusemax-arch, fusemax]},
     groups: [seq], stack: {QK: [QK, BQK], LM: [LM], SLN: [SLN], SLD: [SLD], SLNV/AV: [SLNV, AV]},
     ylabel: "2D array active (fraction of PE-cycles)"}
  - {name: pareto, type: pareto, title: "Pareto", where: {sizing: pareto}, xlabel: "chip area (cm$^2$)",
     ylabel: "attention latency (s)"}
  - {name: roofline, type: roofline, title: "roofline", where: {sizing: none}}
  - {name: lines, type: lines, title: "latency vs seq", where: {sizing: none}, x: seq,
     xlabel: "sequence length (tokens)", y: attention_latency_s, ylabel: "attention latency (s)", series: design, panels: model, log_x: true}
  - {type: comparison, reference: paper-reference.yaml, where: {sizing: none}}
"""


def attention_latency_s(design: str, model: str, seq: int) -> float:
    return ATTENTION_LATENCY_S[design] * (seq / 1024) ** 2 * MODEL_SCALE[model]


def linear_latency_s(model: str, seq: int) -> float:
    return 0.5 * (seq / 1024) * MODEL_SCALE[model]


def attention_energy_pj(design: str, model: str, seq: int) -> float:
    return ATTENTION_ENERGY_PJ[design] * (seq / 1024) ** 2 * MODEL_SCALE[model]


def linear_energy_pj(model: str, seq: int) -> float:
    return 40.0 * (seq / 1024) * MODEL_SCALE[model]


def attention_flops(model: str, seq: int) -> float:
    return 1.0e9 * (seq / 1024) ** 2 * MODEL_SCALE[model]


def attention_traffic_bytes(design: str, model: str, seq: int) -> float:
    return {"unfused": 4.0, "flat": 2.0}.get(design, 0.05) * 1.0e7 * (seq / 1024) * MODEL_SCALE[model]


def per_einsum(design: str) -> dict[str, dict[str, float]]:
    if design in ("unfused", "flat"):
        half = UTIL_2D[design] / 2
        return {"QK": {"util_2d": half, "util_1d": 0.0, "cycles": 1.0},
                "AV": {"util_2d": half, "util_1d": 0.0, "cycles": 1.0},
                "SN": {"util_2d": 0.0, "util_1d": UTIL_1D[design], "cycles": 1.0}}
    scale = UTIL_2D[design] / 0.87
    return {name: {"util_2d": share * scale, "util_1d": 0.0 if share else 0.5, "cycles": 1.0}
            for name, share in EINSUM_SHARES.items()}


def pareto_area_mm2(pe_dim: int) -> float:
    return 0.02 * pe_dim ** 2


def pareto_latency_s(model: str, pe_dim: int) -> float:
    return 1.0e6 * MODEL_SCALE[model] / pe_dim ** 2


def result_of(params: dict[str, Any]) -> dict[str, Any]:
    """The synthetic results of one point."""
    design, model, seq = params["design"], params["model"], params["seq"]
    if params["sizing"] == "pareto":
        latency = pareto_latency_s(model, params["pe_dim"])
        return {"latency_s": latency, "energy_pj": 1.0, "area_mm2": pareto_area_mm2(params["pe_dim"]),
                "util_2d": 0.99, "util_1d": 1.0, "per_einsum": per_einsum(design),
                "attention_flops": attention_flops(model, seq), "traffic_bytes": 1.0e9,
                "peak_flops_per_s": PEAK_FLOPS_PER_S, "dram_bandwidth_bytes_per_s": BANDWIDTH_BYTES_PER_S}
    a_lat, l_lat = attention_latency_s(design, model, seq), linear_latency_s(model, seq)
    a_en, l_en = attention_energy_pj(design, model, seq), linear_energy_pj(model, seq)
    return {
        "design": design, "model": model, "seq": seq,
        "latency_s": a_lat + l_lat, "energy_pj": a_en + l_en,
        "attention_latency_s": a_lat, "linear_latency_s": l_lat,
        "attention_energy_pj": a_en, "linear_energy_pj": l_en,
        "attention_traffic_bytes": attention_traffic_bytes(design, model, seq),
        "util_2d": UTIL_2D[design], "util_1d": UTIL_1D[design], "per_einsum": per_einsum(design),
        "area_mm2": 1300.0, "attention_flops": attention_flops(model, seq),
        "peak_flops_per_s": PEAK_FLOPS_PER_S, "dram_bandwidth_bytes_per_s": BANDWIDTH_BYTES_PER_S,
    }


def make_store(directory: Path, failing: tuple[tuple[str, str, int], ...] = (),
               missing: tuple[tuple[str, str, int], ...] = (), study_text: str = STUDY) -> Path:
    """Write the study copy and a results store into ``directory``; points in ``failing`` are stored
    as errors, points in ``missing`` not at all; ``study_text`` replaces :data:`STUDY` (same grid,
    other plots). Returns the study file."""
    directory.mkdir(parents=True, exist_ok=True)
    study_file = directory / "synthetic.yaml"
    study_file.write_text(study_text)
    study = load_study(study_file)
    with ResultStore.in_directory(directory) as store:
        for point in resolve_points(study):
            triple = (point.params["design"], point.params["model"], point.params["seq"])
            if triple in missing:
                continue
            failed = triple in failing
            store.record(key=point.key, study=study.name, kind="attention", point_index=point.index,
                         params=point.params, point_json=point.point_json,
                         status="error" if failed else "ok",
                         result_json=None if failed else json.dumps(result_of(point.params)),
                         error="MappingError: synthetic failure" if failed else None,
                         started_at="2024-01-01T00:00:00+00:00", finished_at="2024-01-01T00:00:01+00:00",
                         wall_s=1.0)
    return study_file


def records_of(directory: Path) -> list[Any]:
    """The stored records (studies.store)."""
    with ResultStore.in_directory(directory, create=False) as store:
        return store.records()
