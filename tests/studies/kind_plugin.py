"""Test point kinds installed the way a real plugin is: a module plus a ``*.dist-info`` folder whose
``entry_points.txt`` declares them in the ``attnsim.kinds`` group, on ``PYTHONPATH``.

A study can only name a kind that attnsim ships or that an installed package declares, so tests that
run ``attnsim sweep`` in a subprocess (and its spawned workers) install their kinds with this.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["install_kinds"]


def install_kinds(folder: Path, module: str, source: str, kinds: Mapping[str, str]) -> dict[str, str]:
    """Write ``folder/module.py`` (``source``) and a distribution declaring ``kinds`` (name ->
    attribute of that module); returns an environment with ``folder`` first on ``PYTHONPATH``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{module}-0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.0\n")
    lines = "".join(f"{name} = {module}:{attribute}\n" for name, attribute in kinds.items())
    (info / "entry_points.txt").write_text(f"[attnsim.kinds]\n{lines}")
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)
