"""FP8 forward of the GPU model against FA3's published FP8 throughput, and the mechanism ablation.

Used by ``benchmarks/gpu_validation.py`` (which prints it and writes it into docs/validation.md).

Published values: ``data/fa3_fig7_fp8_tflops.csv`` (FA3 paper Fig. 7, FP8 forward on an H100 SXM5 at
1830 MHz, the FlashAttention-3 bars of every panel whose transcription exists, sources per row). The
blind prediction, made before any of them was read: ``data/fa3_fp8_predictions_before_comparison.csv``
(committed with the FP8 mechanisms, commit 565dbdc). The ablation switches off one named mechanism
(``mappers/gpu_mechanisms.py``) or one modelled effect at a time and reports the MAPE over the FP8
points and the mean change of the prediction at short (512-2k) and long (4k-16k) sequences.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.mappers.gpu_cascade_mapper import map_cascade
from attnsim.mappers.gpu_mapping import GpuSection, gpu_section
from attnsim.mappers.gpu_mechanisms import MECHANISMS, with_mechanisms
from attnsim.studies.gpu import gpu_cascade, gpu_mapping_spec, make_workload, mape_percent, run_gpu_mapping

DATA_DIR = Path(__file__).resolve().parent / "data"
FP8_CSV = DATA_DIR / "fa3_fig7_fp8_tflops.csv"
BLIND_CSV = DATA_DIR / "fa3_fp8_predictions_before_comparison.csv"
SHORT_SEQ = 2048
Point = tuple[int, bool, int]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_fp8() -> dict[Point, float]:
    """(head_dim, causal, seq) -> published FA3 FP8 forward TFLOPS (every row needs a source)."""
    rows = _rows(FP8_CSV)
    if any(not row.get("source") for row in rows):
        raise ValueError(f"{FP8_CSV}: every row needs a source")
    return {(int(r["head_dim"]), r["causal"] == "true", int(r["seq"])): float(r["tflops"]) for r in rows}


def load_blind() -> dict[Point, float]:
    """(head_dim, causal, seq) -> the FP8 prediction recorded before the comparison."""
    return {(int(r["head_dim"]), r["causal"] == "true", int(r["seq"])): float(r["predicted_tflops"])
            for r in _rows(BLIND_CSV)}


def flash3_tflops(spec: GpuSpec, point: Point, dtype: str,
                  edit: Callable[[GpuSection], GpuSection] | None = None) -> float:
    """FA3 (attention-1pass + gpu-flash3) TFLOPS at ``point``, with the section edited by ``edit``."""
    head_dim, causal, seq = point
    mapping = gpu_mapping_spec("gpu-flash3")
    section = gpu_section(mapping)
    if edit is not None:
        section = edit(section)
    workload = make_workload(seq, head_dim, causal=causal, dtype=dtype)
    cascade = gpu_cascade("attention-1pass", causal)
    return run_gpu_mapping(map_cascade(cascade, mapping, workload, spec, section=section, design="flash3"),
                           spec).tflops


def _tiles(section: GpuSection, **update: object) -> GpuSection:
    """The section with every FP8 tile case updated (``persistent``), or the FP8 cases dropped."""
    if update.get("drop_fp8"):
        return section.model_copy(update={"tiles": [c for c in section.tiles if c.when.get("dtype") != "fp8"]})
    return section.model_copy(update={"tiles": [c.model_copy(update=update) if c.when.get("dtype") == "fp8" else c
                                                for c in section.tiles]})


def ablations(spec: GpuSpec) -> list[tuple[str, str, Callable[[GpuSection], GpuSection] | None, GpuSpec]]:
    """(row name, what it shows, section edit, spec) of each ablation row; the first is the model."""
    rows: list[tuple[str, str, Callable[[GpuSection], GpuSection] | None, GpuSpec]] = [
        ("model (every mechanism on)", "", None, spec)]
    notes = {
        "cta_setup": "per-CTA set-up: one L2 round trip (barrier init / cluster sync, or the tile counter)",
        "epilogue_smem": "O through SMEM before the TMA store (FP8: 16-bit scalar stores)",
        "kernel_launch": "one 2 us launch gap per call",
        "persistent_overlap": "no effect on FP8 (the FP8 kernel is not persistent)",
        "fp8_v_transpose": "V transposed in SMEM per tile by the producer (LDSM.T + PRMT + STSM)",
        "fp8_accumulator_permute": "byte permutes of P before the second GEMM",
    }
    for name in MECHANISMS:
        rows.append((f"no {name}", notes[name], lambda s, n=name: with_mechanisms(s, **{n: False}), spec))
    rows.append(("FP8 kernel persistent (5018ac6a)", "the blind prediction's assumption: persistent scheduler, "
                 "longest-first causal, prologue/epilogue overlap", lambda s: _tiles(s, persistent=True), spec))
    rows.append(("FP16 tiles for FP8", "the FP16 launch template's tiles (no per-dtype tile sizes)",
                 lambda s: _tiles(s, drop_fp8=True), spec))
    faster_mufu = spec.with_overrides({"per_sm_per_clock.mufu_ops.value": 2 * spec.per_sm_per_clock.mufu_ops.value})
    rows.append(("MUFU rate x2", "exponentials as fast as the FP8 tensor cores make the matmuls (hypothetical)",
                 None, faster_mufu))
    return rows


def fp8_report(spec: GpuSpec) -> tuple[dict[Point, float], list[tuple[str, str, float, float, float]],
                                       dict[str, float]]:
    """(model TFLOPS per published point, ablation rows (name, note, MAPE, mean change short, long),
    MAPEs {model, blind})."""
    published = load_fp8()
    points = sorted(published)
    rows = []
    model: dict[Point, float] = {}
    for name, note, edit, row_spec in ablations(spec):
        values = {p: flash3_tflops(row_spec, p, "fp8", edit) for p in points}
        if not model:
            model = values
        mape = mape_percent([values[p] for p in points], [published[p] for p in points])
        change = {short: [100 * (values[p] - model[p]) / model[p] for p in points if (p[2] <= SHORT_SEQ) == short]
                  for short in (True, False)}
        rows.append((name, note, mape, sum(change[True]) / len(change[True]), sum(change[False]) / len(change[False])))
    blind = load_blind()
    mapes = {"model": rows[0][2], "blind": mape_percent([blind[p] for p in points], [published[p] for p in points])}
    return model, rows, mapes


def comparison_lines(model: dict[Point, float]) -> list[str]:
    """Markdown rows: published, blind prediction and model per FP8 point."""
    published, blind = load_fp8(), load_blind()
    lines = ["| head dim | mask | seqlen | FA3 FP8 published | blind prediction | error | model | error |",
             "|---|---|---|---|---|---|---|---|"]
    for p in sorted(published):
        q = published[p]
        lines.append(f"| {p[0]} | {'causal' if p[1] else 'non-causal'} | {p[2]} | {q:.0f} | {blind[p]:.0f} | "
                     f"{100 * (blind[p] - q) / q:+.1f}% | {model[p]:.0f} | {100 * (model[p] - q) / q:+.1f}% |")
    return lines


def ablation_lines(rows: list[tuple[str, str, float, float, float]]) -> list[str]:
    """Markdown rows of the ablation."""
    lines = ["| configuration | what it removes or changes | FP8 MAPE | mean change 512-2k | mean change 4k-16k |",
             "|---|---|---|---|---|"]
    for name, note, mape, short, long in rows:
        lines.append(f"| {name} | {note} | {mape:.1f}% | {short:+.1f}% | {long:+.1f}% |")
    return lines


__all__ = ["ablation_lines", "ablations", "comparison_lines", "flash3_tflops", "fp8_report", "load_blind", "load_fp8"]
