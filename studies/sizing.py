"""The FuseMax paper's Pareto sizing rule (fact sheet §5, the artifact's ``utils/pareto.py``).

Fig. 12 sweeps the PE-array dimension ``PE`` (16 ... 512) at 256K tokens; for each ``PE`` the chip is
sized by a rule, not by hand:

====================  ===============================================================================
quantity              rule (``E`` = the model's head width, ``seq`` = the sequence length)
====================  ===============================================================================
arrays                2D array ``PE x PE``, 1D array ``PE`` PEs
``min_tiles``         ``max(1, PE / E) * 2``
minimum L3 (bytes)    ``PE * max(1, min_tiles / (seq / PE)) * E * 8 * 2``
L3 (bytes)            minimum L3 x ``multiplier``; the multiplier starts at 1 and is doubled until the
                      memory latency (DRAM traffic / bandwidth) is at most the 1D array's compute
                      latency (its busy cycles / clock)
L3 row                ``PE * 16`` bits (one 16-bit word per column of the array)
register files        2D PE ``2 * min_tiles`` entries, 1D PE ``8 * min_tiles`` entries (Accelergy;
                      reported, not part of the architecture: the cost model reads no register size)
====================  ===============================================================================

The memory and 1D latencies are not estimated here: each candidate buffer is *simulated*
(:func:`studies.simulate.simulate` with the point's design), so the rule is judged by the same model
that produces the figure.

Two things the rule does not say, and what this module does (both approximations, documented):

* the global buffer's **area** is scaled linearly with its capacity from the base architecture's
  (CACTI gives 84.20 mm^2 for 16 MB; ``area.global_buffer.sram`` per byte is kept);
* its **energy** per 16-bit word is kept (a row-based entry becomes a per-word entry), since the row
  width changes with ``PE``. Register-file areas are kept (Accelergy's <= 64-deep files are one size).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from attnsim.archsim.spec import Arch
from attnsim.mappers.workloads import Workload
from attnsim.studies.errors import UsageError

MAX_DOUBLINGS = 40
"""The multiplier stops at 2**MAX_DOUBLINGS: a rule that has not converged by then is an error."""


@dataclass(frozen=True)
class ParetoSizing:
    """What the rule chose for one PE dimension (sizes in bytes, latencies in seconds)."""

    pe_dim: int
    min_tiles: int
    l3_min_bytes: int
    l3_multiplier: int
    global_buffer_bytes: int
    row_bytes: int
    rf_2d_entries: int
    rf_1d_entries: int
    memory_latency_s: float
    compute_1d_latency_s: float
    candidates: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready mapping."""
        return dict(self.__dict__)


def min_tiles(pe_dim: int, head_dim: int) -> int:
    """``max(1, PE / E) * 2``, rounded up to a whole number of tiles."""
    return math.ceil(max(Fraction(1), Fraction(pe_dim, head_dim)) * 2)


def l3_min_bytes(pe_dim: int, head_dim: int, seq: int) -> int:
    """``PE * max(1, min_tiles / (seq / PE)) * E * 8 * 2`` bytes, rounded up to a whole row
    (``PE * 2`` bytes)."""
    tiles = min_tiles(pe_dim, head_dim)
    raw = pe_dim * max(Fraction(1), Fraction(tiles * pe_dim, seq)) * head_dim * 8 * 2
    row = 2 * pe_dim
    return math.ceil(raw / row) * row


def sized_overrides(base: Arch, pe_dim: int, head_dim: int, capacity_bytes: int) -> dict[str, object]:
    """The architecture overrides that give ``base`` a ``pe_dim`` array and a ``capacity_bytes`` buffer.

    ``head_dim`` sets the rule's register-file sizes, which the architecture no longer holds (the
    cost model reads none): :class:`ParetoSizing` reports them.
    """
    del head_dim
    row_bytes = base.word_bytes * pe_dim
    overrides: dict[str, object] = {
        "arrays.pe2d.rows": pe_dim, "arrays.pe2d.cols": pe_dim, "arrays.pe1d.size": pe_dim,
        "global_buffer.row_bytes": row_bytes, "global_buffer.capacity_bytes": capacity_bytes,
    }
    base_words_per_row = base.words_per_row
    for action in ("read", "write"):
        entry = base.energy.get(f"global_buffer.{action}")
        if entry is not None and entry.per == "row":
            overrides[f"energy.global_buffer.{action}"] = {
                "pj": entry.pj / base_words_per_row, "per": "word",
                "source": f"{entry.source}; per 16-bit word ({base_words_per_row} words per row), "
                          "kept per word by the Pareto sizing rule (studies/sizing.py)"}
    for key, entry in base.area.items():
        if key.startswith("global_buffer.") and entry.um2 is not None:
            overrides[f"area.{key}"] = {
                "um2": entry.um2 * capacity_bytes / base.global_buffer.capacity_bytes,
                "source": f"{entry.source}; scaled linearly from {base.global_buffer.capacity_bytes} to "
                          f"{capacity_bytes} bytes by the Pareto sizing rule (studies/sizing.py)"}
    return overrides


def pareto_arch(base: Arch, design: str, workload: Workload, seq: int, pe_dim: int, *,
                closed_form: bool = False) -> tuple[Arch, ParetoSizing]:
    """``base`` sized for a ``pe_dim`` x ``pe_dim`` array by the rule (module docstring).

    Simulates ``design`` at each candidate buffer until memory latency <= 1D compute latency.
    Raises UsageError if ``pe_dim`` does not divide ``seq`` or the rule does not converge; the
    mappers' errors (MappingError) pass through.
    """
    from attnsim.studies.simulate import simulate

    if isinstance(pe_dim, bool) or not isinstance(pe_dim, int) or pe_dim < 1:
        raise UsageError(f"pareto sizing: pe_dim: expected a positive integer, got {pe_dim!r}")
    if seq % pe_dim:
        raise UsageError(f"pareto sizing: pe_dim {pe_dim} does not divide the sequence length {seq}")
    head_dim = workload.head_dim_e
    minimum = l3_min_bytes(pe_dim, head_dim, seq)
    bandwidth = base.dram.bandwidth_bytes_per_s
    for doublings in range(MAX_DOUBLINGS + 1):
        multiplier = 2 ** doublings
        arch = base.with_overrides(sized_overrides(base, pe_dim, head_dim, minimum * multiplier))
        report = simulate(design, workload, seq, arch=arch, closed_form=closed_form)
        memory_s = report["traffic_bytes"] / bandwidth
        compute_1d_s = report["util_1d"] * report["cycles"] / arch.clock_hz
        if memory_s <= compute_1d_s:
            tiles = min_tiles(pe_dim, head_dim)
            return arch, ParetoSizing(
                pe_dim=pe_dim, min_tiles=tiles, l3_min_bytes=minimum, l3_multiplier=multiplier,
                global_buffer_bytes=minimum * multiplier, row_bytes=arch.global_buffer.row_bytes,
                rf_2d_entries=2 * tiles, rf_1d_entries=8 * tiles, memory_latency_s=memory_s,
                compute_1d_latency_s=compute_1d_s, candidates=doublings + 1)
    raise UsageError(f"pareto sizing: {design} {workload.name} seq {seq} PE {pe_dim}: memory latency still "
                     f"above the 1D compute latency after {MAX_DOUBLINGS} doublings of the buffer")


__all__ = ["MAX_DOUBLINGS", "ParetoSizing", "l3_min_bytes", "min_tiles", "pareto_arch", "sized_overrides"]
