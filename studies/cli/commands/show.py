"""``attnsim show NAME``: print a cascade's ranks, shapes, tensors and Einsums."""
from __future__ import annotations

import argparse

from attnsim.einsum_ir import Cascade, functions
from attnsim.studies.check import cascade_from_arg, print_warnings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="print a cascade (ranks, shapes, Einsums)",
                                   description="Print a built-in cascade, or the cascade in a YAML file.")
    parser.add_argument("name", metavar="NAME", help="built-in cascade name (see 'attnsim cascades') or a YAML path")
    parser.set_defaults(func=run)


def describe(cascade: Cascade) -> str:
    """A human-readable listing of ``cascade``."""
    lines = [f"cascade      {cascade.name}", f"description  {cascade.description}"]
    if cascade.path is not None:
        lines.append(f"file         {cascade.path}")
    lines.append("ranks        " + ", ".join(f"{r}: {s}" for r, s in cascade.ranks.items()))
    if cascade.derived_shapes:
        lines.append("shapes       " + ", ".join(f"{s} = {e}" for s, e in cascade.derived_shapes.items()))
    lines.append("free sizes   " + ", ".join(sorted(s.name for s in cascade.free_symbols())))
    if cascade.iterative:
        lines.append("iterative    " + ", ".join(f"{r} (stop when {r} >= {b})" for r, b in cascade.iterative.items()))
    lines.append("inputs       " + ", ".join(cascade.inputs))
    lines.append("outputs      " + ", ".join(cascade.outputs))
    for key in ("pass_rank", "attention", "closed_form", "reference", "tolerance"):
        if key in cascade.meta:
            lines.append(f"{key:<12} {cascade.meta[key]}")
    if cascade.functions:
        lines.append("functions")
        for name, entry in cascade.functions.items():
            cost = functions.primitive_cost(name, local=cascade.functions)
            lines.append(f"  {name}({', '.join(entry.params)}) = {entry.definition}   cost {_format_cost(cost)}")
    if cascade.reduce_ops:
        lines.append("reduce ops")
        for name, op in cascade.reduce_ops.items():
            cost = functions.reduce_cost(name, local_functions=cascade.functions, local=cascade.reduce_ops)
            lines.append(f"  {name}: combine {op.combine}, identity {op.identity:g}   cost {_format_cost(cost)}")
    lines.append("tensors")
    for tensor, shape in cascade.tensor_shapes.items():
        kind = "input" if tensor in cascade.inputs else "output" if tensor in cascade.outputs else "intermediate"
        extra = ""
        if tensor in cascade.iterative_dims:
            dim, rank = cascade.iterative_dims[tensor]
            extra = f", iterative over {rank} in dimension {dim}"
        lines.append(f"  {tensor:<6} ({', '.join(str(s) for s in shape)})  {kind}{extra}")
    lines.append("einsums")
    width = max(len(e.source) for e in cascade.einsums)
    for einsum in cascade.einsums:
        notes = [einsum.role]
        if einsum.reduce_op is not None:
            notes.append(f"{einsum.reduce_op} over {', '.join(sorted(einsum.reduced_ranks))}")
        lines.append(f"  {einsum.line:>4}  {einsum.source:<{width}}  [{'; '.join(notes)}]")
    return "\n".join(lines)


def _format_cost(cost: dict[str, int]) -> str:
    """``exp + 3 add + div`` from {"exp": 1, "add": 3, "div": 1}."""
    return " + ".join(name if count == 1 else f"{count} {name}" for name, count in cost.items()) or "free"


def run(args: argparse.Namespace) -> int:
    cascade = cascade_from_arg(args.name)
    print_warnings(cascade)
    print(describe(cascade))
    return 0
