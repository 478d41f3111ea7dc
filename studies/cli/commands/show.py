"""``attnsim show NAME``: print a cascade's ranks, shapes, tensors and Einsums."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attnsim.einsum_ir import Cascade


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
    for key in ("pass_rank", "attention", "closed_form"):
        if key in cascade.meta:
            lines.append(f"{key:<12} {cascade.meta[key]}")
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


def run(args: argparse.Namespace) -> int:
    """Print the cascade NAME (a built-in or a YAML path)."""
    from attnsim.studies.check import cascade_from_arg

    print(describe(cascade_from_arg(args.name)))
    return 0
