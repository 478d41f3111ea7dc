"""``attnsim arch SPEC [--set key=value ...] [--json]``: show a validated hardware spec and its area."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from attnsim.studies.cli.options import add_set_option, parse_key_values, table

if TYPE_CHECKING:
    from attnsim.archsim.spec import Arch


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "arch", help="validate a hardware spec and print its summary and area",
        description="Validate a hardware spec (a YAML path, or a name in specs/arch/) and print its "
                    "summary, energy table, area breakdown and total area in mm^2. GPU specs "
                    "(kind: gpu) print their validated contents.")
    parser.add_argument("spec", metavar="SPEC", help="path to an architecture YAML, or a name such as "
                                                     "fusemax-cloud")
    add_set_option(parser, "arrays.pe2d.rows=32")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def arch_report(arch: Arch) -> dict[str, Any]:
    """Everything ``attnsim arch --json`` prints (units in the key names)."""
    from attnsim.archsim.area import area_breakdown_um2, area_mm2

    return {
        "name": arch.name,
        "origin": arch.origin,
        "spec": arch.model_dump(mode="json", exclude_none=True),
        "pes_2d": arch.pes_2d,
        "pes_1d": arch.pes_1d,
        "words_per_row": arch.words_per_row,
        "dram_bytes_per_cycle": arch.dram_bytes_per_cycle,
        "area_breakdown_um2": area_breakdown_um2(arch),
        "area_mm2": area_mm2(arch),
    }


def _ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} {cycles}" for op, cycles in ops.items())


def summary_text(arch: Arch) -> str:
    """The human-readable summary ``attnsim arch`` prints."""
    from attnsim.archsim.area import area_breakdown_um2, area_mm2, instances

    pe2d, pe1d, glb, dram = arch.arrays.pe2d, arch.arrays.pe1d, arch.global_buffer, arch.dram
    lines = [
        f"{arch.name}: {arch.description}" if arch.description else arch.name,
        f"  spec file        {arch.origin}",
        f"  clock            {arch.clock_hz / 1e6:g} MHz",
        f"  word             {arch.word_bytes} B",
        f"  2D array         {pe2d.rows} x {pe2d.cols} = {arch.pes_2d} PEs; cycles per op: "
        f"{_ops_text(pe2d.ops.as_dict())}",
        f"  1D array         {pe1d.size} PEs; cycles per op: {_ops_text(pe1d.ops.as_dict())}",
        f"  global buffer    {glb.capacity_bytes} B = {glb.capacity_bytes // glb.row_bytes} rows x "
        f"{glb.row_bytes} B",
        f"  DRAM             {dram.bandwidth_bytes_per_s:.0f} B/s ({dram.bandwidth_bytes_per_s / 2**30:g} GiB/s) = "
        f"{arch.dram_bytes_per_cycle:.4f} "
        f"B/cycle, {dram.access_bytes} B per access",
        "energy (pJ; sources in the YAML or with --json):",
    ]
    lines.append(table([(key, entry.pj, f"per {entry.per}") for key, entry in arch.energy.items()],
                       indent="  "))
    lines.append("area:")
    totals = area_breakdown_um2(arch)
    rows = []
    for key, entry in arch.area.items():
        if entry.um2 is None:
            rows.append((key, f"counted in {entry.counted_in}", "", ""))
            continue
        count = instances(arch, key.partition(".")[0])
        rows.append((key, f"{entry.um2:.6g} um2", f"x {count}", f"= {totals[key] / 1e6:.4f} mm2"))
    lines.append(table(rows, indent="  "))
    lines.append(f"area_mm2: {area_mm2(arch):.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Load SPEC with the --set overrides; print the summary (or JSON). SpecError -> exit 2 (cli)."""
    from attnsim.archsim.gpu_spec import load_gpu
    from attnsim.archsim.spec import load_arch, spec_kind

    if spec_kind(args.spec) == "gpu":
        gpu = load_gpu(args.spec, parse_key_values(args.overrides))
        print(json.dumps(gpu.model_dump(mode="json", exclude_none=True), indent=None if args.json else 2))
        return 0
    arch = load_arch(args.spec, parse_key_values(args.overrides))
    if args.json:
        print(json.dumps(arch_report(arch), indent=2))
    else:
        print(summary_text(arch))
    return 0
