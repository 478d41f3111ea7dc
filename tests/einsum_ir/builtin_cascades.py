"""Load built-in cascades in tests (cached: parsing is pure)."""
from __future__ import annotations

import functools
from pathlib import Path

from attnsim.einsum_ir.loader import load_cascade

CASCADE_DIR = Path(__file__).resolve().parents[2] / "specs" / "cascades"


@functools.lru_cache(maxsize=None)
def builtin(name: str):
    return load_cascade(CASCADE_DIR / f"{name}.yaml")
