"""Resolve a (cascade, mapping, workload, arch) point into a :class:`Plan`: sizes, loop levels, binding,
placement and the tile that every Einsum works on. No schedule is built here (:mod:`mappers.cascade_mapper`).

The loop nests this spatial path runs (FuseMax's Mapping 1 and its relatives)::

    for <outer loops, level dram, over parallel ranks>   # "groups" (x batch x heads)
      for <the iterative rank, level dram>               # one tile of the streamed tensors per iteration
        for <inner loops, level global_buffer>           # blocks resident in the global buffer
          <spatial loops: the tile on the arrays>

Tensors the Einsums read from DRAM are *group* tensors (no rank of the iterative family: loaded once
per group, e.g. Q) or *stream* tensors (indexed by the iterative rank: one tile per iteration, e.g. the
K/V tiles). Einsums of the loop body iterate over the iterative rank; Einsums that read a final
iterate run after it, per inner block (the deferred division).

Defaults for what a mapping leaves out: the binding puts each Einsum on the 2D array when it can run
there and has the 2D array's spatial ranks, else on the 1D array (:func:`default_binding`); inputs,
views of inputs and recurrence state live in the global buffer, outputs in DRAM, other intermediates in
the PEs (:func:`default_placement`); ``charge`` is every access the architecture prices.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade
from attnsim.einsum_ir.errors import CascadeError
from attnsim.mappers.cascade_work import CascadeWork, EinsumWork, cascade_work, lower
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import ARCH_VALUES, Loop, MappingSpec, Placement, evaluate_expression
from attnsim.mappers.tiling import resident_blocks, tile_counts
from attnsim.mappers.workloads import Workload

ACCESS_ACTIONS = ("global_buffer.read", "global_buffer.write", "pe1d.register_file.read",
                  "pe1d.register_file.write", "pe2d.register_file.read", "pe2d.register_file.write",
                  "dram.read", "dram.write")


@dataclass(frozen=True)
class TailGroup:
    """The last DRAM-level group of each head when a parallel rank (``rank``, e.g. ``p``) does not fill
    its loops: ``groups_per_head`` groups per head (the outer factor, ``P2``), the last of which holds
    ``blocks`` inner blocks (<= the inner factor, ``P1``) over ``block_tile`` (the group's resident
    extents, ``rank`` at the rows left); its last block runs over ``last_tile`` (``rank`` at the rows
    left in it), or over the full tile when ``last_tile`` is None."""

    rank: str
    groups_per_head: int
    blocks: int
    block_tile: dict[str, int]
    last_tile: dict[str, int] | None


@dataclass(frozen=True)
class Plan:
    """Everything the schedule builder needs, resolved to numbers.

    ``tile``: rank -> extent of one tile (spatial ranks at their spatial factor, the iterative rank 1,
    the rest whole). ``block_tile``: the same with the inner (global-buffer) loops' factors folded in.
    Remainders (:func:`build_plan`): ``last_iteration_tile`` is the tile of the iterative loop's last
    iteration when it is partial (e.g. ``m0`` at the keys left), ``tail`` the partial last group of a
    parallel rank; both None when every loop divides its rank.
    ``spatial``: rank -> array dimension (``rows``/``cols``). ``order``: the body Einsums in program
    order (each unit's in its binding order); ``after``: the Einsums run after the iterative loop.
    """

    work: CascadeWork
    mapping: MappingSpec
    arch: Arch
    workload: Workload
    iterative_rank: str
    outer: dict[str, int]
    inner: dict[str, int]
    iterations: int
    groups: int
    tile: dict[str, int]
    block_tile: dict[str, int]
    spatial: dict[str, str]
    binding: dict[str, str]
    order: tuple[str, ...]
    after: tuple[str, ...]
    placement: dict[str, Placement]
    charge: frozenset[str]
    group_tensors: tuple[str, ...]
    stream_tensors: tuple[str, ...]
    output_tensors: tuple[str, ...]
    glb_bytes: int
    glb_fit_bound: int
    accumulators: tuple[str, ...] = ()
    choices: dict = field(default_factory=dict)
    last_iteration_tile: dict[str, int] | None = None
    tail: TailGroup | None = None

    def where(self, key: str) -> str:
        """``file: key`` for messages about the mapping."""
        return f"{self.mapping.origin}: {key}"


def _values(sizes: Mapping[str, int], arch: Arch) -> dict[str, int]:
    values = dict(sizes)
    for name, path in ARCH_VALUES.items():
        node: object = arch
        for part in path.split("."):
            node = getattr(node, part)
        values[name] = int(node)  # type: ignore[arg-type]
    return values


def gqa_pack(workload: Workload, mapping: MappingSpec | None) -> int:
    """Query heads packed along the query rank per K/V head: the GQA group (``heads / kv_heads``) when
    the mapping says ``pack_gqa: always``, else 1 (every query head its own K/V stream)."""
    if mapping is not None and mapping.pack_gqa == "always":
        return workload.heads // workload.key_value_heads
    return 1


def grid_heads(workload: Workload, mapping: MappingSpec | None) -> int:
    """Independent (batch, head) problems the nest runs: ``B x H``, or ``B x HKV`` when each K/V head's
    group of query heads is packed into one problem (:func:`gqa_pack`)."""
    return workload.batch * workload.heads // gqa_pack(workload, mapping)


def workload_sizes(workload: Workload, seq: int, pack: int = 1) -> dict[str, int]:
    """The attention shape symbols a workload fixes at ``seq`` tokens: the query length P and the
    key/value length M of its phase (:meth:`Workload.attention_shape`: M = P = seq in prefill, P = 1 in
    decode), E, F. ``pack`` query heads of a GQA group share one K/V head along the query rank
    (P = pack x q_len; rows ordered position-major, row r at query position r // pack)."""
    shape = workload.attention_shape(seq)
    return {"M": shape.kv_len, "P": shape.q_len * pack, "E": workload.head_dim_e, "F": workload.head_dim_f}


def resolve_sizes(cascade: Cascade, mapping: MappingSpec, workload: Workload, seq: int, arch: Arch
                  ) -> CascadeWork:
    """The cascade's work at the workload's sizes plus the mapping's ``sizes`` (a workload size that a
    derived shape does not divide is rounded up to a multiple: :func:`resolve_sizes_with_remainders`)."""
    return resolve_sizes_with_remainders(cascade, mapping, workload, seq, arch)[0]


@dataclass(frozen=True)
class PaddedShape:
    """A workload size (``symbol``, e.g. M) that a derived shape (``derived`` = symbol / ``tile``, e.g.
    M1 = M / M0) does not divide: the work is resolved at ``ceil(real / tile) * tile`` and the last of
    the ``derived`` tiles holds ``real - (derived - 1) * tile`` elements."""

    symbol: str
    derived: str
    tile: str
    real: int
    last: int


def resolve_sizes_with_remainders(cascade: Cascade, mapping: MappingSpec, workload: Workload, seq: int,
                                  arch: Arch) -> tuple[CascadeWork, tuple[PaddedShape, ...]]:
    """:func:`resolve_sizes` and the workload sizes it rounded up. A derived shape ``N / D`` with ``N``
    a workload size (``M``, ``P``) and ``D`` a size the mapping sets (``M0``) counts ``ceil(N / D)``
    tiles; sizes the mapping sets must still divide (MappingError naming the key)."""
    sizes = workload_sizes(workload, seq, gqa_pack(workload, mapping))
    values = _values(sizes, arch)
    for name, expression in mapping.sizes.items():
        sizes[name] = evaluate_expression(expression, values, f"{mapping.origin}: sizes.{name}")
        values[name] = sizes[name]
    window = workload.attention_shape(seq).sliding_window
    if window is not None and any(s.name == "W" for s in cascade.ranks.values()):
        # a window cascade's size W is the workload's sliding window (a mapping's sizes.W only where it has none)
        if "W" in mapping.sizes and sizes["W"] != window:
            raise MappingError(f"{mapping.origin}: sizes.W: the mapping fixes the window W = {sizes['W']} but the "
                               f"workload {workload.name} has sliding_window {window}; expected no sizes.W or the same")
        sizes["W"] = window
    padded = _pad_workload_sizes(cascade, sizes, frozenset(workload_sizes(workload, seq)) - set(mapping.sizes))
    try:
        return cascade_work(cascade, sizes), padded
    except CascadeError as exc:
        _explain_sizes(cascade, mapping, sizes)
        raise MappingError(f"{mapping.origin}: sizes: {' '.join(str(exc).split())}") from None


def _pad_workload_sizes(cascade: Cascade, sizes: dict[str, int], open_names: frozenset[str]
                        ) -> tuple[PaddedShape, ...]:
    """Round up (in place) each workload size in ``open_names`` that a derived shape ``N / D`` does not
    divide; the shapes rounded up."""
    import sympy

    padded = []
    for symbol, expr in cascade.derived_shapes.items():
        numerator, denominator = sympy.fraction(sympy.together(expr))
        if not (isinstance(numerator, sympy.Symbol) and isinstance(denominator, sympy.Symbol)):
            continue
        n_name, d_name = numerator.name, denominator.name
        if n_name not in open_names or d_name not in sizes or n_name not in sizes:
            continue
        real, tile = sizes[n_name], sizes[d_name]
        if tile <= 0 or real % tile == 0:
            continue
        if any(p.symbol == n_name for p in padded):
            continue
        tiles = -(-real // tile)
        sizes[n_name] = tiles * tile
        padded.append(PaddedShape(n_name, symbol.name, d_name, real, real - (tiles - 1) * tile))
    return tuple(padded)


def _explain_sizes(cascade: Cascade, mapping: MappingSpec, sizes: Mapping[str, int]) -> None:
    """MappingError naming the mapping's ``sizes`` key when a derived shape does not divide."""
    import sympy

    known = {sympy.Symbol(n, positive=True, integer=True): v for n, v in sizes.items()}
    for symbol, expr in cascade.derived_shapes.items():
        numerator, denominator = sympy.fraction(sympy.together(expr))
        if not (numerator.free_symbols | denominator.free_symbols) <= set(known):
            continue
        n_value, d_value = int(numerator.subs(known)), int(denominator.subs(known))
        if d_value and n_value % d_value:
            names = ", ".join(s.name for s in denominator.free_symbols)
            key = next((f"sizes.{s.name}" for s in denominator.free_symbols if s.name in mapping.sizes), "sizes")
            raise MappingError(f"{mapping.origin}: {key}: {numerator} = {n_value} is not divisible by "
                               f"{denominator} = {d_value} ({symbol.name} = {expr} of cascade {cascade.name}, "
                               f"{names} set by the mapping); expected a multiple of {d_value}")


def default_binding(work: CascadeWork, arch: Arch, spatial_2d: Sequence[str]) -> dict[str, str]:
    """Each computing Einsum on the 2D array when it has the ops and the array's spatial ranks, else on
    the 1D array when it has the ops; MappingError when neither can run it."""
    binding = {}
    for einsum in work.compute:
        fits_2d = all(rank in einsum.iteration_ranks for rank in spatial_2d) and not lower(einsum, arch, "pe2d").missing
        if fits_2d:
            binding[einsum.name] = "pe2d"
        elif not lower(einsum, arch, "pe1d").missing:
            binding[einsum.name] = "pe1d"
        else:
            raise MappingError(f"{arch.origin}: no unit can run Einsum {einsum.name} (needs "
                               f"{', '.join(sorted(einsum.ops))})")
    return binding


def accumulates(work: EinsumWork, family: frozenset[str]) -> bool:
    """Whether ``work`` sums over the streamed rank into an output without it: its partial result is
    live across the iterations (a plain accumulator, e.g. ``AV[f,p] = A[m,p] * V[f,m]``)."""
    return bool(set(work.reduced_ranks) & family) and not set(work.output_ranks) & family \
        and work.einsum.iterative_rank is None


def default_placement(work: CascadeWork, tensor: str, family: frozenset[str] = frozenset()) -> Placement:
    """Where a tensor the mapping does not place lives (module docstring)."""
    cascade = work.cascade
    source = work.source_of(tensor)
    accumulated = any(accumulates(w, family) for w in work.compute if w.write.tensor == tensor)
    if tensor in cascade.outputs:
        return Placement(levels=["global_buffer", "dram"] if accumulated else ["dram"])
    if accumulated:
        return Placement(levels=["global_buffer"])
    if source in cascade.inputs:
        if not any(tensor in w.read_elements({}) for w in work.compute):
            return Placement(levels=["dram"])       # read only through views (K behind BK)
        streamed = any(r in family for w in work.compute for ref in w.reads if ref.tensor == tensor
                       for r in ref.ranks) or (tensor in work.einsums and any(
                           r in work.einsums[tensor].write.ranks for r in cascade.iterative))
        return Placement(levels=["global_buffer"], buffering="double" if streamed else "single")
    if tensor in cascade.iterative_dims:
        return Placement(levels=["global_buffer"])
    return Placement(levels=["pe"])


def _loop_structure(mapping: MappingSpec, work: CascadeWork, family: frozenset[str]
                    ) -> tuple[list[Loop], Loop, list[Loop], list[Loop]]:
    cascade = work.cascade
    loops = mapping.loops
    if loops is None:
        raise MappingError(f"{mapping.origin}: loops: missing (run 'attnsim map' for a default loop nest)")
    for i, loop in enumerate(loops):
        if loop.rank not in cascade.ranks:
            raise MappingError(f"{mapping.origin}: loops[{i}].rank: the cascade {cascade.name} has no rank "
                               f"'{loop.rank}' (known: {', '.join(cascade.ranks)})")
        if (loop.spatial is None) == (loop.level is None):
            raise MappingError(f"{mapping.origin}: loops[{i}]: expected exactly one of level (a temporal "
                               "loop) or spatial (a spatial loop)")
    iterative = [i for i, loop in enumerate(loops) if loop.rank in family and loop.spatial is None]
    if len(iterative) != 1:
        raise MappingError(f"{mapping.origin}: loops: expected exactly one temporal loop over the pass rank's "
                           f"variables ({', '.join(sorted(family))}): the loop that streams its tiles from DRAM")
    k = iterative[0]
    outer, inner = loops[:k], [l for l in loops[k + 1:] if l.spatial is None]
    spatial = [l for l in loops[k + 1:] if l.spatial is not None]
    if loops[k].level != "dram" or any(l.level != "dram" for l in outer):
        raise MappingError(f"{mapping.origin}: loops[{k}].level: expected dram for the iterative loop and the "
                           "loops outside it (each iteration streams a new tile from DRAM)")
    if any(l.level != "global_buffer" for l in inner):
        raise MappingError(f"{mapping.origin}: loops: expected level global_buffer for the temporal loops "
                           "inside the iterative loop")
    return outer, loops[k], inner, spatial


def _factor(loop: Loop, index: int, values: Mapping[str, int], mapping: MappingSpec) -> int | None:
    if loop.factor is None or loop.factor == "fit":
        return None
    return evaluate_expression(loop.factor, values, f"{mapping.origin}: loops[{index}].factor")


def build_plan(cascade: Cascade, mapping: MappingSpec, workload: Workload, seq: int, arch: Arch,
               glb_sizing_bytes: int | None = None) -> Plan:
    """Resolve the point (module docstring); MappingError naming the mapping file and key for a bad
    mapping (an unknown rank, an Einsum bound to a unit lacking an op, tiles that do not fit)."""
    if mapping.target != "spatial":
        raise MappingError(f"{mapping.origin}: target: expected spatial for a spatial accelerator, got "
                           f"{mapping.target}")
    from attnsim.mappers.cascade_defaults import check_single_pass

    analysis = check_single_pass(cascade, mapping)
    family = frozenset(analysis.family.members)
    work, padded = resolve_sizes_with_remainders(cascade, mapping, workload, seq, arch)
    values = _values(work.sizes, arch)
    outer, iter_loop, inner, spatial_loops = _loop_structure(mapping, work, family)
    loops = list(mapping.loops or ())
    index = {id(l): i for i, l in enumerate(loops)}
    iterative_rank = iter_loop.rank
    spatial = {l.rank: l.spatial for l in spatial_loops}
    dims = {"rows": arch.arrays.pe2d.rows, "cols": arch.arrays.pe2d.cols}

    # Per rank: the loops over it, outermost first; fixed factors, one open (None / fit) at most each.
    extents = work.extents
    by_rank: dict[str, list[Loop]] = {}
    for loop in loops:
        by_rank.setdefault(loop.rank, []).append(loop)
    factors: dict[int, int] = {}
    fit_loop: Loop | None = None
    for rank, rank_loops in by_rank.items():
        fixed = {index[id(l)]: _factor(l, index[id(l)], values, mapping) for l in rank_loops}
        open_loops = [l for l in rank_loops if fixed[index[id(l)]] is None]
        product = 1
        for value in fixed.values():
            product *= value or 1
        if not open_loops and product < extents[rank]:
            raise MappingError(f"{mapping.origin}: loops: rank {rank}'s loop factors' product {product} is less "
                               f"than its extent {extents[rank]}; expected at least {extents[rank]}")
        for loop in open_loops:
            if loop.factor == "fit":
                if fit_loop is not None:
                    raise MappingError(f"{mapping.origin}: loops[{index[id(loop)]}].factor: only one loop "
                                       "may be 'fit'")
                fit_loop = loop
        rest_loops = [l for l in open_loops if l.factor is None]
        if len(rest_loops) > 1:
            raise MappingError(f"{mapping.origin}: loops[{index[id(rest_loops[1])]}].factor: only one loop per "
                               f"rank may leave its factor out (rank {rank})")
        for i, value in fixed.items():
            if value is not None:
                factors[i] = value
        if not any(l.factor == "fit" for l in open_loops):
            for loop in rest_loops:
                factors[index[id(loop)]] = -(-extents[rank] // product)   # ceil: a partial last tile
    for loop in spatial_loops:
        i = index[id(loop)]
        if loop.rank in factors and loop.spatial in dims and factors[i] > dims[loop.spatial]:
            raise MappingError(f"{mapping.origin}: loops[{i}].factor: {factors[i]} exceeds the 2D array's "
                               f"{loop.spatial} ({dims[loop.spatial]})")

    tile = {rank: extent for rank, extent in extents.items()}
    for rank in by_rank:
        tile[rank] = 1
    for loop in spatial_loops:
        tile[loop.rank] = factors[index[id(loop)]]
    for loop in spatial_loops:
        tile[loop.rank] = 1
    for loop in spatial_loops:
        tile[loop.rank] *= factors[index[id(loop)]]

    binding = _binding(work, mapping, arch, [r for r, d in spatial.items()])
    placement = {t: mapping.placement.get(t) or default_placement(work, t, family) for t in _tensors(work)}
    for tensor in mapping.placement:
        if tensor not in placement:
            raise MappingError(f"{mapping.origin}: placement.{tensor}: the cascade {cascade.name} has no tensor "
                               f"'{tensor}' (known: {', '.join(placement)})")
    charge = frozenset(mapping.charge if mapping.charge is not None else ACCESS_ACTIONS) & (
        frozenset(arch.energy) | {"dram.read", "dram.write"})

    body = [w for w in work.compute if set(w.iteration_ranks) & family or w.einsum.iterative_rank == iterative_rank]
    body_names = {w.name for w in body}
    after = [w for w in work.compute if w.name not in body_names]
    for w in after:
        if not any(d.producer in body_names for d in work.deps_of(w.name)):
            raise MappingError(f"{mapping.origin}: loops: Einsum {w.name} neither iterates over {analysis.rank} "
                               "nor reads a result of the pass; this nest cannot place it (a prologue is not "
                               "supported)")
    order = _program_order(body, binding, mapping, work)
    after_order = tuple(x for unit in ("pe2d", "pe1d") for x in _unit_list(mapping, unit, [w.name for w in after], binding))

    group_tensors, stream_tensors = [], []
    for name in dict.fromkeys(r.tensor for w in work.compute for r in w.reads):
        if work.source_of(name) in cascade.inputs and placement[name].levels[0] != "dram":
            ranks = _tensor_ranks(work, name)
            (stream_tensors if ranks & family else group_tensors).append(name)
    outputs = tuple(t for t in cascade.outputs)
    accumulators = tuple(w.name for w in body if accumulates(w, family))

    on_chip = [t for t, place in placement.items() if "global_buffer" in place.levels]
    probe = {rank: 1 for rank in tile}
    footprint_ranks: dict[str, list[str]] = {}
    for tensor in on_chip:   # which ranks index each on-chip tensor (one iterate): probe each rank with 2
        footprint_ranks[tensor] = [r for r in tile if footprint_elements(work, tensor, {**probe, r: 2}) == 2
                                   ] if footprint_elements(work, tensor, probe) else []
    empty = {t for t in on_chip if not footprint_elements(work, t, probe)}

    def glb_footprint(inner_factors: Mapping[str, int]) -> tuple[int, list[tuple[str, int]]]:
        block = dict(tile)
        for rank, f in inner_factors.items():
            block[rank] *= f
        parts = []
        for tensor in on_chip:
            elements = 0 if tensor in empty else math.prod(block[r] for r in footprint_ranks[tensor])
            parts.append((tensor, elements * arch.word_bytes))
        return sum(b for _, b in parts), parts

    capacity = glb_sizing_bytes or arch.global_buffer.capacity_bytes
    inner_factors: dict[str, int] = {}
    for loop in inner:
        i = index[id(loop)]
        if i in factors:
            inner_factors[loop.rank] = inner_factors.get(loop.rank, 1) * factors[i]
    fit_bound = 0
    if fit_loop is not None:
        i = index[id(fit_loop)]
        rank = fit_loop.rank
        product = 1
        for l in by_rank[rank]:
            if index[id(l)] in factors:
                product *= factors[index[id(l)]]
        left = -(-extents[rank] // product)   # ceil: the last block may be partial

        def fits(candidate: int) -> bool:
            trial = dict(inner_factors)
            if fit_loop in inner:
                trial[rank] = trial.get(rank, 1) * candidate
            return glb_footprint(trial)[0] <= capacity

        if not fits(1):
            trial = dict(inner_factors)
            trial[rank] = trial.get(rank, 1)
            _, parts = glb_footprint(trial)
            tensor, need = max(parts, key=lambda p: p[1])
            raise MappingError(f"{mapping.origin}: loops[{i}].factor: nothing fits in global_buffer.capacity_bytes = "
                               f"{capacity}: the live tensors of one tile take {sum(b for _, b in parts)} bytes "
                               f"({', '.join(f'{t} {b} B' for t, b in parts if b)}; largest {tensor}, {need} bytes)")
        low, high = 1, left          # the footprint grows with the factor: bisect for the capacity bound
        while low < high:
            middle = (low + high + 1) // 2
            if fits(middle):
                low = middle
            else:
                high = middle - 1
        best = resident_blocks(left, low)
        factors[i] = best
        fit_bound = best
        for l in by_rank[rank]:
            if l.factor is None:
                factors[index[id(l)]] = -(-left // best)
        if fit_loop in inner:
            inner_factors[rank] = inner_factors.get(rank, 1) * best
    glb_bytes, parts = glb_footprint(inner_factors)
    if glb_bytes > capacity:
        tensor, need = max(parts, key=lambda p: p[1])
        key = next((f"loops[{index[id(l)]}].factor" for l in inner if l.factor not in (None, "fit")), "loops")
        raise MappingError(f"{mapping.origin}: {key}: the live tensors of one block take {glb_bytes} bytes, more "
                           f"than global_buffer.capacity_bytes = {capacity} (largest: {tensor}, {need} bytes)")
    block_tile = dict(tile)
    for rank, f in inner_factors.items():
        block_tile[rank] *= f
    last_iteration_tile, tail = _remainders(mapping, work, padded, extents, by_rank, factors, index, outer,
                                            iter_loop, inner, tile, block_tile, iterative_rank, family)
    outer_iterations = 1
    for loop in outer:
        outer_iterations *= factors[index[id(loop)]]
    inner_iterations = 1
    for f in inner_factors.values():
        inner_iterations *= f
    groups = grid_heads(workload, mapping) * outer_iterations
    copies = {t: 2 if p.buffering == "double" else 1 for t, p in placement.items()}
    peak = sum(b * copies[t] for t, b in parts)
    named = loop_names(loops)
    choices = {"inner_iterations": inner_iterations, "glb_peak_bytes": peak,
               "loops": {named[i]: factors[i] for i in range(len(loops))},
               "real_sizes": {p.symbol: p.real for p in padded}}
    return Plan(work=work, mapping=mapping, arch=arch, workload=workload, iterative_rank=iterative_rank,
                outer={l.rank: factors[index[id(l)]] for l in outer}, inner=inner_factors,
                iterations=factors[index[id(iter_loop)]], groups=groups, tile=tile, block_tile=block_tile,
                spatial=spatial, binding=binding, order=order, after=after_order, placement=placement,
                charge=charge, group_tensors=tuple(group_tensors), stream_tensors=tuple(stream_tensors),
                output_tensors=outputs, glb_bytes=glb_bytes, glb_fit_bound=fit_bound, accumulators=accumulators,
                choices=choices, last_iteration_tile=last_iteration_tile, tail=tail)


def _remainders(mapping: MappingSpec, work: CascadeWork, padded: Sequence[PaddedShape], extents: Mapping[str, int],
                by_rank: Mapping[str, list[Loop]], factors: Mapping[int, int], index: Mapping[int, int],
                outer: Sequence[Loop], iter_loop: Loop, inner: Sequence[Loop], tile: Mapping[str, int],
                block_tile: Mapping[str, int], iterative_rank: str, family: frozenset[str]
                ) -> tuple[dict[str, int] | None, TailGroup | None]:
    """The partial tiles where the loops do not divide their ranks (:class:`Plan`): the last iteration's
    tile (keys left over, from a derived shape rounded up or from the iterative rank's own loops) and
    the last group of a parallel rank; MappingError for a remainder this nest cannot place."""
    cascade = work.cascade
    last_iteration: dict[str, int] = {}
    for shape in padded:
        ranks = {r: sym.name for r, sym in cascade.ranks.items()}
        tile_ranks = [r for r, name in ranks.items() if name == shape.tile]
        temporal_over_tile = len(tile_ranks) == 1 and any(l.spatial is None for l in by_rank.get(tile_ranks[0], ()))
        if ranks.get(iterative_rank) != shape.derived or len(tile_ranks) != 1 or temporal_over_tile \
                or tile[tile_ranks[0]] != work.sizes[shape.tile]:
            raise MappingError(f"{mapping.origin}: sizes: {shape.symbol} = {shape.real} is not divisible by "
                               f"{shape.tile} = {work.sizes[shape.tile]} and the tiles of {shape.derived} = "
                               f"{shape.symbol} / {shape.tile} are not the iterative loop's; expected a multiple "
                               f"of {work.sizes[shape.tile]}")
        last_iteration[tile_ranks[0]] = shape.last
    tail: TailGroup | None = None
    for rank, rank_loops in by_rank.items():
        covered = 1
        for loop in rank_loops:
            covered *= factors[index[id(loop)]]
        if covered == extents[rank]:
            continue
        temporal = [l for l in rank_loops if l.spatial is None]
        spatial_extent = tile[rank]
        if rank == iterative_rank or rank in family:
            if temporal != [iter_loop]:
                raise MappingError(f"{mapping.origin}: loops: rank {rank}'s extent {extents[rank]} is not divisible "
                                   f"by its loop factors' product {covered}, and a partial tile of the pass rank "
                                   "needs the iterative loop to be its only temporal loop; expected a multiple "
                                   f"of {covered}")
            last_iteration[rank] = extents[rank] - (factors[index[id(iter_loop)]] - 1) * spatial_extent
            continue
        rank_outer = [l for l in temporal if l in outer]
        other_inner = [l for l in inner if l.rank != rank]
        if tail is not None or len(outer) > 1 or (outer and rank_outer != list(outer)) or other_inner or \
                len(temporal) - len(rank_outer) > 1:
            raise MappingError(f"{mapping.origin}: loops: rank {rank}'s extent {extents[rank]} is not divisible by "
                               f"its loop factors' product {covered}; a partial last group needs one parallel "
                               "rank with a remainder, its loop the only dram loop outside the iterative loop and "
                               f"the only global_buffer loop inside it; expected a multiple of {covered}")
        groups = factors[index[id(rank_outer[0])]] if rank_outer else 1
        group_extent = block_tile[rank]
        left = extents[rank] - (groups - 1) * group_extent
        if left <= 0:
            raise MappingError(f"{mapping.origin}: loops[{index[id(rank_outer[0])]}].factor: {groups} groups of "
                               f"{group_extent} leave the last one empty (rank {rank}'s extent {extents[rank]}); "
                               f"expected at most {-(-extents[rank] // group_extent)}")
        blocks, last = tile_counts(left, spatial_extent)
        tail = TailGroup(rank=rank, groups_per_head=groups, blocks=blocks, block_tile={**block_tile, rank: left},
                         last_tile={**tile, rank: last} if last != spatial_extent else None)
    return ({**tile, **last_iteration} if last_iteration else None), tail


def loop_names(loops: Sequence[Loop]) -> list[str]:
    """A name per loop: the rank itself when one loop runs over it, else ``rank`` + its position counted
    from the innermost (``p2``, ``p1``, ``p0``: FuseMax's names for the three loops over ``p``)."""
    count: dict[str, int] = {}
    for loop in loops:
        count[loop.rank] = count.get(loop.rank, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for loop in loops:
        seen[loop.rank] = seen.get(loop.rank, 0) + 1
        names.append(loop.rank if count[loop.rank] == 1 else f"{loop.rank}{count[loop.rank] - seen[loop.rank]}")
    return names


def _same_family(cascade: Cascade, rank: str, iterative_rank: str) -> bool:
    """Ranks partitioning the same full rank as the iterative one (m0 with m1)."""
    for einsum in cascade.einsums:
        for ref in (einsum.output, *einsum.inputs()):
            for index in ref.indices:
                if {rank, iterative_rank} <= index.ranks:
                    return True
    return False


def _tensors(work: CascadeWork) -> list[str]:
    names = list(work.cascade.inputs)
    for w in work.einsums.values():
        if w.write.tensor not in names:
            names.append(w.write.tensor)
    return names


def _tensor_ranks(work: CascadeWork, tensor: str) -> set[str]:
    for w in work.einsums.values():
        if w.write.tensor == tensor:
            return set(w.write.ranks)
        for ref in w.reads:
            if ref.tensor == tensor:
                return set(ref.ranks)
    return set()


def footprint_elements(work: CascadeWork, tensor: str, block: Mapping[str, int]) -> int:
    """Elements of ``tensor`` live in one block: its index ranks at the block's extents, one iterate."""
    return max((math.prod(int(block.get(rank, 1)) for rank in ranks) for ranks in work.footprint_ranks(tensor)),
               default=0)


def _binding(work: CascadeWork, mapping: MappingSpec, arch: Arch, spatial_2d: Sequence[str]) -> dict[str, str]:
    names = {w.name for w in work.compute}
    for unit, einsums in (mapping.binding or {}).items():
        for i, name in enumerate(einsums):
            if name not in names:
                raise MappingError(f"{mapping.origin}: binding.{unit}[{i}]: the cascade {work.cascade.name} has no "
                                   f"computing Einsum '{name}' (known: {', '.join(sorted(names))})")
            lowered = lower(work.einsums[name], arch, unit)
            if lowered.missing:
                raise MappingError(f"{mapping.origin}: binding.{unit}[{i}]: {unit} of {arch.name} has no "
                                   f"'{lowered.missing[0]}' operation (needed by Einsum {name}); arrays.{unit}.ops "
                                   f"has {', '.join(getattr(arch.arrays, unit).ops.keys())}")
    defaults = default_binding(work, arch, spatial_2d) if mapping.binding is None or any(
        mapping.bound_unit(n) is None for n in names) else {}
    return {n: mapping.bound_unit(n) or defaults[n] for n in (w.name for w in work.compute)}


def _unit_list(mapping: MappingSpec, unit: str, names: Sequence[str], binding: Mapping[str, str]) -> list[str]:
    listed = (mapping.binding or {}).get(unit, [])
    ours = [n for n in names if binding[n] == unit]
    return [n for n in listed if n in ours] + [n for n in ours if n not in listed]


def _program_order(body: Sequence[EinsumWork], binding: Mapping[str, str], mapping: MappingSpec,
                   work: CascadeWork) -> tuple[str, ...]:
    """A program order of the body: each unit's Einsums in its binding order, merged so that every
    in-tile producer comes first (cascade order breaks ties); MappingError if the orders conflict."""
    names = [w.name for w in body]
    queues = {unit: _unit_list(mapping, unit, names, binding) for unit in ("pe2d", "pe1d")}
    needs = {n: {d.producer for d in work.deps_of(n) if d.kind == "tile" and d.producer in names} for n in names}
    done: list[str] = []
    rank = {n: i for i, n in enumerate(names)}
    while len(done) < len(names):
        ready = [q[0] for q in queues.values() if q and needs[q[0]] <= set(done)]
        if not ready:
            stuck = [q[0] for q in queues.values() if q]
            raise MappingError(f"{mapping.origin}: binding: the issue order cannot respect the cascade's "
                               f"dependencies ({', '.join(stuck)} wait for Einsums listed after them)")
        pick = min(ready, key=rank.__getitem__)
        done.append(pick)
        queues[binding[pick]].pop(0)
    return tuple(done)


__all__ = ["ACCESS_ACTIONS", "PaddedShape", "Plan", "TailGroup", "accumulates", "footprint_elements", "resolve_sizes_with_remainders", "build_plan", "default_binding", "default_placement", "resolve_sizes",
           "gqa_pack", "grid_heads", "loop_names", "workload_sizes"]
