"""Index-filter masks (causal attention) on the spatial path: which tiles a cascade's filters leave empty.

A cascade masks by an affine filter on rank variables (``where m1*M0 + m0 <= p``: key index <= query
index). A tile of a nest covers a box of rank values: per rank, the values its loop indices select
(``sum idx_l x stride_l`` plus the spatial extent; a rank without loops its whole extent). A filter
``lhs op rhs`` is normalised to ``g = rhs - lhs >= 0`` (``>`` for a strict one; ``>=`` and ``>`` the
other way round), and an affine ``g`` takes its maximum over a box at a corner: the filter holds at some
point of the box iff that maximum is ``>= 0`` (``> 0``). An Einsum is *empty* in a box when one of its
filters holds nowhere in it; a tile in which every filtered Einsum is empty is *masked*. The cascade
defines what a masked tile computes; for the 1-pass softmax recurrence it is the identity (LM = -inf, RM
unchanged, PRM = 1, SLD = SLNV = 0: ``specs/cascades/attention-1pass-causal.yaml``), so a mapping may
skip it (``masking.masked_tiles: skip``, the default) -- no operation, no K/V tile load. A partly masked
tile (the diagonal) is costed in full: the 2D array clocks its rows and columns as one, and its PEs
compute every score before the mask selects it (docs/mapping.md, "Causal, GQA and decode").

GQA packing (``pack_gqa: always``) orders the query rank position-major: row ``r`` of the packed rank
(the rank of the workload's query length ``P``) sits at query position ``r // pack``; the box of that rank
is mapped to positions before the filter is evaluated.

Nothing here names an Einsum or a rank: the filters, ranks and loops come from the cascade and mapping.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from attnsim.einsum_ir.model import rank_symbol
from attnsim.mappers.cascade_work import CascadeWork
from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import Workload

Box = Mapping[str, tuple[int, int]]
"""Rank -> (lowest, highest) value a tile covers (inclusive)."""


@dataclass(frozen=True)
class AffineCondition:
    """One filter as ``sum(coefficients[r] x r) + constant >= 0`` (``> 0`` when ``strict``), rank values."""

    coefficients: tuple[tuple[str, int], ...]
    constant: int
    strict: bool

    def holds_somewhere(self, box: Box) -> bool:
        """Whether the condition holds at some point of ``box`` (its maximum there, at a corner)."""
        best = self.constant
        for rank, c in self.coefficients:
            low, high = box[rank]
            best += c * (high if c > 0 else low)
        return best > 0 if self.strict else best >= 0


def _condition(lhs: sympy.Expr, op: str, rhs: sympy.Expr, sizes: Mapping[str, int], where: str
               ) -> AffineCondition:
    if op in ("<=", "<"):
        g, strict = rhs - lhs, op == "<"
    elif op in (">=", ">"):
        g, strict = lhs - rhs, op == ">"
    else:
        raise MappingError(f"{where}: filter '{lhs} {op} {rhs}': only <, <=, >, >= filters can mask whole tiles")
    symbols = {s: sizes[s.name] for s in g.free_symbols if s.name in sizes and s != rank_symbol(s.name)}
    g = sympy.expand(g.subs(symbols))
    ranks = [s for s in g.free_symbols]
    poly = sympy.Poly(g, *ranks) if ranks else None
    if poly is not None and poly.total_degree() > 1:
        raise MappingError(f"{where}: filter '{lhs} {op} {rhs}' is not affine in the rank variables")
    coefficients = []
    for s in ranks:
        c = g.coeff(s)
        if not c.is_integer:
            raise MappingError(f"{where}: filter '{lhs} {op} {rhs}': coefficient of {s} is not a whole number "
                               f"at these sizes ({c})")
        coefficients.append((s.name, int(c)))
    constant = g.subs({s: 0 for s in ranks})
    if not constant.is_integer:
        raise MappingError(f"{where}: filter '{lhs} {op} {rhs}': its constant term is not a whole number ({constant})")
    return AffineCondition(tuple(sorted(coefficients)), int(constant), strict)


@dataclass(frozen=True)
class Mask:
    """The filtered Einsums of a nest's body and their filters as affine conditions."""

    conditions: tuple[tuple[str, tuple[AffineCondition, ...]], ...]
    query_rank: str | None
    pack: int

    def masked(self, box: Box) -> bool:
        """Whether every filtered Einsum is empty in ``box`` (rank values before GQA packing)."""
        if self.pack > 1 and self.query_rank in box:
            low, high = box[self.query_rank]
            box = {**box, self.query_rank: (low // self.pack, high // self.pack)}
        return all(any(not c.holds_somewhere(box) for c in conditions) for _, conditions in self.conditions)


def body_mask(work: CascadeWork, names: Sequence[str], pack: int, where: str) -> Mask | None:
    """The mask of the Einsums ``names`` (None when none of them has an index filter)."""
    conditions = []
    for name in names:
        filters = work.einsums[name].einsum.index_filters
        if filters:
            conditions.append((name, tuple(_condition(f.lhs, f.op, f.rhs, work.sizes, f"{where} (Einsum {name})")
                                           for f in filters)))
    if not conditions:
        return None
    query = next((r for r, s in work.cascade.ranks.items() if s.name == "P"), None)
    return Mask(tuple(conditions), query, pack)


def einsum_conditions(work: CascadeWork, name: str, where: str) -> tuple[AffineCondition, ...]:
    """The affine conditions that restrict Einsum ``name``: its own index filters, or -- for an Einsum
    without one that iterates over exactly the ranks of a tensor a filtered Einsum writes (a max or sum
    of the masked scores, e.g. ``GM[p] = QK[m,p] :: max``) -- its producer's (an absent point adds
    nothing to a reduction, so the reduction visits only the live ones). Cached per work and Einsum (the
    mapper asks for every Einsum of every group at every point)."""
    cache = work.__dict__.setdefault("_einsum_conditions", {})
    if name not in cache:
        cache[name] = _einsum_conditions(work, name, where)
    return cache[name]


def _einsum_conditions(work: CascadeWork, name: str, where: str) -> tuple[AffineCondition, ...]:
    einsum = work.einsums[name]
    own = einsum.einsum.index_filters
    if own:
        return tuple(_condition(f.lhs, f.op, f.rhs, work.sizes, f"{where} (Einsum {name})") for f in own)
    for ref in einsum.reads:
        producer = next((w for w in work.compute if w.write.tensor == ref.tensor), None)
        if producer is not None and producer.einsum.index_filters and \
                set(producer.write.ranks) == set(einsum.iteration_ranks):
            return einsum_conditions(work, producer.name, where)
    return ()


def live_cell_fraction(conditions: Sequence[AffineCondition], cells: Mapping[str, tuple[int, int]],
                       query_rank: str | None = None, pack: int = 1) -> Fraction:
    """The fraction of the cells of a grid in which every condition holds somewhere (1 without
    conditions). ``cells``: rank -> (cell size, extent) for the ranks the conditions use (the last cell
    of a rank may be partial). One condition over at most two ranks is counted exactly in
    O(n log n): its maximum over a cell is ``a_i + b_j``, separable per rank; anything else is refused
    by returning 1 (costed in full). ``query_rank`` rows are at position ``row // pack`` (GQA packing)."""
    if not conditions:
        return Fraction(1)
    if len(conditions) > 1 or len(conditions[0].coefficients) > 2:
        return Fraction(1)
    condition = conditions[0]
    parts = []
    for rank, c in condition.coefficients:
        size, extent = cells[rank]
        starts = np.arange(0, extent, size, dtype=np.int64)
        ends = np.minimum(starts + size - 1, extent - 1)
        if rank == query_rank and pack > 1:
            starts, ends = starts // pack, ends // pack
        parts.append(c * (ends if c > 0 else starts))
    if not parts:
        return Fraction(1) if condition.holds_somewhere({}) else Fraction(0)
    first = parts[0] + condition.constant
    if len(parts) == 1:
        live = int(np.count_nonzero(first > 0 if condition.strict else first >= 0))
        return Fraction(live, len(first))
    second = np.sort(parts[1])
    # per cell i of the first rank: cells j of the second with first[i] + second[j] >= 0 (> 0 when strict)
    side = "right" if condition.strict else "left"
    live = int((len(second) - np.searchsorted(second, -first, side=side)).sum())
    return Fraction(live, len(first) * len(second))


def is_masked_cascade(work: CascadeWork) -> bool:
    """Whether some computing Einsum of the cascade has an index filter (a causal or banded mask)."""
    return any(w.einsum.index_filters for w in work.compute)


def check_masked_shape(work: CascadeWork, workload: Workload, seq: int, where: str) -> None:
    """MappingError (one line) for a mask the point cannot honour: a cascade whose filters compare key and
    query indices needs the queries to be the keys (``q_len = kv_len``, prefill); a causal workload run
    over more than one query needs a masked cascade (else the mask would be silently dropped); a sliding
    window is not simulated on this path."""
    shape = workload.attention_shape(seq)
    if workload.sliding_window is not None:
        raise MappingError(f"{workload.origin}: sliding_window: not simulated on the spatial path yet (issue #15); "
                           "expected no sliding window")
    masked = is_masked_cascade(work)
    if masked and shape.q_len != shape.kv_len:
        raise MappingError(f"{where}: the cascade {work.cascade.name} masks by key index <= query index, which "
                           f"needs q_len = kv_len; this point has q_len {shape.q_len}, kv_len {shape.kv_len} "
                           "(decode needs no mask: its one query sees every key; use the unmasked cascade)")
    if shape.causal and shape.q_len > 1 and not masked:
        raise MappingError(f"{where}: the workload {workload.name} is causal but the cascade {work.cascade.name} "
                           "has no mask; expected a causal cascade (e.g. attention-1pass-causal, "
                           "attention-3pass-causal)")


def rank_box(extents: Mapping[str, int], ranges: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """``ranges`` completed with every other rank at its whole extent, clipped to the extents."""
    box = {rank: (0, extent - 1) for rank, extent in extents.items()}
    for rank, (low, high) in ranges.items():
        box[rank] = (low, min(high, extents[rank] - 1))
    return box


__all__ = ["AffineCondition", "Box", "Mask", "body_mask", "check_masked_shape", "einsum_conditions", "is_masked_cascade", "live_cell_fraction", "rank_box"]
