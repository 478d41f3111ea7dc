"""attnsim: a toolkit for attention-accelerator research.

The repository's top-level folders install as sub-packages of this one package:
``attnsim.einsum_ir`` (cascades, pass analysis, bounds), ``attnsim.kernels_ref`` (numba references),
``attnsim.archsim`` (hardware specs, engine), ``attnsim.mappers`` (dataflows), ``attnsim.studies``
(sweeps, results, plots, the command line) and ``attnsim.specs`` (built-in YAML specs).
"""
from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__: str = _metadata.version("attnsim")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
