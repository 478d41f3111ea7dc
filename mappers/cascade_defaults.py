"""What analysis says about mapping a cascade: its fusion boundaries (with the pass analysis's reason),
the check that a mapping does not fuse across one, and the default mapping ``attnsim map`` prints.

The default spatial mapping of a 1-pass cascade (one iterative rank ``r1`` partitioning a rank with
``r0``, parallel ranks such as ``p``; :func:`einsum_ir.bounds.parallel_ranks`) is FuseMax's Mapping 1
shape: the parallel ranks over DRAM-level groups and ``fit`` blocks in the global buffer, ``r1``
streamed from DRAM, ``r0`` over the 2D array's rows and the first parallel rank over its columns (and
the 1D array's lanes); ``r0``'s extent is set to the array's rows. Binding and placement are the
defaults of :mod:`mappers.cascade_plan`.
"""
from __future__ import annotations

from typing import Any

from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade
from attnsim.einsum_ir.bounds import parallel_ranks
from attnsim.einsum_ir.errors import CascadeError
from attnsim.einsum_ir.passes import PassAnalysis, analyze_passes
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import MappingSpec, mapping_from_data


def pass_analysis(cascade: Cascade) -> PassAnalysis:
    """The cascade's pass analysis over its default rank; MappingError (one line) when it has none.
    Cached on the cascade object."""
    cached = cascade.__dict__.get("_pass_analysis")
    if cached is None:
        try:
            cached = analyze_passes(cascade)
        except CascadeError as exc:
            raise MappingError(" ".join(str(exc).split())) from None
        cascade.__dict__["_pass_analysis"] = cached
    return cached


def fusion_boundaries(analysis: PassAnalysis) -> list[dict[str, Any]]:
    """One entry per boundary between consecutive passes: the first Einsum of the later pass that reads a
    summary, the tensor, the reduction that produces it, and the reason in words."""
    cascade = analysis.cascade
    family = analysis.family.members
    boundaries = []
    for k in range(1, analysis.passes):
        found = None
        for einsum in cascade.einsums:
            if analysis.einsum_pass[einsum.name] != k + 1:
                continue
            for ref in einsum.inputs():
                for writer in cascade.writers(ref.tensor):
                    if analysis.einsum_pass.get(writer.name, 0) > k:
                        continue
                    reduced = sorted(set(writer.reduced_ranks) & family)
                    summary = not (ref.ranks & family) or ref.tensor in cascade.iterative_dims
                    if reduced and summary:
                        found = (einsum, ref.tensor, writer, reduced)
                        break
                if found:
                    break
            if found:
                break
        if found is None:
            boundaries.append({"after_pass": k, "reason": f"pass {k + 1} needs a result of pass {k}"})
            continue
        einsum, tensor, writer, reduced = found
        op = writer.reduce_op or "sum"
        reason = (f"{einsum.name} (pass {k + 1}) traverses {analysis.rank} element by element and reads {tensor}, "
                  f"which {writer.name} reduces over {', '.join(reduced)} with {op} ('{writer.source.strip()}'): "
                  f"complete only after pass {k} has seen the whole fibre")
        boundaries.append({"after_pass": k, "einsum": einsum.name, "tensor": tensor, "reduction": writer.name,
                           "reduce_op": op, "reason": reason})
    return boundaries


def check_single_pass(cascade: Cascade, mapping: MappingSpec) -> PassAnalysis:
    """MappingError naming the mapping file when its one fused loop nest would fuse across a pass
    boundary of ``cascade`` (the spatial path runs every Einsum of a tile in one pass over the rank)."""
    analysis = pass_analysis(cascade)
    if analysis.passes > 1:
        first = fusion_boundaries(analysis)[0]
        raise MappingError(f"{mapping.origin}: loops: fuses all {len(cascade.einsums)} Einsums of cascade "
                           f"{cascade.name} into one pass over {analysis.rank}, but it makes {analysis.passes} "
                           f"passes: {first['reason']}; expected a 1-pass cascade (or the unfused/flat designs)")
    return analysis


def default_mapping_data(cascade: Cascade, arch: Arch) -> dict[str, Any]:
    """The default spatial mapping of a 1-pass cascade as plain data (module docstring)."""
    analysis = pass_analysis(cascade)
    if analysis.passes > 1:
        reasons = "; ".join(f"after pass {b['after_pass']}: {b['reason']}" for b in fusion_boundaries(analysis))
        raise MappingError(f"{cascade.source}: cascade {cascade.name} makes {analysis.passes} passes over "
                           f"{analysis.rank} (fusion boundaries {reasons}); the spatial mapping path fuses a "
                           "1-pass cascade (3-pass ones run as --design unfused or flat)")
    parallel = parallel_ranks(analysis)
    if not parallel:
        raise MappingError(f"{cascade.source}: cascade {cascade.name} has no parallel rank to spread over the "
                           "array's columns")
    column = parallel[0]
    sizes = {}
    iterative = next((r for r in cascade.iterative if r in analysis.family.members), None)
    if iterative is not None:   # a partitioned pass rank: stream its outer part, its inner part on the rows
        partners = sorted(r for r in analysis.family.members if r != iterative and r in cascade.ranks
                          and any({r, iterative} <= p for p in analysis.family.partitions))
        rows = [{"rank": partner, "spatial": "rows"} for partner in partners]
        for partner in partners:
            sizes[cascade.ranks[partner].name] = "pe2d.rows"
        streamed = iterative
    else:                       # the whole pass rank: split it into DRAM tiles of the array's rows
        full = sorted(analysis.family.full)
        if not full:
            raise MappingError(f"{cascade.source}: cascade {cascade.name}: no rank variable of {analysis.rank} to "
                               "stream")
        streamed = full[0]
        rows = [{"rank": streamed, "factor": "pe2d.rows", "spatial": "rows"}]
    loops: list[dict[str, Any]] = [{"rank": column, "level": "dram"}, {"rank": streamed, "level": "dram"},
                                   {"rank": column, "factor": "fit", "level": "global_buffer"}, *rows,
                                   {"rank": column, "factor": "pe2d.cols", "spatial": "cols"}]
    return {"name": f"{cascade.name}-default", "description": f"default spatial mapping of {cascade.name} on {arch.name}",
            "source": "attnsim map: defaults by analysis (mappers.cascade_defaults, mappers.cascade_plan)",
            "target": "spatial", "cascade": cascade.name, "arch": arch.name, "sizes": sizes, "loops": loops}


DEFAULT_GROUPS_MAPPING = "flat"
"""The built-in multi-pass mapping ``attnsim map`` starts from for a multi-pass cascade: FLAT's row-block
fusion (one group holding the whole pass rank per block; the block by FLAT's rule)."""


def default_groups_mapping(cascade: Cascade) -> MappingSpec:
    """The default fusion-group mapping of a multi-pass cascade (:data:`DEFAULT_GROUPS_MAPPING`) when its
    groups cover the cascade's Einsums; MappingError naming the boundaries otherwise."""
    from attnsim.mappers.cascade_groups import groups_fit
    from attnsim.mappers.mapping_spec import load_mapping

    mapping = load_mapping(DEFAULT_GROUPS_MAPPING)
    if groups_fit(cascade, mapping):
        return mapping
    data = default_groups_data(cascade, mapping)
    if data is not None:
        derived = mapping_from_data(data, f"<default groups mapping of {cascade.name}>")
        if groups_fit(cascade, derived):
            return derived
    analysis = pass_analysis(cascade)
    reasons = "; ".join(f"after pass {b['after_pass']}: {b['reason']}" for b in fusion_boundaries(analysis))
    raise MappingError(f"{cascade.source}: cascade {cascade.name} makes {analysis.passes} passes over "
                       f"{analysis.rank} (fusion boundaries {reasons}); no default fusion-group mapping names its "
                       f"Einsums (the built-in {DEFAULT_GROUPS_MAPPING} maps attention-3pass): write a mapping with "
                       "groups (docs/mapping.md)")


def default_groups_data(cascade: Cascade, policy: MappingSpec) -> dict[str, Any] | None:
    """FLAT's row-block fusion derived for any multi-pass cascade with one pass rank and a parallel rank, as
    plain data (None when the cascade has neither): one group of every computing Einsum in cascade order,
    blocks of the first parallel rank (``iteration: block``: each block holds whole fibres of the pass
    rank, so it may fuse every pass); contractions (a product of two tensors reduced over a rank) on the
    2D array, output-stationary, the rest on the 1D array; the *score fibres* (intermediates over the pass
    rank and the block rank) in the global buffer, per-row summaries in the units, inputs and outputs in
    DRAM. The block by FLAT's rule, as ``policy``'s (``flat.yaml``) alternatives: the largest that fits
    with the fibres on chip -- counted as the policy's first alternative counts (``fit: fibres``: the score
    rows alone, FLAT's accounting, with its block sizes and spill), else the block's rows of the
    inputs/outputs over the block rank, its fibres, and the other inputs' double-buffered array tiles --
    else the fibres through DRAM, weight-stationary, at most ``policy``'s ``block_max``. Charge, ``op_overlap`` and ``fill_cycles`` are ``policy``'s."""
    from attnsim.mappers.cascade_work import _einsum_work

    analysis = pass_analysis(cascade)
    parallel = parallel_ranks(analysis)
    passing = sorted(analysis.family.full)
    if not parallel or len(passing) != 1 or any(len(p) > 1 for p in analysis.family.partitions):
        return None   # no parallel rank to block, or a pass rank split into parts (not one whole fibre)
    block_rank, pass_rank = parallel[0], passing[0]
    computing = [e for e in cascade.einsums if _einsum_work(cascade, e).role == "compute"]
    written = {e.output.tensor for e in computing}
    contractions = [e.name for e in computing if len(e.inputs()) >= 2 and e.reduced_ranks
                    and all(r.tensor not in written or r.ranks & analysis.family.members for r in e.inputs())]
    fibres = [e.output.tensor for e in computing if {block_rank, pass_rank} <= set(e.output.ranks)
              and e.output.tensor not in cascade.outputs]
    ranks = {r.tensor: set(r.ranks) for e in computing for r in e.inputs()}
    ranks.update({e.output.tensor: set(e.output.ranks) for e in computing})
    rows = [t for t in (*cascade.inputs, *cascade.outputs) if block_rank in ranks.get(t, ())]
    staged = [t for t in cascade.inputs if t in ranks and block_rank not in ranks[t]]
    placement: dict[str, Any] = {t: {"levels": ["dram"]} for t in (*cascade.inputs, *cascade.outputs)}
    for e in computing:
        if e.output.tensor not in placement:
            placement[e.output.tensor] = {"levels": ["global_buffer" if e.output.tensor in fibres else "pe"]}
    group = (policy.groups or [None])[0]
    block_max = next((a.block_max for a in (group.alternatives if group else ()) if a.block_max is not None), None)
    on_chip: dict[str, Any] = {"traffic": {t: "chip" for t in fibres}, "spatial": {n: "output" for n in contractions},
                               "live": [*rows, *fibres], "staged": staged, "spill": 0}
    first = group.alternatives[0] if group is not None and group.alternatives else None
    if first is not None and first.fit == "fibres":   # the policy's block rule for the score rows (flat.yaml's)
        on_chip.update({key: value for key in ("fit", "block_sizes", "block_min", "block_max", "spill")
                        if (value := getattr(first, key)) is not None})
    data: dict[str, Any] = {
        "name": f"{cascade.name}-groups-default", "target": "spatial", "cascade": cascade.name,
        "description": f"default fusion-group mapping of {cascade.name}: FLAT's row-block fusion derived by analysis",
        "source": "attnsim map: defaults by analysis (mappers.cascade_defaults.default_groups_data; "
                  f"policy of {policy.name})",
        "binding": {"pe2d": contractions, "pe1d": [e.name for e in computing if e.name not in contractions]},
        "placement": placement,
        "groups": [{
            "name": "fused", "einsums": [e.name for e in computing], "block_rank": block_rank,
            "iteration": "block", "tile": {pass_rank: "pe2d.rows", block_rank: "pe2d.cols"},
            "live": rows, "staged": staged,
            "alternatives": [
                on_chip,
                {"traffic": {t: "dram" for t in fibres}, "spatial": {n: "weight" for n in contractions},
                 "live": rows, "staged": staged, **({"block_max": block_max} if block_max is not None else {})}],
        }],
    }
    if policy.charge is not None:
        data["charge"] = list(policy.charge)
    if group is not None:
        data["groups"][0]["op_overlap"] = group.op_overlap
        if group.fill_cycles is not None:
            data["groups"][0]["fill_cycles"] = group.fill_cycles
    if not contractions:
        data["binding"].pop("pe2d")
    return data


def retarget(mapping: MappingSpec, cascade: Cascade, arch: Arch) -> MappingSpec:
    """``mapping`` applied to a cascade other than the one it names: its policy (whether the Einsums run
    in series, which accesses are charged, masking, GQA packing) on the cascade's default loop nest, binding and placement
    (:func:`default_mapping_data`, the same Mapping-1 shape). Its Einsum-specific entries are dropped:
    a name such as AV may mean another Einsum in another cascade. A mapping that names no cascade, or
    this one, is returned unchanged."""
    if mapping.cascade is None or mapping.cascade == cascade.name or mapping.target != "spatial":
        return mapping
    if same_einsums(mapping.cascade, cascade):   # a variant (e.g. its causal mask): the names mean the same
        return mapping
    data = default_mapping_data(cascade, arch)
    if mapping.charge is not None:
        data["charge"] = list(mapping.charge)
    data["pipelining"] = {"serial": mapping.pipelining.serial}
    data["masking"] = mapping.masking.model_dump()   # policies that name no Einsum travel too
    data["pack_gqa"] = mapping.pack_gqa
    data["name"] = mapping.name
    data["description"] = f"{mapping.name}'s policy on cascade {cascade.name} (default loop nest)"
    data["source"] = mapping.source
    data["arch"] = mapping.arch or arch.name
    return mapping_from_data(data, mapping.origin)


def _einsum_signature(cascade: Cascade) -> tuple:
    """Each Einsum's output and input references (tensor and index text), filters left out."""
    return tuple((e.output.tensor, tuple(str(i.expr) for i in e.output.indices),
                  tuple(sorted((r.tensor, tuple(str(i.expr) for i in r.indices)) for r in e.inputs())))
                 for e in cascade.einsums)


def same_einsums(name: str, cascade: Cascade) -> bool:
    """Whether the built-in or file cascade ``name`` has ``cascade``'s Einsums, reference for reference, up
    to their filters and the cascade's name: a variant such as ``attention-1pass-causal`` of
    ``attention-1pass`` (a mapping written for one then applies to the other unchanged)."""
    from attnsim.einsum_ir import resolve_cascade
    from attnsim.einsum_ir.errors import CascadeError

    try:
        other = resolve_cascade(name)
    except CascadeError:
        return False
    return other.ranks == cascade.ranks and _einsum_signature(other) == _einsum_signature(cascade)


def default_mapping(cascade: Cascade, arch: Arch) -> MappingSpec:
    """:func:`default_mapping_data` validated."""
    return mapping_from_data(default_mapping_data(cascade, arch), f"<default mapping of {cascade.name}>")


__all__ = ["DEFAULT_GROUPS_MAPPING", "check_single_pass", "default_groups_data", "default_groups_mapping", "default_mapping", "retarget", "same_einsums", "default_mapping_data", "fusion_boundaries", "pass_analysis"]


def resolved_mapping_data(plan: Any, resolve_factors: bool = True) -> dict[str, Any]:
    """A :class:`mappers.cascade_plan.Plan` written back as a complete mapping (plain data): every
    Einsum bound, every tensor placed, ``charge`` explicit and -- with ``resolve_factors`` -- every
    loop factor and size a number. Loading it maps the same point to the same schedule."""
    from attnsim.mappers.cascade_plan import loop_names

    mapping = plan.mapping
    data = mapping.to_yaml_dict()
    data.pop("gpu", None)
    data["cascade"] = plan.work.cascade.name if plan.work.cascade.path is None or mapping.cascade is None \
        else mapping.cascade
    data["arch"] = mapping.arch or plan.arch.name
    loops = []
    names = loop_names(mapping.loops or [])
    for name, loop in zip(names, mapping.loops or []):
        entry = loop.model_dump(mode="json", exclude_none=True)
        if resolve_factors:
            entry["factor"] = plan.choices["loops"][name]
        loops.append(entry)
    data["loops"] = loops
    if resolve_factors:
        data["sizes"] = {name: plan.work.sizes[name] for name in mapping.sizes}
    order = (*plan.order, *plan.after)
    data["binding"] = {unit: [n for n in order if plan.binding[n] == unit] for unit in ("pe2d", "pe1d")
                       if any(plan.binding[n] == unit for n in order)}
    data["placement"] = {t: p.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
                         for t, p in plan.placement.items()}
    for entry in data["placement"].values():
        if entry.get("buffering") == "single":
            entry.pop("buffering")
    data["charge"] = sorted(plan.charge)
    return data
