"""Evaluation order of a cascade: which Einsums run once (vectorised) and which run per iterate.

Dependencies between Einsums (``dependency_graph``): an Einsum depends on every writer of each tensor
it reads, except that reading an iterative tensor at the bare iterative rank (``RM[m1,p]``, the
previous iterate) from inside the iteration depends only on the tensor's initialisation. A cycle in
this graph is a dependency cycle not through an iterative rank, hence an error.

Loop bodies (``schedule``): for an iterative rank ``r``, the body holds the update Einsums of ``r``
and every Einsum that keeps ``r`` in its output and reads, at the current iterate, a tensor produced
in the body (an iterative tensor at ``r`` / ``r+1``, or a body tensor at ``r``). Everything else runs
once over its whole iteration space, before or after the loop as the dependencies demand.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx
import sympy

from attnsim.einsum_ir.errors import cascade_error
from attnsim.einsum_ir.model import Einsum, TensorRef, rank_symbol


@dataclass(frozen=True)
class Step:
    """One step of evaluation: a single Einsum (``rank is None``) or a loop over iterative ``rank``."""

    einsums: tuple[Einsum, ...]
    rank: str | None = None

    @property
    def is_loop(self) -> bool:
        return self.rank is not None


def _reads_previous_iterate(einsum: Einsum, ref: TensorRef, iterative_dims: Mapping[str, tuple[int, str]]) -> bool:
    if ref.tensor not in iterative_dims:
        return False
    dim, rank = iterative_dims[ref.tensor]
    return ref.indices[dim].rank_var == rank and rank in einsum.output_ranks


def dependency_graph(einsums: Sequence[Einsum], iterative_dims: Mapping[str, tuple[int, str]]) -> networkx.DiGraph:
    """Einsum-name graph: edge ``a -> b`` when ``b`` needs ``a``'s result within an iterate.

    Edge attribute ``tensor`` names the tensor through which the dependency goes.
    """
    graph = networkx.DiGraph()
    writers: dict[str, list[Einsum]] = {}
    for einsum in einsums:
        graph.add_node(einsum.name, einsum=einsum)
        writers.setdefault(einsum.output.tensor, []).append(einsum)
    for einsum in einsums:
        for ref in einsum.inputs():
            producers = writers.get(ref.tensor, [])
            if _reads_previous_iterate(einsum, ref, iterative_dims):
                producers = [w for w in producers if w.role == "init"]
            for producer in producers:
                graph.add_edge(producer.name, einsum.name, tensor=ref.tensor)
    return graph


def check_acyclic(graph: networkx.DiGraph, source: str) -> None:
    """Raise CascadeError naming a cycle that does not go through an iterative rank."""
    try:
        cycle = networkx.find_cycle(graph)
    except networkx.NetworkXNoCycle:
        return
    names = [edge[0] for edge in cycle]
    einsums = [graph.nodes[n]["einsum"] for n in names]
    first = min(einsums, key=lambda e: e.line)
    tensor = graph.edges[cycle[0][0], cycle[0][1]]["tensor"]
    path = " -> ".join(names + [names[0]])
    raise cascade_error(source, first.line, "dependency cycle not through an iterative rank", tensor,
                        f"a cycle only through the previous iterate of an iterative rank, T[r] read and T[r+1] "
                        f"written (cycle: {path})")


def _sorted(graph: networkx.DiGraph) -> list[str]:
    return list(networkx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["einsum"].line))


def schedule(einsums: Sequence[Einsum], iterative_dims: Mapping[str, tuple[int, str]],
             iterative: Mapping[str, sympy.Expr], source: str) -> tuple[Step, ...]:
    """The evaluation steps of a validated cascade, in an order that respects every dependency."""
    graph = dependency_graph(einsums, iterative_dims)
    check_acyclic(graph, source)
    order = _sorted(graph)
    by_name = {e.name: e for e in einsums}
    writer_of = {}
    for e in einsums:
        writer_of.setdefault(e.output.tensor, []).append(e.name)

    loop_of: dict[str, str] = {}
    for rank in iterative:
        members: set[str] = set()
        body_tensors = {t for t, (_, r) in iterative_dims.items() if r == rank}
        for name in order:
            einsum = by_name[name]
            pointwise, whole = False, []
            for ref in einsum.inputs():
                in_body = ref.tensor in body_tensors
                if not in_body:
                    continue
                if rank in einsum.output_ranks and _pointwise_read(ref, rank, iterative_dims, einsum, source):
                    pointwise = True
                else:
                    whole.append(ref)
            member = (einsum.role == "update" and einsum.iterative_rank == rank) or pointwise
            if member and whole:
                raise cascade_error(source, einsum.line, f"Einsum both runs inside the {rank} loop and reads its "
                                    "finished result", str(whole[0]),
                                    f"reads of {rank}-loop tensors at the current iterate only")
            if member:
                if name in loop_of:
                    raise cascade_error(source, einsum.line, "Einsum iterates over two iterative ranks", rank,
                                        "one iterative rank per Einsum (nested iterative ranks are not supported)")
                members.add(name)
                loop_of[name] = rank
                if einsum.role != "update":
                    body_tensors.add(einsum.output.tensor)

    # Contract each loop into one node and order the steps.
    contracted = networkx.DiGraph()
    unit_of = {name: (f"loop:{loop_of[name]}" if name in loop_of else name) for name in order}
    first_line: dict[str, int] = {}
    for name in order:
        unit = unit_of[name]
        contracted.add_node(unit)
        first_line[unit] = min(first_line.get(unit, 10**9), by_name[name].line)
    for a, b in graph.edges:
        if unit_of[a] != unit_of[b]:
            contracted.add_edge(unit_of[a], unit_of[b])
    try:
        cycle = networkx.find_cycle(contracted)
        unit = next(u for u, _ in cycle if not u.startswith("loop:"))
        einsum = by_name[unit]
        raise cascade_error(source, einsum.line, "Einsum must run both before and after an iterative loop",
                            einsum.name, "an Einsum that either feeds the loop or reads its finished result")
    except networkx.NetworkXNoCycle:
        pass
    steps: list[Step] = []
    for unit in networkx.lexicographical_topological_sort(contracted, key=lambda u: first_line[u]):
        if unit.startswith("loop:"):
            rank = unit.split(":", 1)[1]
            body = tuple(by_name[n] for n in order if loop_of.get(n) == rank)
            steps.append(Step(einsums=body, rank=rank))
        else:
            steps.append(Step(einsums=(by_name[unit],)))
    return tuple(steps)


def _pointwise_read(ref: TensorRef, rank: str, iterative_dims: Mapping[str, tuple[int, str]], einsum: Einsum,
                    source: str) -> bool:
    """True when ``ref`` reads a loop tensor at the current iterate; raises for an unsupported offset."""
    symbol = rank_symbol(rank)
    involved = [(d, idx) for d, idx in enumerate(ref.indices) if rank in idx.ranks]
    if ref.tensor in iterative_dims and iterative_dims[ref.tensor][1] == rank:
        dim = iterative_dims[ref.tensor][0]
        return any(d == dim for d, _ in involved)
    if not involved:
        return False
    for _, idx in involved:
        if sympy.expand(idx.expr - symbol) != 0:
            raise cascade_error(source, einsum.line, f"loop tensor {ref.tensor} read at an offset iterate", str(ref),
                                f"{ref.tensor} indexed by the bare iterative rank {rank}")
    return True
