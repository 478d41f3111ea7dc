"""A Timeloop v0.4 (or AccelForge-style) architecture YAML into an attnsim architecture, where it maps.

The documented Timeloop v0.4 format: ``architecture: {version: 0.4, nodes: [...]}``, a list read top
(outermost) to bottom, each node tagged ``!Container`` (a level; ``spatial: {meshX, meshY}`` fans it
out) or ``!Component`` (``class: DRAM | storage | compute``, ``subclass``, and ``attributes``: for
storage ``depth`` entries of ``width`` bits, ``datawidth`` bits per word, ``n_banks``,
``read_bandwidth`` / ``write_bandwidth`` words per cycle; for DRAM ``width`` bits per access and
``shared_bandwidth`` / ``read_bandwidth``). The top container's ``attributes.global_cycle_seconds``
is the clock period. AccelForge-style tags ``!Memory`` (storage; ``!Memory`` named like DRAM or with
``class: DRAM`` is DRAM) and ``!Compute`` read the same way, and a component's ``actions`` list may
give per-action energies in pJ (``{name: read, energy: 2.1}``), as AccelForge writes them.

How it maps onto attnsim's fixed organisation (DRAM -> global buffer -> 2D PE array with a register
file per PE; the 1D array and the areas come from ``base``):

==========================================  ============================================================
Timeloop                                     attnsim
==========================================  ============================================================
``global_cycle_seconds``                     ``clock_hz`` = 1 / period
``datawidth`` (all components agree)         ``word_bytes`` = datawidth / 8
DRAM ``width``, bandwidth                    ``dram.access_bytes``, ``dram.bandwidth_bytes_per_s``
                                             (words/cycle x word_bytes x clock_hz)
the storage level above the fanout           ``global_buffer``: capacity depth x width / 8, row
                                             width / 8 (``n_banks`` and bandwidths: listed as not modelled)
the ``spatial`` fanout                       ``arrays.pe2d``: rows = meshY (1 if absent), cols = meshX
the storage level inside the fanout          its energies only (depth and width: listed as not modelled)
compute inside the fanout                    ``arrays.pe2d.ops.mac`` (one cycle per MAC)
``actions: [{name, energy}]``                ``energy.<component>.<read|write>`` / ``energy.pe2d.mac``
==========================================  ============================================================

What cannot map is refused with one line naming the key (``architecture.nodes.5.spatial`` ...): a
second fanout, more than one storage level above or inside the fanout, a ``!Parallel`` node, an unknown
node tag or component class, a version other than 0.4. Keys attnsim does not model (technology,
subclass, block_size, ...) are listed as unmapped, not refused.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnsim.archsim.errors import SpecError
from attnsim.archsim.importers.common import (TAG_KEY, ImportOutcome, base_mapping, integer, number,
                                              read_tagged_yaml, validated)
from attnsim.archsim.spec import Arch

SUPPORTED_VERSIONS = ("0.4",)
NODE_TAGS = ("Container", "Component", "Memory", "Compute", "Hierarchical")
MODELLED_ATTRIBUTES = {"depth", "width", "datawidth", "n_banks", "read_bandwidth", "write_bandwidth",
                       "shared_bandwidth", "global_cycle_seconds", "meshX", "meshY"}


def _kind(node: Mapping[str, Any]) -> str:
    """``container``, ``dram``, ``storage`` or ``compute`` of one node ('' when it is none of these)."""
    tag = node.get(TAG_KEY)
    if tag == "Container":
        return "container"
    if tag == "Compute":
        return "compute"
    cls = str(node.get("class", "")).lower()
    if tag == "Memory":
        return "dram" if cls == "dram" or "dram" in str(node.get("name", "")).lower() else "storage"
    return {"dram": "dram", "storage": "storage", "compute": "compute"}.get(cls, "")


def _flatten(nodes: list[Any], display: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for index, node in enumerate(nodes):
        key = f"{prefix}.{index}"
        if not isinstance(node, dict):
            raise SpecError(f"{display}: {key}: expected a tagged node (!Container, !Component), got {node!r}")
        tag = node.get(TAG_KEY)
        if tag == "Parallel":
            raise SpecError(f"{display}: {key}: a !Parallel node (side-by-side sub-trees) has no attnsim "
                            "counterpart (attnsim has one hierarchy: DRAM, global buffer, 2D array)")
        if tag not in NODE_TAGS:
            raise SpecError(f"{display}: {key}: expected a node tagged one of "
                            f"{', '.join('!' + t for t in NODE_TAGS)}, got {('!' + tag) if tag else 'no tag'}")
        if tag == "Hierarchical":
            out += _flatten(node.get("nodes") or [], display, f"{key}.nodes")
            continue
        out.append((key, node))
    return out


def _attributes(node: Mapping[str, Any]) -> dict[str, Any]:
    attributes = node.get("attributes") or {}
    return dict(attributes) if isinstance(attributes, Mapping) else {}


def _energies(node: Mapping[str, Any], key: str, display: str) -> dict[str, tuple[float, int]]:
    out = {}
    for index, action in enumerate(node.get("actions") or []):
        if isinstance(action, Mapping) and "energy" in action:
            out[str(action.get("name"))] = (number(action["energy"], f"{key}.actions.{index}.energy", display,
                                                   positive=False), index)
    return out


def import_timeloop(path: str | Path, base: str | Path | Arch = "fusemax-cloud", name: str | None = None
                    ) -> ImportOutcome:
    """The attnsim architecture of a Timeloop v0.4 arch file (module docstring); SpecError (one line,
    file and key) for what does not map."""
    path = Path(path)
    display = str(path)
    document = read_tagged_yaml(path, "Timeloop architecture")
    top = "architecture" if "architecture" in document else "arch" if "arch" in document else None
    if top is None or not isinstance(document[top], Mapping):
        raise SpecError(f"{display}: architecture: expected the top-level key 'architecture' of a Timeloop arch")
    arch_doc = document[top]
    version = arch_doc.get("version")
    if version is not None and str(version) not in SUPPORTED_VERSIONS:
        raise SpecError(f"{display}: {top}.version: expected {' or '.join(SUPPORTED_VERSIONS)}, got {version!r} "
                        "(v0.3 subtree/local files: convert them with timeloopfe first)")
    if not isinstance(arch_doc.get("nodes"), list):
        raise SpecError(f"{display}: {top}.nodes: expected the list of nodes of a v0.4 architecture")
    nodes = _flatten(arch_doc["nodes"], display, f"{top}.nodes")
    data = base_mapping(base)
    base_name = data["name"]
    outcome = ImportOutcome(arch=None, data=data)  # type: ignore[arg-type]
    mapped = outcome.mapped

    period = None
    datawidths: dict[str, int] = {}
    dram = buffer = register_file = compute = None
    fanout_at: str | None = None
    for key, node in nodes:
        kind = _kind(node)
        attributes = _attributes(node)
        if "global_cycle_seconds" in attributes and period is None:
            period = number(attributes["global_cycle_seconds"], f"{key}.attributes.global_cycle_seconds", display)
        if "datawidth" in attributes:
            datawidths[f"{key}.attributes.datawidth"] = integer(attributes["datawidth"],
                                                                f"{key}.attributes.datawidth", display)
        for attribute in attributes:
            if attribute not in MODELLED_ATTRIBUTES:
                outcome.unmapped.append(f"{key}.attributes.{attribute} ({node.get('name')})")
        if kind == "container":
            spatial = node.get("spatial")
            if spatial:
                if fanout_at is not None:
                    raise SpecError(f"{display}: {key}.spatial: a second spatial fanout ('{node.get('name')}' "
                                    f"inside the one at {fanout_at}) has no attnsim counterpart (one 2D array)")
                if not isinstance(spatial, Mapping) or not set(spatial) <= {"meshX", "meshY"}:
                    raise SpecError(f"{display}: {key}.spatial: expected {{meshX: N, meshY: N}}, got {spatial!r}")
                cols = integer(spatial.get("meshX", 1), f"{key}.spatial.meshX", display)
                rows = integer(spatial.get("meshY", 1), f"{key}.spatial.meshY", display)
                data["arrays"]["pe2d"]["rows"], data["arrays"]["pe2d"]["cols"] = rows, cols
                mapped += ["arrays.pe2d.rows", "arrays.pe2d.cols"]
                fanout_at = key
            continue
        if kind == "dram":
            if dram is not None:
                raise SpecError(f"{display}: {key}: a second DRAM ('{node.get('name')}') has no attnsim counterpart")
            dram = (key, node)
        elif kind == "storage":
            if fanout_at is None:
                if buffer is not None:
                    raise SpecError(f"{display}: {key}: a second storage level above the PE array "
                                    f"('{node.get('name')}' below '{buffer[1].get('name')}') has no attnsim "
                                    "counterpart (one global buffer)")
                buffer = (key, node)
            else:
                if register_file is not None:
                    raise SpecError(f"{display}: {key}: a second storage level inside the PE ('{node.get('name')}')"
                                    " has no attnsim counterpart (one register file per PE)")
                register_file = (key, node)
        elif kind == "compute":
            if fanout_at is None:
                raise SpecError(f"{display}: {key}: a compute unit outside any spatial fanout has no attnsim "
                                "counterpart (compute lives in the 2D array)")
            if compute is not None:
                raise SpecError(f"{display}: {key}: a second compute unit ('{node.get('name')}') has no attnsim "
                                "counterpart")
            compute = (key, node)
        else:
            raise SpecError(f"{display}: {key}.class: expected DRAM, storage or compute, got {node.get('class')!r}")
    if fanout_at is None:
        raise SpecError(f"{display}: {top}.nodes: no !Container with spatial: {{meshX, meshY}} (the PE array)")

    if period is not None:
        data["clock_hz"] = 1.0 / period
        mapped.append("clock_hz")
    widths = set(datawidths.values())
    if len(widths) > 1:
        first = next(iter(datawidths))
        other = next(k for k, v in datawidths.items() if v != datawidths[first])
        raise SpecError(f"{display}: {other}: datawidth {datawidths[other]} differs from {datawidths[first]} "
                        f"at {first} (attnsim has one word size)")
    if widths:
        bits = widths.pop()
        if bits % 8:
            raise SpecError(f"{display}: {next(iter(datawidths))}: expected a multiple of 8 bits, got {bits}")
        data["word_bytes"] = bits // 8
        mapped.append("word_bytes")
    word_bytes, clock_hz = data["word_bytes"], data["clock_hz"]

    def energy(node_key: str, node: Mapping[str, Any], component: str, actions: dict[str, str]) -> None:
        given = _energies(node, node_key, display)
        for attnsim_action, timeloop_action in actions.items():
            if timeloop_action not in given:
                continue
            pj, index = given[timeloop_action]
            energy_key = f"{component}.{attnsim_action}" if attnsim_action else component
            per = data["energy"][energy_key]["per"]
            data["energy"][energy_key] = {
                "pj": pj, "per": per,
                "source": f"Timeloop arch {path.name}: {node_key}.actions.{index} ('{node.get('name')}' "
                          f"{timeloop_action}), pJ per {per}; imported by attnsim import timeloop"}
            mapped.append(f"energy.{energy_key}")

    if dram is not None:
        key, node = dram
        attributes = _attributes(node)
        if "width" in attributes:
            width = integer(attributes["width"], f"{key}.attributes.width", display)
            data["dram"]["access_bytes"] = max(1, width // 8)
            mapped.append("dram.access_bytes")
        bandwidth = attributes.get("shared_bandwidth", attributes.get("read_bandwidth"))
        if bandwidth is not None:
            words = number(bandwidth, f"{key}.attributes.shared_bandwidth", display)
            data["dram"]["bandwidth_bytes_per_s"] = words * word_bytes * clock_hz
            mapped.append("dram.bandwidth_bytes_per_s")
        energy(key, node, "dram", {"read": "read", "write": "write"})
    if buffer is not None:
        key, node = buffer
        attributes = _attributes(node)
        glb = data["global_buffer"]
        if "width" in attributes:
            width = integer(attributes["width"], f"{key}.attributes.width", display)
            glb["row_bytes"] = width // 8
            mapped.append("global_buffer.row_bytes")
            if "depth" in attributes:
                glb["capacity_bytes"] = integer(attributes["depth"], f"{key}.attributes.depth", display) * width // 8
                mapped.append("global_buffer.capacity_bytes")
        for attribute in ("n_banks", "read_bandwidth", "write_bandwidth"):
            if attribute in attributes:   # attnsim does not model the buffer's banks or bandwidth
                outcome.unmapped.append(f"{key}.attributes.{attribute} ({node.get('name')}; not modelled)")
        energy(key, node, "global_buffer", {"read": "read", "write": "write"})
    if register_file is not None:
        key, node = register_file
        attributes = _attributes(node)
        for attribute in ("depth", "width"):
            if attribute in attributes:   # the register file's size is not a cost-model input
                outcome.unmapped.append(f"{key}.attributes.{attribute} ({node.get('name')}; not modelled)")
        energy(key, node, "pe2d.register_file", {"read": "read", "write": "write"})
    if compute is not None:
        key, node = compute
        data["arrays"]["pe2d"]["ops"]["mac"] = 1
        mapped.append("arrays.pe2d.ops.mac")
        given = _energies(node, key, display)
        action = "compute" if "compute" in given else next((a for a in given if a not in ("idle", "leak")), None)
        if action is not None:
            energy(key, node, "pe2d.mac", {"": action})

    data["name"] = name or f"{base_name}-timeloop"
    data["description"] = f"imported from the Timeloop arch {path.name}; what it does not describe is {base_name}'s"
    mapped_set = set(mapped)
    outcome.kept = [k for k in ("arrays.pe1d", "area") if k not in mapped_set]
    outcome.kept += [f"energy.{k}" for k in data["energy"] if f"energy.{k}" not in mapped_set]
    outcome.arch = validated(data, f"import of {display}")
    return outcome


__all__ = ["MODELLED_ATTRIBUTES", "NODE_TAGS", "SUPPORTED_VERSIONS", "import_timeloop"]
