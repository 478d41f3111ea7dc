"""FlashAttention-2/-3's published H100 throughput, read from the CSV files in ``benchmarks/data/``.

``data/fa3_fig5_tflops.csv``: FA3 paper (arXiv 2407.08608) Fig. 5, one row per bar (design, head_dim,
causal, seq, tflops, source). ``data/fa3_table2_ablation.csv``: FA3 Table 2 (configuration, the three
scheduling switches, the shape, tflops, source). Read by ``benchmarks/gpu_validation.py`` and by the
GPU mapper tests; the package itself never reads published results.
"""
from __future__ import annotations

import csv
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
FIG5_CSV = DATA_DIR / "fa3_fig5_tflops.csv"
ABLATION_CSV = DATA_DIR / "fa3_table2_ablation.csv"
SWITCHES = ("warp_specialized", "pingpong", "intra_pipeline")


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text == "true"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if any(not row.get("source") for row in rows):
        raise ValueError(f"{path}: every row needs a source")
    return rows


def load_fig5() -> tuple[tuple[int, ...], dict[str, dict[tuple[int, bool], tuple[int, ...]]]]:
    """(the sequence lengths, design -> (head_dim, causal) -> TFLOPS per sequence length)."""
    rows = _rows(FIG5_CSV)
    seqs = tuple(sorted({int(row["seq"]) for row in rows}))
    table: dict[str, dict[tuple[int, bool], dict[int, int]]] = {}
    for row in rows:
        shape = (int(row["head_dim"]), _boolean(row["causal"]))
        table.setdefault(row["design"], {}).setdefault(shape, {})[int(row["seq"])] = int(row["tflops"])
    return seqs, {design: {shape: tuple(values[seq] for seq in seqs) for shape, values in shapes.items()}
                  for design, shapes in table.items()}


def load_ablation() -> tuple[dict[str, int], tuple[tuple[str, dict[str, bool], int], ...]]:
    """(the ablation's shape {batch, heads, seq, head_dim}, (configuration, switches off, TFLOPS) rows)."""
    rows = _rows(ABLATION_CSV)
    shapes = {tuple(int(row[k]) for k in ("batch", "heads", "seq", "head_dim")) for row in rows}
    if len(shapes) != 1:
        raise ValueError(f"{ABLATION_CSV}: expected one shape for every configuration, got {sorted(shapes)}")
    batch, heads, seq, head_dim = shapes.pop()
    entries = tuple((row["configuration"], {s: False for s in SWITCHES if not _boolean(row[s])},
                     int(row["tflops"])) for row in rows)
    return {"batch": batch, "heads": heads, "seq": seq, "head_dim": head_dim}, entries


FA3_SEQLENS, FA3_FIG5_TFLOPS = load_fig5()
"""FA3 Fig. 5's sequence lengths (batch x seqlen = 16k tokens) and its TFLOPS per design and shape."""
ABLATION_SHAPE, FA3_ABLATION = load_ablation()
"""FA3 Table 2's shape and (configuration, flash3 mapping switches turned off, published TFLOPS)."""

__all__ = ["ABLATION_SHAPE", "FA3_ABLATION", "FA3_FIG5_TFLOPS", "FA3_SEQLENS", "load_ablation", "load_fig5"]
