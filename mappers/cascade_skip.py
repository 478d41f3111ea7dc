"""Tiles a cascade's index filters leave empty are not run (mapping key ``skip_empty_tiles``): a sliding
window or a neighbourhood mask visits only the key tiles that intersect its band, on the spatial 1-pass
path (:mod:`mappers.cascade_mapper`). Nothing here names an Einsum or a rank.

Which tiles: the index filters (affine comparisons of rank variables, e.g. ``m1*M0 + m0 <= p and
m1*M0 + m0 + W > p``) of the loop body's first filtered Einsum in program order -- the masked scores.
A (group, iteration) tile is skipped when one of those comparisons is false at every point of the
tile's box: the group's block of the outer rank, the iterative rank at the iteration's value, every
other rank over the iteration's block (its tile times the inner loops). An affine function's extremes
over a box are at its corners, so the test is exact for one comparison and for comparisons of one
linear form (a band: both bounds are on ``p - key``), and never skips a tile with a point in it
otherwise.

What skipping assumes (hence opt-in, per mapping): on a tile where the masked scores have no point the
rest of the loop body is the identity -- a reduction over no points leaves its running value as it was
(the running max, the normaliser and the numerator of the softmax recurrence).

Per group the visited iterations are counted in closed form (:func:`visited_iterations`: each
comparison bounds the iterative rank's value from one side); the groups of one head are then nested as
runs of groups with the same count, each a nest of :func:`mappers.cascade_mapper` ``_nest``'s shape,
and the head repeated over batch x heads.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
import sympy

from attnsim.archsim.schedule import Block
from attnsim.einsum_ir.model import Filter
from attnsim.mappers.cascade_plan import Plan
from attnsim.mappers.errors import MappingError

_FLIP = {"<=": ">=", "<": ">", ">=": "<=", ">": "<"}


def masked_filters(plan: Plan) -> tuple[Filter, ...]:
    """The index filters of the first body Einsum (program order) that has any; () when none has."""
    for name in plan.order:
        filters = plan.work.einsums[name].einsum.index_filters
        if filters:
            return filters
    return ()


def _affine(expr: sympy.Expr, sizes: Mapping[str, int], where: str) -> tuple[dict[str, int], int]:
    """(integer coefficient per rank variable, constant) of an affine ``expr`` at ``sizes``."""
    known = {s: sizes[s.name] for s in expr.free_symbols if s.name in sizes}
    value = sympy.expand(expr.subs(known))
    coefficients: dict[str, int] = {}
    for symbol in value.free_symbols:
        coefficient = value.coeff(symbol)
        if coefficient.free_symbols or not coefficient.is_integer:
            raise MappingError(f"{where}: skip_empty_tiles: the filter term {expr} is not affine with whole "
                               f"coefficients in the rank variables")
        coefficients[symbol.name] = int(coefficient)
    constant = value.subs({s: 0 for s in value.free_symbols})
    if not constant.is_integer:
        raise MappingError(f"{where}: skip_empty_tiles: the filter term {expr} has a fractional constant")
    return coefficients, int(constant)


def visited_iterations(plan: Plan) -> np.ndarray:
    """Per group of one head (the outer loop's blocks, in order), the iterations of the iterative loop
    whose tile the masked scores' index filters leave a point in (module docstring)."""
    where = plan.mapping.origin
    if len(plan.outer) != 1:
        raise MappingError(f"{where}: skip_empty_tiles: expected exactly one dram loop outside the iterative "
                           f"loop (the query blocks), got {len(plan.outer)}")
    if plan.tail is not None or plan.last_iteration_tile is not None:
        raise MappingError(f"{where}: skip_empty_tiles: the loops must divide their ranks (seq "
                           f"{plan.work.sizes.get('M')} leaves a partial tile); expected a multiple of the tiles")
    (outer_rank, groups), = plan.outer.items()
    iterative = plan.iterative_rank
    extents = plan.work.extents
    group_index = np.arange(groups, dtype=np.int64)
    low = np.zeros(groups, dtype=np.int64)
    high = np.full(groups, plan.iterations - 1, dtype=np.int64)
    for condition in masked_filters(plan):
        op = condition.op
        coefficients, constant = _affine(condition.lhs - condition.rhs, plan.work.sizes, where)
        if op not in _FLIP:   # == / != : no one-sided bound; conservatively visit every tile
            continue
        if op in (">=", ">"):   # g >= 0  <=>  -g <= 0: every comparison as  g <= 0 (or < 0)
            coefficients = {r: -a for r, a in coefficients.items()}
            constant = -constant
            op = _FLIP[op]
        # a point with g <= 0 exists in the box  <=>  min over the box of g <= 0 (integers: < 0 is <= -1)
        bound = -constant - (1 if op == "<" else 0)     # alpha * i + rest <= bound
        rest = np.zeros(groups, dtype=np.int64)
        alpha = 0
        for rank, a in coefficients.items():
            if rank == iterative:
                alpha = a
                continue
            if rank == outer_rank:
                block = plan.block_tile[rank]
                first, last = group_index * block, np.minimum((group_index + 1) * block, extents[rank]) - 1
            else:   # an iteration covers its inner blocks: the rank over the block's extent
                first = np.zeros(groups, dtype=np.int64)
                last = np.full(groups, plan.block_tile[rank] - 1, dtype=np.int64)
            rest += a * (first if a > 0 else last)
        t = bound - rest                                # alpha * i <= t
        if alpha > 0:
            high = np.minimum(high, np.floor_divide(t, alpha))
        elif alpha < 0:
            low = np.maximum(low, -np.floor_divide(t, -alpha))
        else:
            high = np.where(t >= 0, high, -1)
    return np.maximum(0, high - low + 1)


def skipping_nest(plan: Plan, builder: object, nest: Callable[[Plan, object], tuple[Block, ...]]
                  ) -> tuple[tuple[Block, ...], int]:
    """(the schedule's blocks, iterations run per head) with the empty tiles skipped: one head's groups
    as runs of equal visited counts, each run a ``nest`` of that many iterations, repeated over the
    batch x heads. A run's nest starts with its own prologue (its first loads): at a change of count
    the next group's Q block and first K/V tile are loaded without the prefetch overlap."""
    counts = visited_iterations(plan)
    runs: list[list[int]] = []
    for count in counts.tolist():
        if runs and runs[-1][0] == count:
            runs[-1][1] += 1
        else:
            runs.append([count, 1])
    heads = plan.workload.batch * plan.workload.heads
    head: list[Block] = []
    for count, groups in runs:
        if count == 0:   # no tile of these query blocks is visited: nothing to run
            continue
        sub = dataclasses.replace(plan, iterations=count, groups=groups)
        head.extend(nest(sub, builder))
    return (Block(tuple(head), heads, "heads"),), int(counts.sum())


__all__ = ["masked_filters", "skipping_nest", "visited_iterations"]
