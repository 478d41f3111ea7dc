"""Pass analysis: how many passes a cascade must make over the fibers of one rank (FuseMax §III).

A *pass* over a rank ``r`` is one traversal of every element of its fibers. A read-read dependency
forces a new pass: an Einsum that traverses ``r`` element by element cannot start until a value that
summarises a whole ``r``-fiber (a full reduction over ``r``) is known, and that summary in turn needed a
traversal of the same fiber. This module finds those dependencies on the cascade's dependency graph.

The model of time
-----------------
Every Einsum gets a *time* on a half-integer axis: ``k`` means "during pass k" (streamed along the
traversal of ``r``), ``k + 0.5`` means "after pass k, before pass k+1", ``0`` means "before any pass"
(it touches no data that depends on ``r``).

Einsums are classified by how their iteration space covers ``r``:

- *traversing*: it iterates over every element of ``r``: a rank variable whose shape is ``r``, or all
  the parts of a partition of ``r`` (``m1`` and ``m0`` of ``K[e, m1*M0 + m0]``);
- *coarse*: it iterates over some parts only (``m1`` alone: one step per tile, cheap);
- *free*: it does not iterate over ``r`` at all (``AV[f,p] = SNV[f,p] / SD[p]``).

A tensor is a *stream* if it still has a dimension indexed by part of ``r`` (its elements appear one
tile at a time as ``r`` is traversed) and a *summary* otherwise (it is complete only when the Einsums
producing it have seen the whole fiber). Reading the final iterate of an iterative tensor
(``RNV[f,M1,p]``) is a summary read; reading the current or previous iterate (``RM[m1+1,p]``,
``RM[m1,p]``) is a stream read. Inputs are available from the start.

A traversing Einsum runs in pass ``max(1, need)`` where a stream produced at time ``t`` is needed in
pass ``ceil(t)`` and a summary available at time ``a`` in pass ``floor(a) + 1``. Coarse and free
Einsums run as soon as their inputs are ready (time = max of the producers' times and the summaries'
availability). A summary produced at an integer time ``k`` is available at ``k + 0.5``; one produced
between passes is available at once. The Einsums of an iterative recurrence (a strongly connected
component of the graph, legal only through an iterative rank) share one time.

The number of passes is the largest pass of a traversing Einsum. This reproduces the paper's counts
(Cascade 1: 2, Cascades 2 and 3: 1; attention 3-pass: 3, with deferred division: 2, 2-pass: 2,
1-pass: 1) from the graph alone, and works on any cascade the parser accepts, or says why not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx
import sympy

from attnsim.einsum_ir.errors import CascadeError, cascade_error
from attnsim.einsum_ir.model import Cascade, Einsum, TensorRef, shape_symbol


class AnalysisError(CascadeError):
    """The cascade is outside what the pass analysis can analyse (the message says why)."""


TRAVERSING, COARSE, FREE = "traversing", "coarse", "free"


@dataclass(frozen=True)
class RankFamily:
    """The rank variables that index a rank: full-resolution ones and the parts of its partitions."""

    shape: sympy.Symbol
    full: frozenset[str]
    partitions: tuple[frozenset[str], ...]

    @property
    def members(self) -> frozenset[str]:
        """Every rank variable that indexes (part of) the rank."""
        return self.full.union(*self.partitions) if self.partitions else self.full

    def coverage(self, ranks: frozenset[str] | set[str]) -> str:
        """How an iteration space over ``ranks`` covers the rank: traversing, coarse or free."""
        ranks = frozenset(ranks)
        if ranks & self.full or any(part <= ranks for part in self.partitions):
            return TRAVERSING
        return COARSE if ranks & self.members else FREE


@dataclass
class PassAnalysis:
    """The result of :func:`analyze_passes`.

    ``einsum_pass`` maps each Einsum name to its 1-based pass; ``coverage`` to how it covers the rank;
    ``time`` to its position on the half-integer time axis (see the module docstring);
    ``fusable_groups`` lists the Einsums of each pass in cascade order; ``reads_by_pass`` maps each
    tensor that traversing Einsums read element by element to the sorted passes that read it.
    """

    cascade: Cascade
    rank: str
    family: RankFamily
    passes: int
    einsum_pass: dict[str, int]
    coverage: dict[str, str]
    time: dict[str, float]
    fusable_groups: list[list[str]]
    reads_by_pass: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The pass part of ``attnsim passes --json`` (the live footprints are added by bounds)."""
        return {
            "cascade": self.cascade.name,
            "rank": self.rank,
            "passes": self.passes,
            "einsum_pass": dict(self.einsum_pass),
            "fusable_groups": [list(g) for g in self.fusable_groups],
        }


def default_rank(cascade: Cascade) -> str:
    """The rank to analyse when none is given: the cascade's ``pass_rank``, else ``M``, else the only
    rank that some Einsum reduces completely."""
    if cascade.meta.get("pass_rank"):
        return str(cascade.meta["pass_rank"])
    shapes = {s.name for s in cascade.ranks.values()}
    if "M" in shapes:
        return "M"
    reduced = sorted({cascade.ranks[r].name for e in cascade.einsums for r in e.reduced_ranks})
    if len(reduced) == 1:
        return reduced[0]
    raise AnalysisError(f"{cascade.source}: cannot choose the rank to analyse at '{cascade.name}'; "
                        f"expected --rank with one of {', '.join(sorted(shapes))}")


def rank_family(cascade: Cascade, rank: str) -> RankFamily:
    """The rank variables of ``rank`` (a shape symbol name such as ``M``) in ``cascade``."""
    shape = shape_symbol(rank)
    shapes = {s.name for s in cascade.ranks.values()}
    if rank not in shapes:
        raise AnalysisError(f"{cascade.source}: rank '{rank}' is not a rank shape of cascade "
                            f"{cascade.name}; expected one of {', '.join(sorted(shapes))}")
    full = frozenset(r for r, s in cascade.ranks.items() if s == shape)
    for einsum in cascade.einsums:
        for ref in (einsum.output, *einsum.inputs()):
            for dim, index in enumerate(ref.indices):
                extent = _dim_extent(cascade, ref.tensor, dim)
                if (len(index.ranks) > 1 and index.ranks & full and extent != shape
                        and extent in set(cascade.ranks.values())):
                    raise AnalysisError(
                        f"{cascade.source}:{einsum.line}: rank '{rank}' is one part of the partition "
                        f"'{index}' of {extent} at '{ref}'; expected the partitioned rank {extent} "
                        f"(its passes count the traversals of every element)")
    partitions: set[frozenset[str]] = set()
    for einsum in cascade.einsums:
        for ref in (einsum.output, *einsum.inputs()):
            for dim, index in enumerate(ref.indices):
                if _dim_extent(cascade, ref.tensor, dim) != shape or index.rank_var is not None:
                    continue
                if len(index.ranks) > 1:
                    partitions.add(frozenset(index.ranks))
    return RankFamily(shape=shape, full=full, partitions=tuple(sorted(partitions, key=sorted)))


def analyze_passes(cascade: Cascade, rank: str | None = None) -> PassAnalysis:
    """Count the passes ``cascade`` must make over the fibers of ``rank`` (default: :func:`default_rank`).

    Raises :class:`AnalysisError` (one line, naming the file, line and token) when the cascade is
    outside what the analysis handles: the rank is not traversed, or a tensor is read in a way that is
    neither a traversal, a current/previous/final iterate nor a whole summary.
    """
    rank = rank or default_rank(cascade)
    family = rank_family(cascade, rank)
    coverage = {e.name: family.coverage(frozenset(e.iteration_ranks)) for e in cascade.einsums}
    if TRAVERSING not in coverage.values():
        raise AnalysisError(f"{cascade.source}: no Einsum traverses rank '{rank}' at '{cascade.name}'; "
                            f"expected an Einsum iterating over every element of {rank}")
    time = _schedule_times(cascade, family, coverage)
    passes = max(_pass_of(time[n], c) for n, c in coverage.items() if c == TRAVERSING)
    einsum_pass = {name: min(passes, _pass_of(time[name], coverage[name])) for name in time}
    groups = [[e.name for e in cascade.einsums if einsum_pass[e.name] == k] for k in range(1, passes + 1)]
    analysis = PassAnalysis(cascade=cascade, rank=rank, family=family, passes=passes,
                            einsum_pass=einsum_pass, coverage=coverage, time=time,
                            fusable_groups=[g for g in groups if g])
    analysis.reads_by_pass = _reads_by_pass(cascade, family, analysis)
    return analysis


# --- time assignment -----------------------------------------------------------------------------

STREAM, SUMMARY, INPUT, SAME_ITERATION = "stream", "summary", "input", "same-iteration"


def _schedule_times(cascade: Cascade, family: RankFamily, coverage: dict[str, str]) -> dict[str, float]:
    """Time of every Einsum, in topological order of the recurrences (strongly connected components)."""
    deps = networkx.DiGraph()
    deps.add_nodes_from(e.name for e in cascade.einsums)
    for einsum in cascade.einsums:
        for ref in einsum.inputs():
            for writer in cascade.writers(ref.tensor):
                deps.add_edge(writer.name, einsum.name)
    condensed = networkx.condensation(deps)
    time: dict[str, float] = {}
    for component in networkx.topological_sort(condensed):
        members = sorted(condensed.nodes[component]["members"], key=[e.name for e in cascade.einsums].index)
        start = 0.0
        traverses = False
        for name in members:
            einsum = cascade.einsum(name)
            traverses |= coverage[name] == TRAVERSING
            for ref in einsum.inputs():
                kind, at = _read(cascade, family, einsum, ref, members, time, coverage)
                if kind in (INPUT, SAME_ITERATION):
                    continue
                if coverage[name] == TRAVERSING:
                    start = max(start, math.ceil(at) if kind == STREAM else math.floor(at) + 1)
                else:
                    start = max(start, at)
        if traverses:
            start = max(1.0, float(math.ceil(start)))
        for name in members:
            time[name] = float(start)
    return time


def _read(cascade: Cascade, family: RankFamily, reader: Einsum, ref: TensorRef, component: list[str],
          time: dict[str, float], coverage: dict[str, str]) -> tuple[str, float]:
    """Classify one tensor read: (kind, time) with kind in stream / summary / input / same-iteration."""
    _check_fiber_indexing(cascade, family, reader, ref)
    writers = cascade.writers(ref.tensor)
    if not writers:
        return INPUT, 0.0
    outside = [w for w in writers if w.name not in component]
    if len(outside) < len(writers):
        # A read inside a recurrence: only the writers outside it (an initialisation) can delay it.
        if not outside:
            return SAME_ITERATION, 0.0
        return STREAM, max(time[w.name] for w in outside)
    produced = max(time[w.name] for w in writers)
    if iterates_over(cascade, family, ref.tensor):
        dim, iter_rank = cascade.iterative_dims[ref.tensor]
        index = ref.indices[dim]
        bound = cascade.iterative[iter_rank]
        if sympy.simplify(index.expr - bound) == 0:
            return SUMMARY, _available(produced)
        if index.is_constant:
            init = [w for w in writers if w.role == "init"]
            return STREAM, max((time[w.name] for w in init), default=0.0)
        coefficients, constant = index.affine()
        if index.ranks != {iter_rank} or coefficients[iter_rank] != 1 or constant not in (0, 1):
            raise AnalysisError(
                f"{cascade.source}:{reader.line}: iterate read at '{ref}' is outside what the pass "
                f"analysis handles; expected {ref.tensor} read at {iter_rank}, {iter_rank}+1, "
                f"a constant or the final iterate {bound}")
        return STREAM, produced
    if ref.ranks & family.members:
        return STREAM, produced
    if any(coverage[w.name] != FREE or time[w.name] > 0 for w in writers):
        return SUMMARY, _available(produced)
    return INPUT, 0.0


def iterates_over(cascade: Cascade, family: RankFamily, tensor: str) -> bool:
    """True when ``tensor`` is the iterate of a recurrence over (part of) the analysed rank. Only then
    is its final iterate a whole-fiber summary; a recurrence over another rank (``m1`` when analysing
    ``P``) is, along the analysed rank, an ordinary tensor."""
    return tensor in cascade.iterative_dims and cascade.iterative_dims[tensor][1] in family.members


def _check_fiber_indexing(cascade: Cascade, family: RankFamily, reader: Einsum, ref: TensorRef) -> None:
    """Refuse reads whose fibers along the rank are not plain traversals: one fixed element of a
    (non-iterative) fiber, or an index that mixes the rank with other ranks (``X[m+p, p]``)."""
    iterate_dim = cascade.iterative_dims.get(ref.tensor, (None, None))[0]
    family_shapes = _family_shapes(cascade, family)
    for dim, index in enumerate(ref.indices):
        if dim == iterate_dim:
            continue  # indexed by the recurrence's rank: r, r+1 or a constant iterate
        if index.ranks & family.members and index.ranks - family.members:
            raise AnalysisError(
                f"{cascade.source}:{reader.line}: index '{index}' of '{ref}' mixes rank {family.shape} "
                f"with {', '.join(sorted(index.ranks - family.members))}; expected an index of "
                f"{family.shape}'s own rank variables (a traversal or a partition)")
        if _dim_extent(cascade, ref.tensor, dim) in family_shapes and index.is_constant:
            raise AnalysisError(
                f"{cascade.source}:{reader.line}: '{ref}' reads one element of a fiber of "
                f"{family.shape} at '{index}'; expected whole-fiber traversals (index by a rank variable)")


def _available(produced: float) -> float:
    """When a summary produced at ``produced`` can be read: after the pass if produced during one."""
    return produced + 0.5 if float(produced).is_integer() and produced > 0 else produced


def _pass_of(time: float, coverage: str) -> int:
    """1-based pass of an Einsum at ``time``: a coarse Einsum between passes streams with the next
    pass; a free one is the epilogue of the pass before it. (The caller clamps to the last pass: a
    coarse Einsum after the last traversal, such as the merge over splits of a split-K cascade, is
    that pass's epilogue.)"""
    if time.is_integer():
        return max(1, int(time))
    return int(math.ceil(time)) if coverage == COARSE else int(math.floor(time))


def _reads_by_pass(cascade: Cascade, family: RankFamily, analysis: PassAnalysis) -> dict[str, list[int]]:
    """Tensors that traversing Einsums read element by element, and in which passes."""
    reads: dict[str, set[int]] = {}
    for einsum in cascade.einsums:
        if analysis.coverage[einsum.name] != TRAVERSING:
            continue
        for ref in einsum.inputs():
            if ref.ranks & family.members and not iterates_over(cascade, family, ref.tensor):
                reads.setdefault(ref.tensor, set()).add(analysis.einsum_pass[einsum.name])
    return {t: sorted(p) for t, p in reads.items()}


# --- shapes --------------------------------------------------------------------------------------

def _dim_extent(cascade: Cascade, tensor: str, dim: int) -> sympy.Expr | None:
    shapes = cascade.tensor_shapes.get(tensor)
    return shapes[dim] if shapes is not None and dim < len(shapes) else None


def _family_shapes(cascade: Cascade, family: RankFamily) -> set[sympy.Expr]:
    return {family.shape} | {cascade.ranks[r] for r in family.members}
