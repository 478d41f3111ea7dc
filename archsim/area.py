"""Chip area from an architecture's area table (um^2 per instance, totals in um^2 and mm^2).

The rule is the FuseMax artifact's (``cascade.py::collect_area``): each area entry times its number of
instances -- a ``pe2d.*`` part once per 2D PE (rows x cols), a ``pe1d.*`` part once per 1D PE, anything
else once. Entries marked ``counted_in`` another entry (the MAC's adder) add nothing of their own.
"""
from __future__ import annotations

import math

from attnsim.archsim.spec import Arch

UM2_PER_MM2 = 1.0e6


def instances(arch: Arch, component: str) -> int:
    """How many copies of a part of ``component`` (``pe2d``, ``pe1d``, ...) the chip has."""
    if component == "pe2d":
        return arch.pes_2d
    if component == "pe1d":
        return arch.pes_1d
    return 1


def area_breakdown_um2(arch: Arch) -> dict[str, float]:
    """Total area in um^2 per area key (per-instance um^2 x instances), without ``counted_in`` parts."""
    return {key: entry.um2 * instances(arch, key.partition(".")[0])
            for key, entry in arch.area.items() if entry.um2 is not None}


def area_mm2(arch: Arch) -> float:
    """Total chip area in mm^2."""
    return math.fsum(area_breakdown_um2(arch).values()) / UM2_PER_MM2
