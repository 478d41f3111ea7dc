"""Buffer lower bounds that follow from a cascade's pass structure (FuseMax §III-B).

For the rank ``r`` of a :class:`~einsum_ir.passes.PassAnalysis`, three kinds of tensor must stay live
while ``r`` is traversed, whatever the mapping:

- ``reread``: a tensor whose ``r``-fibers are read element by element in more than one pass (QK in the
  3-pass cascade). Its minimum live footprint is one whole ``r``-fiber per tile of the parallel ranks;
  a mapping either buffers that much or spills it and pays the re-reads in DRAM traffic;
- ``state``: the current iterate of a recurrence along ``r`` (RM, RD, RNV of the 1-pass cascade);
- ``reused``: a tensor without ``r`` that a traversal reads at every element of ``r`` (Q, or a
  summary such as GM[p] read by the next pass);
- ``partial``: the partial result of a reduction over ``r`` whose output has no ``r``
  (``KV[e,f] = phi(K)[m,e] * V[f,m]`` over ``m``: E x F), live for the whole pass that accumulates it
  (unless already counted as reused or state: the same buffer). A recurrence update over another rank
  that reduces ``r`` accumulates the same way (``TS[m1+1] = BX[m1,m0,p]`` over ``p``: one element).

Footprints are sympy expressions in elements (multiply by the word size for bytes), in the cascade's
shape symbols plus one tile symbol per *parallel* rank (a rank every traversal iterates over and no
Einsum reduces: ``p`` of attention, tile ``P1``). Partitioned dimensions collapse to the full rank
(``M1*M0 = M``), so a footprint that does not mention ``M`` is independent of the sequence length.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from attnsim.einsum_ir.model import Cascade, Einsum, TensorRef, shape_symbol
from attnsim.einsum_ir.passes import TRAVERSING, PassAnalysis, iterates_over


@dataclass(frozen=True)
class LiveTensor:
    """One tensor that must stay live across (or throughout) the traversal of the analysed rank.

    ``footprint`` is the minimum live footprint in elements. For ``reread`` tensors,
    ``reread_traffic`` is the extra DRAM traffic in elements of reading it again in every later pass
    ((passes reading it - 1) x the whole tensor) and ``spill_write`` the traffic of writing it out once
    if it is an intermediate; both are None for other kinds.
    """

    tensor: str
    kind: str
    footprint: sympy.Expr
    passes: tuple[int, ...]
    reread_traffic: sympy.Expr | None = None
    spill_write: sympy.Expr | None = None

    def to_json(self) -> dict:
        return {
            "tensor": self.tensor,
            "kind": self.kind,
            "footprint": str(self.footprint),
            "passes": list(self.passes),
            "reread_traffic": None if self.reread_traffic is None else str(self.reread_traffic),
            "spill_write": None if self.spill_write is None else str(self.spill_write),
        }


@dataclass(frozen=True)
class LiveBounds:
    """Every live tensor, the tile symbols used, and the total minimum footprint in elements."""

    live: tuple[LiveTensor, ...]
    tiles: dict[str, sympy.Symbol]
    total: sympy.Expr

    def depends_on(self, shape: str) -> bool:
        """True when the total live footprint grows with the shape symbol ``shape``."""
        return shape_symbol(shape) in self.total.free_symbols

    def to_json(self) -> list[dict]:
        return [entry.to_json() for entry in self.live]


def parallel_ranks(analysis: PassAnalysis) -> list[str]:
    """Rank variables outside the analysed family that every computing traversal iterates over and no
    Einsum reduces (they can be tiled freely: the fusion granularity, e.g. ``p`` -> ``P1``).

    Views (an Einsum that only re-indexes one tensor, such as the partition ``BK = K[e, m1*M0+m0]``)
    compute nothing and do not count.
    """
    cascade = analysis.cascade
    traversing = [e for e in cascade.einsums
                  if analysis.coverage[e.name] == TRAVERSING and not _is_view(e)]
    reduced = set().union(*(e.reduced_ranks for e in cascade.einsums))
    common = set.intersection(*(set(e.iteration_ranks) for e in traversing))
    return sorted(common - reduced - set(analysis.family.members))


def live_bounds(analysis: PassAnalysis) -> LiveBounds:
    """The minimum live footprints implied by ``analysis`` (see the module docstring)."""
    cascade = analysis.cascade
    tiles = _tile_symbols(cascade, parallel_ranks(analysis))
    live: list[LiveTensor] = []

    for tensor, passes in analysis.reads_by_pass.items():
        if len(passes) < 2:
            continue
        full = _size(cascade, tensor, {})
        fiber = _size(cascade, tensor, tiles)
        intermediate = tensor not in cascade.inputs
        live.append(LiveTensor(tensor, "reread", fiber, tuple(passes),
                               reread_traffic=sympy.simplify((len(passes) - 1) * full),
                               spill_write=full if intermediate else sympy.Integer(0)))

    for tensor, (_, rank) in cascade.iterative_dims.items():
        if rank in analysis.family.members:
            footprint = _size(cascade, tensor, tiles)
            readers = sorted({analysis.einsum_pass[e.name] for e in cascade.einsums
                              if any(r.tensor == tensor for r in e.inputs())})
            live.append(LiveTensor(tensor, "state", footprint, tuple(readers)))

    reused: dict[str, set[int]] = {}
    for einsum in cascade.einsums:
        if analysis.coverage[einsum.name] != TRAVERSING:
            continue
        for ref in einsum.inputs():
            if not ref.ranks & analysis.family.members and not iterates_over(cascade, analysis.family, ref.tensor):
                reused.setdefault(ref.tensor, set()).add(analysis.einsum_pass[einsum.name])
    for tensor, passes in reused.items():
        footprint = _size(cascade, tensor, tiles)
        live.append(LiveTensor(tensor, "reused", footprint, tuple(sorted(passes))))

    counted = {entry.tensor for entry in live}
    for einsum in cascade.einsums:
        if analysis.coverage[einsum.name] != TRAVERSING or not einsum.reduced_ranks & analysis.family.members:
            continue
        if einsum.output.ranks & analysis.family.members:
            continue
        if einsum.output.tensor in counted:
            continue  # the same buffer is already live as a reused summary or a state (every
            # recurrence over the analysed rank, and any that reads its previous iterate)
        footprint = _size(cascade, einsum.output.tensor, tiles)
        live.append(LiveTensor(einsum.output.tensor, "partial", footprint, (analysis.einsum_pass[einsum.name],)))
        counted.add(einsum.output.tensor)

    total = sympy.simplify(sum((entry.footprint for entry in live), sympy.Integer(0)))
    return LiveBounds(live=tuple(live), tiles=tiles, total=total)


def _is_view(einsum: Einsum) -> bool:
    """True for an Einsum that copies one tensor under new indices (no map, no reduction)."""
    return isinstance(einsum.expr, TensorRef) and not einsum.reduced_ranks


def _tile_symbols(cascade: Cascade, ranks: list[str]) -> dict[str, sympy.Symbol]:
    """One tile symbol per parallel rank: its shape with suffix 1 (P -> P1), unless that name is
    already a shape of the cascade (then suffix _tile)."""
    taken = {s.name for s in cascade.ranks.values()} | {s.name for s in cascade.derived_shapes}
    tiles = {}
    for rank in ranks:
        name = f"{cascade.ranks[rank].name}1"
        tiles[rank] = shape_symbol(name if name not in taken else f"{cascade.ranks[rank].name}_tile")
    return tiles


def _size(cascade: Cascade, tensor: str, tiles: dict[str, sympy.Symbol]) -> sympy.Expr:
    """Elements of ``tensor`` with parallel dimensions cut to their tile and every other dimension
    whole; the iterative dimension counts one iterate. (A dimension of the analysed rank is kept whole
    for every kind: a state such as a running sum per ``m0`` of a tile, ``RS[m1, m0, p]``, holds all
    ``M0`` of its values across the tiles, and a summary or partial result has no such dimension.)"""
    shapes = cascade.tensor_shapes.get(tensor, ())
    iterative_dim = cascade.iterative_dims.get(tensor, (None, None))[0]
    tile_by_shape = {cascade.ranks[rank]: symbol for rank, symbol in tiles.items()}
    size: sympy.Expr = sympy.Integer(1)
    for dim, extent in enumerate(shapes):
        if dim == iterative_dim:
            continue
        size *= tile_by_shape.get(extent, extent)
    derived = {symbol: expr for symbol, expr in cascade.derived_shapes.items()}
    for _ in range(len(derived) + 1):
        size = size.subs(derived)
    return sympy.simplify(size)
