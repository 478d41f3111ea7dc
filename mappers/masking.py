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


def position_sizes(work: CascadeWork, pack: int) -> Mapping[str, int]:
    """The sizes a filter is evaluated at: the work's, with the query length ``P`` in positions (``P /
    pack`` when ``pack`` query heads share the query rank, :func:`Mask.masked`), so that an end-aligned
    filter's offset ``M - P`` is the context before the queries."""
    if pack > 1 and "P" in work.sizes:
        return {**work.sizes, "P": work.sizes["P"] // pack}
    return work.sizes


def body_mask(work: CascadeWork, names: Sequence[str], pack: int, where: str) -> Mask | None:
    """The mask of the Einsums ``names`` (None when none of them has an index filter)."""
    conditions = []
    sizes = position_sizes(work, pack)
    for name in names:
        filters = work.einsums[name].einsum.index_filters
        if filters:
            conditions.append((name, tuple(_condition(f.lhs, f.op, f.rhs, sizes, f"{where} (Einsum {name})")
                                           for f in filters)))
    if not conditions:
        return None
    query = next((r for r, s in work.cascade.ranks.items() if s.name == "P"), None)
    return Mask(tuple(conditions), query, pack)


def einsum_conditions(work: CascadeWork, name: str, where: str, pack: int = 1) -> tuple[AffineCondition, ...]:
    """The affine conditions that restrict Einsum ``name``: its own index filters, or -- for an Einsum
    without one that iterates over exactly the ranks of a tensor a filtered Einsum writes (a max or sum
    of the masked scores, e.g. ``GM[p] = QK[m,p] :: max``) -- its producer's (an absent point adds
    nothing to a reduction, so the reduction visits only the live ones). Cached per work and Einsum (the
    mapper asks for every Einsum of every group at every point)."""
    cache = work.__dict__.setdefault("_einsum_conditions", {})
    if (name, pack) not in cache:
        cache[(name, pack)] = _einsum_conditions(work, name, where, pack)
    return cache[(name, pack)]


def _einsum_conditions(work: CascadeWork, name: str, where: str, pack: int) -> tuple[AffineCondition, ...]:
    einsum = work.einsums[name]
    own = einsum.einsum.index_filters
    if own:
        sizes = position_sizes(work, pack)
        return tuple(_condition(f.lhs, f.op, f.rhs, sizes, f"{where} (Einsum {name})") for f in own)
    for ref in einsum.reads:
        producer = next((w for w in work.compute if w.write.tensor == ref.tensor), None)
        if producer is not None and producer.einsum.index_filters and \
                set(producer.write.ranks) == set(einsum.iteration_ranks):
            return einsum_conditions(work, producer.name, where, pack)
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
    if len(conditions) > 1:
        return _band_fraction(conditions, cells, query_rank, pack)
    if len(conditions[0].coefficients) > 2:
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


def _band_fraction(conditions: Sequence[AffineCondition], cells: Mapping[str, tuple[int, int]],
                   query_rank: str | None, pack: int) -> Fraction:
    """:func:`live_cell_fraction` of several conditions (a band: the causal ``m <= p + M - P`` and the
    window's ``m + W > p + M - P``), each holding somewhere in a cell, over at most two ranks in all.
    Per cell ``i`` of the first rank, the cells ``j`` of the second in which condition ``k`` holds
    somewhere are ``a_k[i] + b_k[j] >= 0`` (``> 0``), ``b_k`` monotone in ``j`` (a corner of the cell,
    the starts or ends, times the coefficient): a prefix or a suffix of the cells, found by bisection;
    the live cells are their intersection, O(n log n). For conditions on one linear form of the ranks
    (a band) holding somewhere each is holding somewhere together (the form takes every whole value
    between its minimum and maximum over a cell), so this is the exact count of the live cells; other
    combinations are refused by returning 1 (costed in full)."""
    ranks = sorted({r for c in conditions for r, _ in c.coefficients})
    if len(ranks) > 2 or any(len(c.coefficients) != len(ranks) for c in conditions):
        return Fraction(1)
    bounds = {}
    for rank in ranks:
        size, extent = cells[rank]
        starts = np.arange(0, extent, size, dtype=np.int64)
        ends = np.minimum(starts + size - 1, extent - 1)
        if rank == query_rank and pack > 1:
            starts, ends = starts // pack, ends // pack
        bounds[rank] = (starts, ends)

    def part(c: AffineCondition, rank: str) -> np.ndarray:
        coefficient = dict(c.coefficients)[rank]
        starts, ends = bounds[rank]
        return coefficient * (ends if coefficient > 0 else starts)

    if len(ranks) == 1:
        live = np.ones(len(bounds[ranks[0]][0]), dtype=bool)
        for c in conditions:
            g = part(c, ranks[0]) + c.constant
            live &= g > 0 if c.strict else g >= 0
        return Fraction(int(np.count_nonzero(live)), len(live))
    n_first, n_second = len(bounds[ranks[0]][0]), len(bounds[ranks[1]][0])
    low = np.zeros(n_first, dtype=np.int64)           # live cells j of the second rank: low <= j < high
    high = np.full(n_first, n_second, dtype=np.int64)
    for c in conditions:
        a = part(c, ranks[0]) + c.constant
        b = part(c, ranks[1])
        # holds at (i, j) iff b[j] >= -a[i] (> when strict); b is monotone in j
        if np.all(np.diff(b) >= 0):
            side = "right" if c.strict else "left"
            low = np.maximum(low, np.searchsorted(b, -a, side=side))
        elif np.all(np.diff(b) <= 0):
            reverse = b[::-1]
            side = "right" if c.strict else "left"
            count = n_second - np.searchsorted(reverse, -a, side=side)   # the first `count` cells hold
            high = np.minimum(high, count)
        else:
            return Fraction(1)
    live = int(np.maximum(high - low, 0).sum())
    return Fraction(live, n_first * n_second)


def is_masked_cascade(work: CascadeWork) -> bool:
    """Whether some computing Einsum of the cascade has an index filter (a causal or banded mask)."""
    return any(w.einsum.index_filters for w in work.compute)


def check_masked_shape(work: CascadeWork, workload: Workload, seq: int, where: str) -> None:
    """MappingError (one line) for a mask the point cannot honour: a cascade whose filters compare key and
    query indices without the end alignment (``m <= p + M - P``: the ``P`` queries are the last ``P`` of
    the ``M`` positions) needs ``q_len = kv_len``; a causal workload run over more than one query needs a
    masked cascade (else the mask would be silently dropped); a sliding window shorter than the KV length
    needs a causal workload and a cascade with the window size ``W`` (which the workload then sets:
    :func:`mappers.cascade_plan.resolve_sizes_with_remainders`)."""
    shape = workload.attention_shape(seq)
    masked = is_masked_cascade(work)
    window = shape.sliding_window
    if window is not None and window < shape.kv_len:
        if not shape.causal:
            raise MappingError(f"{workload.origin}: sliding_window: a window over a non-causal workload is not "
                               "simulated on the spatial path; expected causal: true")
        if not masked or "W" not in work.sizes:
            raise MappingError(f"{where}: sliding_window: the workload {workload.name} has a window of {window} < "
                               f"the KV length {shape.kv_len} but the cascade {work.cascade.name} has no window size "
                               "W; expected a window cascade (e.g. window-attention, window-attention-3pass)")
    if masked and shape.q_len != shape.kv_len and not _end_aligned(work):
        raise MappingError(f"{where}: the cascade {work.cascade.name} masks by key index <= query index, which "
                           f"needs q_len = kv_len; this point has q_len {shape.q_len}, kv_len {shape.kv_len} "
                           "(expected an end-aligned filter, m <= p + M - P, or the unmasked cascade)")
    if shape.causal and shape.q_len > 1 and not masked:
        raise MappingError(f"{where}: the workload {workload.name} is causal but the cascade {work.cascade.name} "
                           "has no mask; expected a causal cascade (e.g. attention-1pass-causal, "
                           "attention-3pass-causal)")


def _end_aligned(work: CascadeWork) -> bool:
    """Whether every index filter of the cascade names both the KV length and the query length (``M`` and
    ``P``: the end-aligned form ``m <= p + M - P``), so that it holds for any ``q_len <= kv_len``."""
    for w in work.compute:
        for f in w.einsum.index_filters:
            names = {s.name for s in (f.lhs - f.rhs).free_symbols}
            if not {"M", "P"} <= names:
                return False
    return True


def rank_box(extents: Mapping[str, int], ranges: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """``ranges`` completed with every other rank at its whole extent, clipped to the extents."""
    box = {rank: (0, extent - 1) for rank, extent in extents.items()}
    for rank, (low, high) in ranges.items():
        box[rank] = (low, min(high, extents[rank] - 1))
    return box


__all__ = ["AffineCondition", "Box", "Mask", "body_mask", "position_sizes", "check_masked_shape", "einsum_conditions", "is_masked_cascade", "live_cell_fraction", "rank_box"]
