"""``attnsim map --cascade C [--arch A] [--mapping BASE] [--model M --seq N]``: print the mapping that the
defaults produce (or BASE completed by them) as YAML that can be saved, edited and passed back to
``attnsim simulate --mapping FILE``, with the tile sizes, placements and binding, and the pass
analysis's reason for each fusion boundary as comments."""
from __future__ import annotations

import argparse

from attnsim.mappers.mapping_spec import available_mappings
from attnsim.studies.errors import UsageError

NOMINAL_MODEL = "bert-base"
"""Without --model/--seq, binding and placement are derived at this model (they do not depend on sizes)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "map", help="print the default (or a completed) mapping of a cascade as editable YAML",
        description="Derive a mapping by analysis (fusion from the pass analysis, binding from operator "
                    "support, placement from live footprints, tiles from the buffer) and print it as YAML.")
    parser.add_argument("--cascade", required=True, help="a built-in cascade or a cascade YAML file")
    parser.add_argument("--arch", default=None, help="architecture in specs/arch/ or a YAML path "
                                                     "(default: the base mapping's, else fusemax-cloud)")
    parser.add_argument("--mapping", default=None,
                        help="a base mapping to complete (" + ", ".join(available_mappings()) + " or a file)")
    parser.add_argument("--model", default=None, help="resolve tile sizes for this workload (with --seq)")
    parser.add_argument("--seq", default=None, help="resolve tile sizes at this sequence length (with --model)")
    parser.set_defaults(func=run)


def _comments(cascade, analysis, plan, resolved: bool) -> list[str]:  # type: ignore[no-untyped-def]
    from attnsim.mappers.cascade_defaults import fusion_boundaries

    lines = [f"# attnsim map: cascade {cascade.name} on {plan.arch.name}"
             + (f", {plan.workload.name} at seq {plan.work.sizes.get('M')}" if resolved else "")]
    lines.append(f"# pass analysis: {analysis.passes} pass over {analysis.rank}; one fused group: "
                 + " ".join(analysis.fusable_groups[0]))
    boundaries = fusion_boundaries(analysis)
    if not boundaries:
        lines.append(f"# fusion boundaries: none (no Einsum needs a summary of {analysis.rank} before the pass "
                     "ends: every reduction over it is carried by a recurrence over the iterative rank)")
    for b in boundaries:
        lines.append(f"# fusion boundary after pass {b['after_pass']}: {b['reason']}")
    if resolved:
        used = {r for w in plan.work.compute for r in w.iteration_ranks}
        tile = ", ".join(f"{r} {n}" for r, n in plan.tile.items() if n > 1 and r in used)
        block = ", ".join(f"{r} {n}" for r, n in plan.block_tile.items() if n > 1 and r in used)
        lines.append(f"# tile (one {plan.iterative_rank} iteration on the arrays): {tile}")
        lines.append(f"# block resident in the global buffer: {block}; {plan.glb_bytes} of "
                     f"{plan.arch.global_buffer.capacity_bytes} bytes (one copy of each live tensor)")
        lines.append(f"# groups {plan.groups} x {plan.iterative_rank} iterations {plan.iterations} x blocks "
                     f"{plan.choices['inner_iterations']}")
    else:
        lines.append("# tile sizes: give --model and --seq to resolve the loop factors")
    return lines


def run(args: argparse.Namespace) -> int:
    if (args.model is None) != (args.seq is None):
        raise UsageError("--model and --seq go together (they resolve the tile sizes)")
    import yaml

    from attnsim.archsim.spec import load_arch
    from attnsim.mappers.cascade_defaults import default_mapping, pass_analysis, resolved_mapping_data, retarget
    from attnsim.mappers.cascade_mapper import load_cascade_arg
    from attnsim.mappers.cascade_plan import build_plan
    from attnsim.mappers.mapping_spec import load_mapping
    from attnsim.mappers.workloads import load_workload
    from attnsim.studies.cli.options import parse_count

    cascade = load_cascade_arg(args.cascade)
    base = load_mapping(args.mapping) if args.mapping else None
    analysis = pass_analysis(cascade)
    if (base is not None and base.groups is not None) or (base is None and analysis.passes > 1):
        return _run_groups(args, cascade, analysis, base)
    arch = load_arch(args.arch or (base.arch if base and base.arch else "fusemax-cloud"))
    mapping = retarget(base, cascade, arch) if base is not None else default_mapping(cascade, arch)
    resolved = args.model is not None
    workload = load_workload(args.model or NOMINAL_MODEL)
    seq = parse_count(args.seq, "--seq") if resolved else arch.arrays.pe2d.rows * arch.arrays.pe2d.cols
    plan = build_plan(cascade, mapping, workload, seq, arch)
    data = resolved_mapping_data(plan, resolve_factors=resolved)
    if cascade.path is not None and args.cascade.endswith((".yaml", ".yml")):
        data["cascade"] = args.cascade
    print("\n".join(_comments(cascade, analysis, plan, resolved)))
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True), end="")
    return 0


def _run_groups(args: argparse.Namespace, cascade, analysis, base) -> int:  # type: ignore[no-untyped-def]
    """A multi-pass cascade: its fusion-group mapping (the base, else the default by analysis), printed with
    the pass analysis's boundaries; with --model/--seq every group's choice at that point made explicit."""
    import yaml

    from attnsim.archsim.spec import load_arch
    from attnsim.mappers.cascade_defaults import default_groups_mapping, fusion_boundaries
    from attnsim.mappers.cascade_groups import map_groups, resolved_groups_data
    from attnsim.mappers.workloads import load_workload
    from attnsim.studies.cli.options import parse_count

    mapping = base if base is not None else default_groups_mapping(cascade)
    arch = load_arch(args.arch or mapping.arch or "flat-cloud")
    resolved = args.model is not None
    workload = load_workload(args.model or NOMINAL_MODEL)
    seq = parse_count(args.seq, "--seq") if resolved else arch.arrays.pe2d.rows * arch.arrays.pe2d.cols
    mapped = map_groups(cascade, mapping, workload, seq, arch)
    lines = [f"# attnsim map: cascade {cascade.name} on {arch.name}"
             + (f", {workload.name} at seq {seq}" if resolved else "")]
    lines.append(f"# pass analysis: {analysis.passes} passes over {analysis.rank}; fusion groups: "
                 + "; ".join(f"{g.name} = {' '.join(g.einsums)}" for g in mapping.groups or ()))
    for b in fusion_boundaries(analysis):
        lines.append(f"# fusion boundary after pass {b['after_pass']}: {b['reason']}")
    for g in mapping.groups or ():
        passes = sorted({analysis.einsum_pass[n] for n in g.einsums})
        if len(passes) > 1:
            lines.append(f"# group {g.name} fuses passes {passes}: one iteration holds the whole of "
                         f"{analysis.rank} (the rank is not tiled), so each pass sees the full fibre")
    if resolved:
        for name, group in mapped.choices["groups"].items():
            lines.append(f"# group {name}: {group['blocks_per_head']} blocks of {group['block']} along "
                         f"{group['block_rank']} per head, {group['iterations']} iterations, spill "
                         f"{group['spill_fraction']:.6g} (from {group['source']})")
        data = resolved_groups_data(mapping, mapped)
    else:
        lines.append("# block sizes: give --model and --seq to resolve each group's choice at a point")
        data = mapping.to_yaml_dict()
        data["cascade"] = cascade.name
    data["arch"] = arch.name
    if cascade.path is not None and args.cascade.endswith((".yaml", ".yml")):
        data["cascade"] = args.cascade
    print("\n".join(lines))
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True), end="")
    return 0
