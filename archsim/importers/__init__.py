"""Readers of peer tools' files: Accelergy ERT/ART (energy and area tables), Timeloop v0.4 /
AccelForge architectures, SCALE-Sim ``.cfg`` + topology CSV. Each maps what has an attnsim
counterpart and refuses the rest with one line naming the key (:class:`archsim.errors.SpecError`)."""
from __future__ import annotations

from attnsim.archsim.importers.accelergy import export_accelergy, import_accelergy
from attnsim.archsim.importers.common import ImportOutcome, write_arch_yaml
from attnsim.archsim.importers.scalesim import GemmLayer, ScaleSimRun, read_scalesim, read_topology
from attnsim.archsim.importers.timeloop import import_timeloop

__all__ = ["GemmLayer", "ImportOutcome", "ScaleSimRun", "export_accelergy", "import_accelergy", "import_timeloop",
           "read_scalesim", "read_topology", "write_arch_yaml"]
