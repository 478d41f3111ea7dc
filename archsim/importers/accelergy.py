"""Accelergy energy / area reference tables (ERT / ART, YAML) into an architecture's ``energy`` and
``area`` tables, every imported entry with its own ``source``.

The documented format (Accelergy v0.3/v0.4 outputs ``ERT.yaml`` and ``ART.yaml``)::

    ERT:
      version: 0.3
      tables:
      - name: system.chip.PE[0..255].mac        # a component; [a..b] marks an array of instances
        actions:
        - {name: compute, arguments: null, energy: 17.16}   # pJ per action
        - {name: idle, arguments: null, energy: 0.07}
    ART:
      version: 0.3
      tables:
      - {name: system.chip.PE[0..255].mac, area: 1545.0}    # um^2 per instance

Which attnsim component a table is: the table name with its ``[a..b]`` ranges removed ends in an
attnsim component path (``...pe2d.mac``, ``...pe2d.register_file``, ``...global_buffer``,
``...dram``; case-insensitive), or a ``names`` entry says so: ``{"PE.mac": "pe2d.mac"}`` (a suffix
of dot-separated segments -> an attnsim component), ``{"PE.mac:mac_random": "pe2d.mac"}`` (also
which action is one attnsim op). Storage components take their ``read`` and ``write`` actions
(``update`` when there is no ``write``); a compute component the action named ``compute``, else the
one named after the op, else its only action besides ``idle`` / ``leak``. Energies are pJ per action
and keep the base's ``per`` (op, word, row, access); areas are um^2 per instance.

Tables that name no attnsim component are reported (``unmapped``), not imported. Refused, with one
line naming the key: a table without ``name`` / ``actions`` / ``energy`` / ``area``, an action whose
energy depends on its ``arguments``, a compute component whose action is ambiguous, and files in
which no table maps at all.

:func:`export_accelergy` writes an architecture's tables back in the same format (components
``system.<component>``), so an import of the export gives the same numbers.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnsim.archsim.errors import SpecError
from attnsim.archsim.importers.common import ImportOutcome, base_mapping, number, read_tagged_yaml, validated
from attnsim.archsim.spec import Arch

STORAGE_COMPONENTS = ("pe2d.register_file", "pe1d.register_file", "global_buffer", "dram")
"""attnsim components with read / write actions."""
IGNORED_ACTIONS = ("idle", "leak")
"""Accelergy actions with no attnsim counterpart (attnsim counts no idle or leakage energy)."""

_RANGE = re.compile(r"\[[^\]]*\]")


def normalised_name(name: str) -> str:
    """An Accelergy component name without its instance ranges: ``a.PE[0..15].mac`` -> ``a.PE.mac``."""
    return _RANGE.sub("", name)


def _ends_with(name: str, suffix: str) -> bool:
    parts, wanted = name.lower().split("."), suffix.lower().split(".")
    return len(parts) >= len(wanted) and parts[-len(wanted):] == wanted


def _components(base: Mapping[str, Any]) -> list[str]:
    """attnsim components with energy entries: compute ``pe2d.<op>`` / ``pe1d.<op>`` and storage."""
    compute = [f"{array}.{op}" for array in ("pe2d", "pe1d") for op in base["arrays"][array]["ops"]]
    return compute + list(STORAGE_COMPONENTS)


def _target(table_name: str, components: list[str], names: Mapping[str, str]
            ) -> tuple[str | None, str | None]:
    """(attnsim component, forced action or None) of an Accelergy table, or (None, None)."""
    plain = normalised_name(table_name)
    for pattern, target in names.items():
        suffix, _, action = pattern.partition(":")
        if _ends_with(plain, normalised_name(suffix)):
            return target, action or None
    matches = [c for c in components if _ends_with(plain, c)]
    return (max(matches, key=len), None) if matches else (None, None)


def _named_tables(path: Path, top: str) -> tuple[str, list[tuple[int, str, Mapping[str, Any]]]]:
    """(the file's version, [(index, key, table)]) of an Accelergy ``top`` file (``ERT`` or ``ART``);
    SpecError naming the key when the tables are not a list of named mappings."""
    document = read_tagged_yaml(path, f"Accelergy {top}")
    display = str(path)
    if top not in document or not isinstance(document[top], Mapping):
        raise SpecError(f"{display}: {top}: expected the top-level key '{top}' of an Accelergy {top} file")
    tables = document[top].get("tables")
    if not isinstance(tables, list):
        raise SpecError(f"{display}: {top}.tables: expected a list of tables")
    named = []
    for index, table in enumerate(tables):
        key = f"{top}.tables.{index}"
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
            raise SpecError(f"{display}: {key}.name: expected the component name of the table")
        named.append((index, key, table))
    return str(document[top].get("version", "?")), named


def _energy_of(actions: list[Any], action: str, key: str, display: str) -> tuple[float, int]:
    """The energy of ``action`` and its index; one energy even when ``arguments`` vary."""
    found = [(i, a) for i, a in enumerate(actions) if isinstance(a, Mapping) and a.get("name") == action]
    plain = [(i, a) for i, a in found if not a.get("arguments")]
    chosen = plain or found
    energies = {number(a.get("energy"), f"{key}.{i}.energy", display, positive=False) for i, a in chosen}
    if len(energies) > 1:
        i = chosen[0][0]
        raise SpecError(f"{display}: {key}.{i}.arguments: the energy of '{action}' depends on its arguments "
                        f"({', '.join(f'{e:g}' for e in sorted(energies))} pJ); attnsim has one energy per action")
    return energies.pop(), chosen[0][0]


def _compute_action(actions: list[Any], component: str, key: str, display: str, table: str) -> str:
    op = component.rpartition(".")[2]
    names = [a.get("name") for a in actions if isinstance(a, Mapping)]
    for wanted in ("compute", op):
        if wanted in names:
            return wanted
    useful = [n for n in dict.fromkeys(names) if n not in IGNORED_ACTIONS]
    if len(useful) == 1:
        return str(useful[0])
    raise SpecError(f"{display}: {key}: table '{table}' has actions {', '.join(map(str, useful))}: which one is "
                    f"one attnsim '{op}'? (name it: --map '{normalised_name(table)}:ACTION={component}')")


def _import_energy(path: Path, data: dict[str, Any], names: Mapping[str, str], outcome: ImportOutcome) -> int:
    display = str(path)
    version, tables = _named_tables(path, "ERT")
    components = _components(data)
    imported = 0
    for index, key, table in tables:
        actions = table.get("actions")
        if not isinstance(actions, list):
            raise SpecError(f"{display}: {key}.actions: expected a list of actions")
        component, forced = _target(table["name"], components, names)
        if component is None:
            outcome.unmapped.append(f"ERT {table['name']}")
            continue
        if component not in components:
            raise SpecError(f"{display}: {key}: --map target '{component}' is not an attnsim component with "
                            f"energies (one of {', '.join(components)})")
        if component in STORAGE_COMPONENTS:
            available = {a.get("name") for a in actions if isinstance(a, Mapping)}
            pairs = [("read", "read"), ("write", "write" if "write" in available else "update")]
        else:
            pairs = [(None, forced or _compute_action(actions, component, f"{key}.actions", display, table["name"]))]
        for attnsim_action, action in pairs:
            if action not in {a.get("name") for a in actions if isinstance(a, Mapping)}:
                continue
            energy, at = _energy_of(actions, action, f"{key}.actions", display)
            energy_key = component if attnsim_action is None else f"{component}.{attnsim_action}"
            per = data["energy"].get(energy_key, {}).get("per") or ("op" if attnsim_action is None else "access")
            data["energy"][energy_key] = {
                "pj": energy, "per": per,
                "source": f"Accelergy ERT {path.name} (v{version}): table '{table['name']}', action '{action}' "
                          f"(ERT.tables.{index}.actions.{at}), pJ per {per}; imported by attnsim import accelergy"}
            outcome.mapped.append(f"energy.{energy_key}")
            imported += 1
    return imported


def _area_key(component: str, area: Mapping[str, Any]) -> str | None:
    if component in area:
        return component
    if component in ("global_buffer", "dram"):
        keys = [k for k in area if k.partition(".")[0] == component]
        return keys[0] if len(keys) == 1 else None
    return None


def _import_area(path: Path, data: dict[str, Any], names: Mapping[str, str], outcome: ImportOutcome) -> int:
    display = str(path)
    version, tables = _named_tables(path, "ART")
    components = _components(data)
    imported = 0
    for index, key, table in tables:
        component, _ = _target(table["name"], components, names)
        area_key = _area_key(component, data["area"]) if component else None
        if area_key is None:
            outcome.unmapped.append(f"ART {table['name']}")
            continue
        if "counted_in" in data["area"][area_key]:
            outcome.unmapped.append(f"ART {table['name']} (attnsim counts {area_key} in "
                                    f"{data['area'][area_key]['counted_in']})")
            continue
        um2 = number(table.get("area"), f"{key}.area", display, positive=False)
        data["area"][area_key] = {
            "um2": um2, "source": f"Accelergy ART {path.name} (v{version}): table '{table['name']}' "
                                  f"(ART.tables.{index}), um^2 per instance; imported by attnsim import accelergy"}
        outcome.mapped.append(f"area.{area_key}")
        imported += 1
    return imported


def import_accelergy(ert: str | Path, art: str | Path | None = None, base: str | Path | Arch = "fusemax-cloud",
                     names: Mapping[str, str] | None = None, name: str | None = None) -> ImportOutcome:
    """The ``base`` architecture with the energies of ``ert`` and the areas of ``art`` (module
    docstring); SpecError (one line, file and key) for what cannot be mapped."""
    data = base_mapping(base)
    base_name = data["name"]
    names = dict(names or {})
    outcome = ImportOutcome(arch=None, data=data)  # type: ignore[arg-type]
    count = _import_energy(Path(ert), data, names, outcome)
    if art is not None:
        count += _import_area(Path(art), data, names, outcome)
    if count == 0:
        raise SpecError(f"{ert}: ERT.tables: no table names an attnsim component (expected names ending in one of "
                        f"{', '.join(_components(data))}); map them with --map ACCELERGY_NAME=COMPONENT")
    data["name"] = name or f"{base_name}-accelergy"
    data["description"] = f"{base_name} with energies / areas imported from Accelergy ({Path(ert).name}" + (
        f", {Path(art).name})" if art is not None else ")")
    mapped = set(outcome.mapped)
    outcome.kept = [f"energy.{k}" for k in data["energy"] if f"energy.{k}" not in mapped] + [
        f"area.{k}" for k in data["area"] if f"area.{k}" not in mapped]
    outcome.arch = validated(data, f"import of {ert}")
    return outcome


def export_accelergy(arch: Arch) -> tuple[dict[str, Any], dict[str, Any]]:
    """``arch``'s energy and area tables as Accelergy ERT and ART documents (module docstring)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for key, entry in arch.energy.items():
        component, _, action = key.rpartition(".")
        if component in STORAGE_COMPONENTS:
            tables.setdefault(component, []).append({"name": action, "arguments": None, "energy": entry.pj})
        else:
            tables.setdefault(key, []).append({"name": "compute", "arguments": None, "energy": entry.pj})
    ert = {"ERT": {"version": 0.3, "tables": [{"name": f"system.{c}", "actions": a} for c, a in tables.items()]}}
    art_tables = []
    for key, entry in arch.area.items():
        if entry.um2 is None:
            continue
        component = key if key.partition(".")[0] in ("pe2d", "pe1d") else key.partition(".")[0]
        art_tables.append({"name": f"system.{component}", "area": entry.um2})
    return ert, {"ART": {"version": 0.3, "tables": art_tables}}


__all__ = ["IGNORED_ACTIONS", "STORAGE_COMPONENTS", "export_accelergy", "import_accelergy", "normalised_name"]
