"""Extended-Einsum cascades: syntax, parser, cascades, dependency graph, interpreter, pass analysis.

This package is the bottom of attnsim's one-way data flow and imports nothing else of ours.

Main entry points::

    cascade = einsum_ir.load_cascade("specs/cascades/attention-1pass.yaml")   # or load_builtin(name)
    out = einsum_ir.evaluate(cascade, {"M": 1024, "P": 1024, "E": 64, "F": 64, "M0": 256},
                             {"Q": q_ep, "K": k_em, "V": v_fm})["AV"]
    einsum_ir.register_function("sigmoid", lambda x: 1 / (1 + np.exp(-x)))  # usable in Einsums now
"""
from attnsim.einsum_ir.errors import CascadeError
from attnsim.einsum_ir.functions import (MapFunction, ReduceOp, function_names, get_function, get_reduce_op,
                                 reduce_op_names, register_function, register_reduce_op, unregister_function)
from attnsim.einsum_ir.interpret import evaluate
from attnsim.einsum_ir.library import builtin_names, builtin_path, load_builtin, resolve_cascade
from attnsim.einsum_ir.loader import load_cascade, load_cascade_text
from attnsim.einsum_ir.model import (BinOp, Call, Cascade, Const, Einsum, Expr, Filter, IndexExpr, Neg, TensorRef,
                             rank_symbol, shape_symbol)
from attnsim.einsum_ir.schedule import Step, dependency_graph, schedule
from attnsim.einsum_ir.syntax import parse_einsum

__all__ = [
    "BinOp", "Call", "Cascade", "CascadeError", "Const", "Einsum", "Expr", "Filter", "IndexExpr", "MapFunction",
    "Neg", "ReduceOp", "Step", "TensorRef", "builtin_names", "builtin_path", "dependency_graph", "evaluate",
    "function_names", "get_function", "get_reduce_op", "load_builtin", "load_cascade", "load_cascade_text",
    "parse_einsum", "rank_symbol", "reduce_op_names", "register_function", "register_reduce_op",
    "resolve_cascade", "schedule", "shape_symbol", "unregister_function",
]
