"""Energy of a set of action counts under an architecture's energy table (pJ).

Action counts use natural units everywhere in attnsim:

- compute operations in ops: ``pe2d.mac``, ``pe1d.div`` ... (energy = ops x pJ/op);
- register-file and global-buffer accesses in words: ``pe1d.register_file.write``,
  ``global_buffer.read`` ... (an entry per ``word`` costs words x pJ; an entry per ``row`` costs
  words x pJ / words_per_row, i.e. accesses are charged in row units as the FuseMax artifact does);
- DRAM traffic in bytes: ``dram.read``, ``dram.write`` (bytes x pJ / ``dram.access_bytes``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from attnsim.archsim.errors import SpecError
from attnsim.archsim.spec import Arch, EnergyEntry


def _units_per_count(arch: Arch, entry: EnergyEntry) -> float:
    """How many ``entry.per`` units one counted op / word / byte is."""
    if entry.per == "row":
        return 1.0 / arch.words_per_row
    if entry.per == "access":
        return 1.0 / arch.dram.access_bytes
    return 1.0  # "op" (counted in ops) and "word" (counted in words)


def energy_breakdown_pj(arch: Arch, actions: Mapping[str, float]) -> dict[str, float]:
    """Energy in pJ per action key, for ``actions`` = {"component.action": count in natural units}.

    Raises SpecError naming the action if the energy table has no entry for it, or if a count is
    negative or not finite.
    """
    breakdown: dict[str, float] = {}
    for action, count in actions.items():
        entry = arch.energy.get(action)
        if entry is None:
            raise SpecError(f"{arch.origin}: energy: no entry for action '{action}' "
                            f"(known: {', '.join(arch.energy)})")
        if isinstance(count, bool) or not isinstance(count, (int, float)) or not math.isfinite(count) \
                or count < 0:
            raise SpecError(f"action '{action}': expected a count >= 0, got {count!r}")
        breakdown[action] = count * entry.pj * _units_per_count(arch, entry)
    return breakdown


def energy_pj(arch: Arch, actions: Mapping[str, float]) -> float:
    """Total energy in pJ of ``actions`` (see :func:`energy_breakdown_pj`)."""
    return math.fsum(energy_breakdown_pj(arch, actions).values())
