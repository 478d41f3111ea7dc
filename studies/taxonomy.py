"""The FuseMax paper's Table I, regenerated: published algorithms grouped by the passes of their cascade."""
from __future__ import annotations

from importlib import resources
from dataclasses import dataclass
from pathlib import Path

import yaml

from attnsim.einsum_ir.library import builtin_names, load_builtin
from attnsim.einsum_ir.passes import analyze_passes
from attnsim.studies.errors import UsageError

TAXONOMY_PATH = Path(str(resources.files("attnsim.specs").joinpath("taxonomy.yaml")))


@dataclass(frozen=True)
class TaxonomyRow:
    """One pass class: the built-in attention cascades in it and the published algorithms that use them."""

    passes: int
    cascades: tuple[str, ...]
    algorithms: tuple[str, ...]


def build_taxonomy(path: Path = TAXONOMY_PATH) -> list[TaxonomyRow]:
    """Analyse every built-in attention cascade and place it (and its published algorithms) by pass count."""
    try:
        spec = yaml.safe_load(path.read_text())
        entries = spec["algorithms"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: cannot read the taxonomy ({exc}); expected a YAML mapping with 'algorithms'") from None
    passes_of: dict[str, int] = {}
    for name in builtin_names():
        cascade = load_builtin(name)
        if cascade.meta.get("attention"):
            passes_of[name] = analyze_passes(cascade).passes
    classes = sorted(set(passes_of.values()), reverse=True)
    rows = []
    for passes in classes:
        cascades = tuple(n for n, p in passes_of.items() if p == passes)
        algorithms = []
        for entry in entries:
            if entry["cascade"] not in passes_of:
                raise UsageError(f"{path}: algorithm {entry['name']!r} names cascade {entry['cascade']!r}; "
                                 f"expected a built-in attention cascade")
            if passes_of[entry["cascade"]] == passes:
                algorithms.append(f"{entry['name']} {entry['ref']}")
        rows.append(TaxonomyRow(passes, cascades, tuple(algorithms)))
    return rows
