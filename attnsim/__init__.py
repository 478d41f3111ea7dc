"""attnsim: a toolkit for attention-accelerator research.

The Python API (units are in the result names: ``latency_s`` seconds, ``cycles``, ``energy_pj``
picojoules, ``traffic_bytes`` bytes of DRAM/HBM traffic, ``area_mm2``; utilisations are fractions)::

    import attnsim
    arch = attnsim.load_arch("fusemax-cloud", {"global_buffer.capacity_bytes": 2**21})
    run = attnsim.simulate("fusemax", "bert-base", "64K", arch=arch)    # the arch is always explicit
    run["latency_s"], run["arch"], run.to_frame()                       # a one-row pandas DataFrame
    attnsim.simulate_gpu("flash3", "4K", 128, arch="h100-sxm")
    attnsim.passes("attention-1pass").passes                            # 1
    attnsim.check("attention-1pass", {"M": 1024}).passed
    attnsim.sweep("paper", "out/paper-study").to_frame()                # or attnsim.results(dir)

``load_arch``, ``load_cascade``, ``load_workload``: specs by built-in name or YAML path.
``simulate``, ``simulate_gpu``: one point, a :class:`attnsim.api.SimulationResult` (a mapping with
the keys of the command line's ``--json``, and ``.to_frame()``). ``passes``, ``check``: a cascade's
pass analysis and numerical check. ``sweep``: run a study; ``results``: a sweep's store as a
DataFrame. Everything is imported on first use, so ``import attnsim`` stays cheap.

The repository's top-level folders install as sub-packages of this one package:
``attnsim.einsum_ir`` (cascades, pass analysis, bounds), ``attnsim.kernels_ref`` (numba references),
``attnsim.archsim`` (hardware specs, engine), ``attnsim.mappers`` (dataflows), ``attnsim.studies``
(sweeps, results, plots, the command line) and ``attnsim.specs`` (built-in YAML specs).
"""
from __future__ import annotations

import importlib
from pathlib import Path as _Path
from typing import TYPE_CHECKING, Any

# In a source checkout this folder sits beside the layer folders (einsum_ir/, archsim/, ...), which an
# install maps to attnsim.<layer> (pyproject's package-dir). Map them the same way here, so that Python
# started in the repository root (where this folder shadows an installed attnsim) still finds them; an
# installed package holds its sub-packages itself and is left alone.
_here = _Path(__file__).resolve().parent
if not (_here / "einsum_ir").is_dir() and (_here.parent / "einsum_ir" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821 -- the package's module search path

if TYPE_CHECKING:
    __version__: str
    from attnsim.api import (check, load_arch, load_cascade, load_workload, passes, results, simulate,
                             simulate_gpu, sweep)

_API = ("load_arch", "load_cascade", "load_workload", "simulate", "simulate_gpu", "passes", "check",
        "sweep", "results")

__all__ = ["__version__", *_API]


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("attnsim")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """``__version__`` (the installed distribution's, read on first use) and the API functions,
    imported from :mod:`attnsim.api` on first use (PEP 562)."""
    if name == "__version__":
        globals()["__version__"] = version = _package_version()
        return version
    if name in _API:
        value = getattr(importlib.import_module("attnsim.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'attnsim' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), "__version__", *_API})
