"""The FuseMax artifact's pregenerated results (``tests/mappers/artifact/``, see its README for the source).

Independent expected values for traffic, latency and energy of the paper's five designs at the paper's
24 (model, sequence length) points, and FLAT's per-point configuration from the FLAT authors' code.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifact"

MODELS = {"BERT": "bert-base", "TrXL": "trxl-wt103", "T5": "t5-small", "XLM": "xlm"}
"""Artifact model name -> attnsim workload name."""

SEQS = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096, "8K": 8192, "16K": 16384, "32K": 32768,
        "64K": 65536, "128K": 131072, "256K": 262144, "512K": 524288, "1M": 1048576}
"""Artifact sequence-length label -> tokens."""

DESIGN_FILES = {"unfused": "attn-unfused.csv", "flat": "attn-flat.csv", "fusemax-cascade": "attn-cascade.csv",
                "fusemax-arch": "attn-arch.csv", "fusemax": "attn-binding.csv"}
"""attnsim design -> the artifact's attention results file."""


@dataclass(frozen=True)
class ArtifactPoint:
    """One row of an artifact results file (bytes, seconds, pJ)."""

    model: str  # attnsim workload name
    seq: int
    traffic_bytes: float
    latency_s: float
    energy_pj: float


def _rows(name: str) -> list[dict[str, str]]:
    with open(ARTIFACT_DIR / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def attention_points(design: str) -> list[ArtifactPoint]:
    """The artifact's 24 attention points of ``design`` (4 models x 6 lengths)."""
    return [ArtifactPoint(MODELS[row["model"]], SEQS[row["seq_len"]], float(row["traffic"]),
                          float(row["latency"]), float(row["energy"]))
            for row in _rows(DESIGN_FILES[design])]


def linear_points(chip: str) -> list[ArtifactPoint]:
    """The artifact's linear-layer points on ``chip`` (``flat`` or ``proposal``)."""
    return [ArtifactPoint(MODELS[row["model"]], SEQS[row["seq_len"]], float(row["traffic"]),
                          float(row["latency"]), float(row["energy"]))
            for row in _rows(f"end2end-{chip}.csv") if row["model"] in MODELS and row["seq_len"] in SEQS]


def flat_configuration(model: str, seq: int, platform: str = "cloud") -> dict[str, str]:
    """FLAT's configuration row for (attnsim workload name, tokens) on ``platform``."""
    for row in _rows("flat_validation.csv"):
        if row["platform"] == platform and MODELS.get(row["models"]) == model and SEQS[row["seq_len"]] == seq:
            return row
    raise KeyError((platform, model, seq))
