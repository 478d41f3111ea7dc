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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade
from attnsim.einsum_ir.errors import CascadeError
from attnsim.mappers.cascade_work import CascadeWork, EinsumWork, cascade_work, lower
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import ARCH_VALUES, Loop, MappingSpec, Placement, evaluate_expression
from attnsim.mappers.workloads import Workload

ACCESS_ACTIONS = ("global_buffer.read", "global_buffer.write", "pe1d.register_file.read",
                  "pe1d.register_file.write", "pe2d.register_file.read", "pe2d.register_file.write",
                  "dram.read", "dram.write")


@dataclass(frozen=True)
class Plan:
    """Everything the schedule builder needs, resolved to numbers.

    ``tile``: rank -> extent of one tile (spatial ranks at their spatial factor, the iterative rank 1,
    the rest whole). ``block_tile``: the same with the inner (global-buffer) loops' factors folded in.
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
    choices: dict = field(default_factory=dict)

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


def workload_sizes(workload: Workload, seq: int) -> dict[str, int]:
    """The attention shape symbols a workload fixes: M = P = seq, E, F."""
    return {"M": seq, "P": seq, "E": workload.head_dim_e, "F": workload.head_dim_f}


def resolve_sizes(cascade: Cascade, mapping: MappingSpec, workload: Workload, seq: int, arch: Arch
                  ) -> CascadeWork:
    """The cascade's work at the workload's sizes plus the mapping's ``sizes``."""
    sizes = workload_sizes(workload, seq)
    values = _values(sizes, arch)
    for name, expression in mapping.sizes.items():
        sizes[name] = evaluate_expression(expression, values, f"{mapping.origin}: sizes.{name}")
        values[name] = sizes[name]
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
    try:
        return cascade_work(cascade, sizes)
    except CascadeError as exc:
        raise MappingError(f"{mapping.origin}: sizes: {' '.join(str(exc).split())}") from None


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


def default_placement(work: CascadeWork, tensor: str) -> Placement:
    """Where a tensor the mapping does not place lives (module docstring)."""
    cascade = work.cascade
    source = work.source_of(tensor)
    if tensor in cascade.outputs:
        return Placement(levels=["dram"])
    if source in cascade.inputs:
        if not any(tensor in w.read_elements({}) for w in work.compute):
            return Placement(levels=["dram"])       # read only through views (K behind BK)
        streamed = any(r in work.einsums[tensor].write.ranks for r in cascade.iterative) if tensor in work.einsums else False
        return Placement(levels=["global_buffer"], buffering="double" if streamed else "single")
    if tensor in cascade.iterative_dims:
        return Placement(levels=["global_buffer"])
    return Placement(levels=["pe"])


def _loop_structure(mapping: MappingSpec, work: CascadeWork) -> tuple[list[Loop], Loop, list[Loop], list[Loop]]:
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
    iterative = [i for i, loop in enumerate(loops) if loop.rank in cascade.iterative]
    if len(iterative) != 1:
        raise MappingError(f"{mapping.origin}: loops: expected exactly one loop over the iterative rank "
                           f"({', '.join(cascade.iterative) or 'none in this cascade'}); this spatial path "
                           "runs 1-pass nests over an iterative rank")
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

    check_single_pass(cascade, mapping)
    work = resolve_sizes(cascade, mapping, workload, seq, arch)
    values = _values(work.sizes, arch)
    outer, iter_loop, inner, spatial_loops = _loop_structure(mapping, work)
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
        if extents[rank] % product:
            raise MappingError(f"{mapping.origin}: loops: rank {rank}'s extent {extents[rank]} is not divisible by "
                               f"its loop factors' product {product}; expected a multiple of {product}")
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
                factors[index[id(loop)]] = extents[rank] // product
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
    tile[iterative_rank] = 1

    binding = _binding(work, mapping, arch, [r for r, d in spatial.items()])
    placement = {t: mapping.placement.get(t) or default_placement(work, t) for t in _tensors(work)}
    for tensor in mapping.placement:
        if tensor not in placement:
            raise MappingError(f"{mapping.origin}: placement.{tensor}: the cascade {cascade.name} has no tensor "
                               f"'{tensor}' (known: {', '.join(placement)})")
    charge = frozenset(mapping.charge if mapping.charge is not None else ACCESS_ACTIONS) & (
        frozenset(arch.energy) | {"dram.read", "dram.write"})

    body = [w for w in work.compute if iterative_rank in w.iteration_ranks or w.einsum.iterative_rank == iterative_rank]
    body_names = {w.name for w in body}
    after = [w for w in work.compute if w.name not in body_names]
    for w in after:
        if not any(d.kind == "final" for d in work.deps_of(w.name)):
            raise MappingError(f"{mapping.origin}: loops: Einsum {w.name} neither iterates over {iterative_rank} "
                               "nor reads a final iterate; this nest cannot place it")
    order = _program_order(body, binding, mapping, work)
    after_order = tuple(x for unit in ("pe2d", "pe1d") for x in _unit_list(mapping, unit, [w.name for w in after], binding))

    family = {iterative_rank} | {r for r in cascade.ranks if _same_family(cascade, r, iterative_rank)}
    group_tensors, stream_tensors = [], []
    for name in dict.fromkeys(r.tensor for w in work.compute for r in w.reads):
        if work.source_of(name) in cascade.inputs and placement[name].levels[0] != "dram":
            ranks = _tensor_ranks(work, name)
            (stream_tensors if ranks & family else group_tensors).append(name)
    outputs = tuple(t for t in cascade.outputs)

    def glb_footprint(inner_factors: Mapping[str, int]) -> tuple[int, list[tuple[str, int]]]:
        block = dict(tile)
        for rank, f in inner_factors.items():
            block[rank] *= f
        parts = []
        for tensor, place in placement.items():
            if "global_buffer" not in place.levels:
                continue
            elements = _footprint(work, tensor, block)
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
        left = extents[rank] // product
        best = 0
        for candidate in range(1, left + 1):
            if left % candidate:
                continue
            trial = dict(inner_factors)
            if fit_loop in inner:
                trial[rank] = trial.get(rank, 1) * candidate
            if glb_footprint(trial)[0] <= capacity:
                best = candidate
            elif fit_loop in inner:
                break
        if best == 0:
            trial = dict(inner_factors)
            trial[rank] = trial.get(rank, 1)
            _, parts = glb_footprint(trial)
            tensor, need = max(parts, key=lambda p: p[1])
            raise MappingError(f"{mapping.origin}: loops[{i}].factor: nothing fits in global_buffer.capacity_bytes = "
                               f"{capacity}: the live tensors of one tile take {sum(b for _, b in parts)} bytes "
                               f"({', '.join(f'{t} {b} B' for t, b in parts if b)}; largest {tensor}, {need} bytes)")
        factors[i] = best
        fit_bound = best
        for l in by_rank[rank]:
            if l.factor is None:
                factors[index[id(l)]] = left // best
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
    outer_iterations = 1
    for loop in outer:
        outer_iterations *= factors[index[id(loop)]]
    inner_iterations = 1
    for f in inner_factors.values():
        inner_iterations *= f
    groups = workload.batch * workload.heads * outer_iterations
    copies = {t: 2 if p.buffering == "double" else 1 for t, p in placement.items()}
    peak = sum(b * copies[t] for t, b in parts)
    named = loop_names(loops)
    choices = {"inner_iterations": inner_iterations, "glb_peak_bytes": peak,
               "loops": {named[i]: factors[i] for i in range(len(loops))}}
    return Plan(work=work, mapping=mapping, arch=arch, workload=workload, iterative_rank=iterative_rank,
                outer={l.rank: factors[index[id(l)]] for l in outer}, inner=inner_factors,
                iterations=factors[index[id(iter_loop)]], groups=groups, tile=tile, block_tile=block_tile,
                spatial=spatial, binding=binding, order=order, after=after_order, placement=placement,
                charge=charge, group_tensors=tuple(group_tensors), stream_tensors=tuple(stream_tensors),
                output_tensors=outputs, glb_bytes=glb_bytes, glb_fit_bound=fit_bound,
                choices=choices)


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


def _footprint(work: CascadeWork, tensor: str, block: Mapping[str, int]) -> int:
    """Elements of ``tensor`` live in one block: its index ranks at the block's extents, one iterate."""
    for w in work.einsums.values():
        if w.write.tensor == tensor and w.role != "init":
            return w.write_elements(block)
    for w in work.einsums.values():
        if w.role == "compute" and tensor in w.read_elements(block):
            return w.read_elements(block)[tensor]
    return 0


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


__all__ = ["ACCESS_ACTIONS", "Plan", "build_plan", "default_binding", "default_placement", "resolve_sizes",
           "loop_names", "workload_sizes"]
