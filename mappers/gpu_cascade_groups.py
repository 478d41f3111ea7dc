"""Schedule operations of a cascade on a GPU: pieces of Einsums grouped into ops, and their dependencies.

A mapping's ``gpu.ops`` groups the pieces (:mod:`mappers.gpu_cascade_work`) of its Einsums into
schedule operations, one per unit; pieces it does not list get one op per Einsum and unit
(``"<einsum>.<unit>"``), in cascade order. A sum that a contraction accumulates joins the
contraction's op.

Dependencies come from the cascade's reads. A piece waits for the ops that hold the pieces of the
Einsum that writes what it reads (a contraction's main piece also for its own convert pieces); a read
of a *folded* Einsum (``gpu.fold``) waits for what that Einsum reads instead. Each dependency carries a
tile distance: 0 (same K/V tile) or 1 (the previous tile's iterate), and the mapper turns it into an
iteration lag with the ops' pipeline stages: tensor-core ops that wait for FP32/MUFU work of their own
tile run one tile behind (stage 1: FA2/FA3's ``O += P_{j-1} V_{j-1}`` next to ``S_j = Q K_j^T``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_cascade_work import UNIT_TENSOR, GpuCascadeWork, Piece
from attnsim.mappers.gpu_mapping import GpuSection


@dataclass
class Group:
    """One schedule operation per consumer (and tile, for ``place == 'tile'``)."""

    name: str
    unit: str
    place: str
    pieces: list[Piece] = field(default_factory=list)
    stage: int = 0
    deps: dict[str, int] = field(default_factory=dict)        # group -> tile distance (0 or 1)
    inputs: dict[str, int] = field(default_factory=dict)      # input tensor -> tile distance
    final_deps: set[str] = field(default_factory=set)         # groups whose last instance it waits for

    def work(self, extents: Mapping[str, int], *, kinds: tuple[str, ...] | None = None) -> float:
        """FLOPs or ops of the group's pieces (of ``kinds`` only, when given) in one tile."""
        return sum(p.work(extents) for p in self.pieces if kinds is None or p.kind in kinds)

    @property
    def einsums(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.einsum for p in self.pieces))


@dataclass
class GroupPlan:
    """Every op group of a cascade, in issue order, with stages and dependencies resolved."""

    groups: dict[str, Group]
    work: GpuCascadeWork

    def of_place(self, place: str) -> list[Group]:
        return [g for g in self.groups.values() if g.place == place]

    def merge_reads(self) -> list[str]:
        """Tensors the merge groups read that Einsums before the merge write (the partials a split CTA
        stores), in cascade order."""
        merge = {p.einsum for g in self.of_place("merge") for p in g.pieces}
        out: list[str] = []
        for einsum in merge:
            for piece in self.work.einsums[einsum].pieces:
                for read in piece.reads:
                    producer = self.work.producer(read.tensor)
                    if producer is not None and producer not in merge and read.tensor not in out:
                        out.append(read.tensor)
        order = [e.output.tensor for e in self.work.cascade.einsums]
        return sorted(out, key=order.index)

    def tile_tensor(self, stage: int) -> list[Group]:
        return [g for g in self.of_place("tile") if g.unit == UNIT_TENSOR and g.stage == stage]

    def softmax(self) -> list[Group]:
        """Tile groups off the tensor cores that do not wait for a stage-1 op of their own iteration."""
        return [g for g in self.of_place("tile") if g.unit != UNIT_TENSOR and not self.late(g)]

    def late(self, group: Group) -> bool:
        """True when ``group`` (stage 0) waits for a stage-1 op issued in the same iteration."""
        return any(self.lag(group, dep, d) == 0 and self.groups[dep].stage == 1
                   for dep, d in group.deps.items())

    def late_groups(self) -> list[Group]:
        return [g for g in self.of_place("tile") if g.unit != UNIT_TENSOR and self.late(g)]

    def lag(self, reader: Group, writer: str, distance: int) -> int:
        """Iterations between a reader and the writer instance it waits for."""
        return distance + reader.stage - self.groups[writer].stage

    def readers_of_input(self, tensor: str) -> list[Group]:
        return [g for g in self.groups.values() if tensor in g.inputs]


def _assign(work: GpuCascadeWork, section: GpuSection, where: str) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    listed: dict[tuple[str, str], str] = {}
    for op in section.ops:
        if op.name in groups:
            raise MappingError(f"{where}: gpu.ops: duplicate op name '{op.name}'")
        groups[op.name] = Group(op.name, op.unit, "")
        for einsum in op.einsums:
            if einsum not in work.einsums:
                known = ", ".join(work.einsums)
                raise MappingError(f"{where}: gpu.ops.{op.name}: Einsum '{einsum}' is not one the cascade "
                                   f"computes (expected one of {known})")
            listed.setdefault((einsum, op.unit), op.name)
    for name in section.fold + (section.poly_exp.einsums if section.poly_exp else []):
        if name not in work.einsums:
            raise MappingError(f"{where}: gpu: Einsum '{name}' is not one the cascade computes")
    for einsum in work.einsums.values():
        home = einsum.accumulates_into or einsum.name
        for piece in einsum.pieces:
            name = listed.get((home, piece.unit))
            if name is None:
                name = f"{home}.{piece.unit}"
                groups.setdefault(name, Group(name, piece.unit, ""))
            group = groups[name]
            place = work.einsums[home].place
            if group.place and group.place != place:
                raise MappingError(f"{where}: gpu.ops.{name}: mixes Einsums that run per tile and after "
                                   f"the loop ({', '.join(group.einsums)}, {einsum.name})")
            group.place = place
            group.pieces.append(piece)
    return {name: g for name, g in groups.items() if g.pieces}


def plan_groups(work: GpuCascadeWork, section: GpuSection, where: str, *, staged: bool = True) -> GroupPlan:
    """Group the cascade's pieces per ``section.ops`` and resolve stages and dependencies
    (``staged=False``: every op in stage 0, for templates that issue a step's ops in program order)."""
    groups = _assign(work, section, where)
    home: dict[tuple[str, str], str] = {}   # (einsum, piece kind) -> groups holding such pieces
    providers: dict[str, list[str]] = {}
    converts: dict[str, list[str]] = {}
    for group in groups.values():
        for piece in group.pieces:
            target = converts if piece.kind == "convert" else providers
            target.setdefault(piece.einsum, [])
            if group.name not in target[piece.einsum]:
                target[piece.einsum].append(group.name)
            home[(piece.einsum, piece.kind)] = group.name
    mains: dict[str, list[str]] = {}
    for group in groups.values():
        for piece in group.pieces:
            if piece.kind in ("main", "rcp") and group.name not in mains.setdefault(piece.einsum, []):
                mains[piece.einsum].append(group.name)
    rcps: dict[str, list[str]] = {}
    for group in groups.values():
        for piece in group.pieces:
            if piece.kind == "rcp" and group.name not in rcps.setdefault(piece.einsum, []):
                rcps[piece.einsum].append(group.name)
    folded = set(section.fold)
    distance_of = {"tile": 0, "carried": 1}

    def resolve(tensor: str, distance: int, group: Group, seen: frozenset[str], final: bool) -> None:
        producer = work.producer(tensor)
        if producer is None:
            return
        if producer in folded:
            if producer in seen:
                return
            for piece in work.einsums[producer].pieces:
                if piece.kind not in ("main", "rcp"):
                    continue
                for read in piece.reads:
                    sub = distance + distance_of.get(read.relation, 0)
                    if read.relation == "input":
                        group.inputs[read.tensor] = min(group.inputs.get(read.tensor, 9), distance)
                    elif sub <= 1:
                        resolve(read.tensor, sub, group, seen | {producer}, final)
            return
        for name in providers.get(producer, []):
            if name == group.name:
                continue
            if final:
                group.final_deps.add(name)
            else:
                group.deps[name] = min(group.deps.get(name, 9), distance)

    for group in groups.values():
        for piece in group.pieces:
            if piece.kind == "main":   # an Einsum's converts and reciprocals come before its main work
                for name in converts.get(piece.einsum, []) + rcps.get(piece.einsum, []):
                    if name != group.name:
                        group.deps[name] = 0
            for read in piece.reads:
                if read.relation == "input":
                    group.inputs[read.tensor] = 0
                elif piece.kind in ("mask", "output"):   # applied to the Einsum's own result
                    for name in mains.get(piece.einsum, []):
                        if name != group.name:
                            group.deps[name] = 0
                else:
                    resolve(read.tensor, distance_of.get(read.relation, 0), group, frozenset(),
                            read.relation == "final" or (group.place in ("post", "merge")
                                                         and groups_place(work, read.tensor) == "tile"))
    plan = GroupPlan(groups, work)
    if not staged:
        return plan
    # stages: a tensor op that waits for off-tensor work of its own tile runs one tile behind
    for group in plan.of_place("tile"):
        if group.unit == UNIT_TENSOR and any(
                d == 0 and groups[dep].unit != UNIT_TENSOR and groups[dep].place == "tile"
                for dep, d in group.deps.items()):
            group.stage = 1
    for group in plan.of_place("tile"):
        for dep, distance in group.deps.items():
            if plan.lag(group, dep, distance) < 0:
                raise MappingError(f"{where}: gpu.ops.{group.name}: waits for '{dep}' of its own tile, "
                                   f"which runs a tile later (a stage-1 tensor op); not supported")
    return plan


def groups_place(work: GpuCascadeWork, tensor: str) -> str:
    """Where the Einsum writing ``tensor`` runs (tile / post / pre; 'input' for inputs)."""
    producer = work.producer(tensor)
    return work.einsums[producer].place if producer else "input"


__all__ = ["Group", "GroupPlan", "groups_place", "plan_groups"]
