"""Extended-Einsum cascades: syntax, parser, cascades, dependency graph, interpreter, pass analysis.

This package is the bottom of attnsim's one-way data flow and imports nothing else of ours.

Main entry points::

    cascade = einsum_ir.load_cascade("specs/cascades/attention-1pass.yaml")   # or load_builtin(name)
    out = einsum_ir.evaluate(cascade, {"M": 1024, "P": 1024, "E": 64, "F": 64, "M0": 256},
                             {"Q": q_ep, "K": k_em, "V": v_fm})["AV"]
    einsum_ir.register_function("sigmoid2", lambda x: 1 / (1 + np.exp(-2 * x)))  # usable in Einsums now
    einsum_ir.primitive_cost("sigmoid")        # {"add": 1, "div": 1, "exp": 1}: what simulators charge

Built-in functions (sigmoid, softplus, tanh, log, sqrt, rsqrt, relu, elu, gelu, silu, abs, clip,
logaddexp, exp, max, min) and their costs in primitive operations: einsum_ir.functions.
"""
from attnsim.einsum_ir.errors import CascadeError
from attnsim.einsum_ir.functions import (PRIMITIVES, EinsumCost, MapFunction, ReduceOp, einsum_cost, expression_cost,
                                         function_names, get_function, get_reduce_op, primitive_cost, reduce_cost,
                                         reduce_op_names, register_function, register_reduce_op,
                                         unregister_function)
from attnsim.einsum_ir.interpret import evaluate
from attnsim.einsum_ir.library import builtin_names, builtin_path, load_builtin, resolve_cascade
from attnsim.einsum_ir.loader import load_cascade, load_cascade_text
from attnsim.einsum_ir.model import (BinOp, Call, Cascade, Const, Einsum, Expr, Filter, IndexExpr, Neg, Size,
                                     TensorRef, rank_symbol, shape_symbol)
from attnsim.einsum_ir.schedule import Step, dependency_graph, schedule
from attnsim.einsum_ir.syntax import parse_einsum

__all__ = [
    "BinOp", "Call", "Cascade", "CascadeError", "Const", "Einsum", "EinsumCost", "Expr", "Filter", "IndexExpr",
    "MapFunction", "Neg", "PRIMITIVES", "ReduceOp", "Size", "Step", "TensorRef", "builtin_names", "builtin_path",
    "dependency_graph", "einsum_cost", "evaluate", "expression_cost", "function_names", "get_function",
    "get_reduce_op", "load_builtin", "load_cascade", "load_cascade_text", "parse_einsum", "primitive_cost",
    "rank_symbol", "reduce_cost", "reduce_op_names", "register_function", "register_reduce_op",
    "resolve_cascade", "schedule", "shape_symbol", "unregister_function",
]
