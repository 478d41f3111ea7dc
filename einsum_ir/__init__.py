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
from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module that defines it. Imported on first use (PEP 562), so that a light user of
# one submodule (the command line's parser, a study reading einsum_ir.arith) does not pay for sympy,
# networkx and numpy.
_EXPORTS: dict[str, str] = {
    "CascadeError": "errors",
    **dict.fromkeys(("PRIMITIVES", "EinsumCost", "MapFunction", "ReduceOp", "einsum_cost", "expression_cost",
                     "function_names", "get_function", "get_reduce_op", "primitive_cost", "reduce_cost",
                     "reduce_op_names", "register_function", "register_reduce_op", "unregister_function"),
                    "functions"),
    "evaluate": "interpret",
    **dict.fromkeys(("builtin_names", "builtin_path", "load_builtin", "resolve_cascade"), "library"),
    **dict.fromkeys(("load_cascade", "load_cascade_text"), "loader"),
    **dict.fromkeys(("BinOp", "Call", "Cascade", "Const", "Einsum", "Expr", "Filter", "IndexExpr", "Neg", "Size",
                     "TensorRef", "rank_symbol", "shape_symbol"), "model"),
    **dict.fromkeys(("Step", "dependency_graph", "schedule"), "scheduling"),
    "parse_einsum": "syntax",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'attnsim.einsum_ir' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"attnsim.einsum_ir.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "BinOp", "Call", "Cascade", "CascadeError", "Const", "Einsum", "EinsumCost", "Expr", "Filter", "IndexExpr",
    "MapFunction", "Neg", "PRIMITIVES", "ReduceOp", "Size", "Step", "TensorRef", "builtin_names", "builtin_path",
    "dependency_graph", "einsum_cost", "evaluate", "expression_cost", "function_names", "get_function",
    "get_reduce_op", "load_builtin", "load_cascade", "load_cascade_text", "parse_einsum", "primitive_cost",
    "rank_symbol", "reduce_cost", "reduce_op_names", "register_function", "register_reduce_op",
    "resolve_cascade", "schedule", "shape_symbol", "unregister_function",
]
