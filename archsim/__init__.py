"""Hardware specs (YAML -> validated objects), cost models, the event-driven engine, PE-level simulation.

Never imports ``mappers``: a mapper produces a schedule, archsim executes it.
"""
from attnsim.archsim.errors import SpecError
from attnsim.archsim.spec import Arch, load_arch

__all__ = ["Arch", "SpecError", "load_arch"]
