"""Numerical check of a cascade: the Einsum interpreter against independent references.

Attention cascades (``attention:`` in their YAML) are compared with the numba kernel named by
``attention.algorithm`` (``kernels_ref.attention``, tile_m = M0 when the cascade partitions M) and with
a plain numpy softmax attention computed in fp64. Pedagogical cascades (``closed_form:``) are compared
with their closed form computed with numpy. Errors are normwise: ``max|a - b| / max|ref|``.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from attnsim import einsum_ir
from attnsim.einsum_ir import Cascade, shape_symbol
from attnsim.einsum_ir.library import is_cascade_path
from attnsim.studies.errors import UsageError

TOLERANCES = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
"""Largest normwise relative error that passes, per dtype."""

DEFAULT_SIZES = {"M": 1024, "P": 1024, "E": 64, "F": 64, "M0": 256, "K": 1024}
"""Sizes used when the user gives none (``attnsim check --all``)."""

DTYPES = {"fp64": np.dtype(np.float64), "fp32": np.dtype(np.float32)}


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check_cascade`; the headline errors are the worst over all references."""

    cascade: str
    sizes: dict[str, int]
    dtype: str
    max_abs_err: float
    max_rel_err: float
    passed: bool
    tolerance: float
    comparisons: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (keys as in the dataclass)."""
        return asdict(self)


def print_warnings(cascade: Cascade) -> None:
    """Print the cascade's load-time warnings to stderr, one line each (``attnsim: warning: ...``)."""
    for warning in cascade.warnings:
        print(f"attnsim: warning: {warning}", file=sys.stderr)


def cascade_from_arg(name: str) -> Cascade:
    """A built-in cascade by name, or the cascade in the YAML file at path ``name`` (CLI NAME argument)."""
    if name in einsum_ir.builtin_names():
        return einsum_ir.load_builtin(name)
    if is_cascade_path(name):
        return einsum_ir.load_cascade(name)
    raise UsageError(f"unknown cascade '{name}'; expected one of {', '.join(einsum_ir.builtin_names())} "
                     "or a path to a cascade YAML file")


def softmax_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False) -> np.ndarray:
    """Plain numpy softmax attention in fp64, row-major: q (P,E), k (M,E), v (M,F) -> (P,F).

    No 1/sqrt(E) scale; causal keeps key index m <= query index p.
    """
    scores = np.asarray(q, np.float64) @ np.asarray(k, np.float64).T
    if causal:
        keep = np.arange(scores.shape[1])[None, :] <= np.arange(scores.shape[0])[:, None]
        scores = np.where(keep, scores, -np.inf)
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ np.asarray(v, np.float64)


def _errors(actual: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    actual64 = np.asarray(actual, np.float64)
    reference64 = np.asarray(reference, np.float64)
    if actual64.shape != reference64.shape:
        raise UsageError(f"result shape {actual64.shape} differs from the reference shape {reference64.shape}")
    if not np.all(np.isfinite(actual64)):
        return {"max_abs_err": float("inf"), "max_rel_err": float("inf")}
    max_abs = float(np.max(np.abs(actual64 - reference64))) if actual64.size else 0.0
    scale = float(np.max(np.abs(reference64))) if reference64.size else 0.0
    return {"max_abs_err": max_abs, "max_rel_err": max_abs / scale if scale > 0 else max_abs}


def _z_dot_times_sum(rng: np.random.Generator, shapes: Mapping[str, tuple[int, ...]], dtype: np.dtype
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Inputs A[k], B[k] uniform in [0.5, 1.5) and the closed form Z = sum(A*B) * sum(A) (fp64)."""
    a = rng.uniform(0.5, 1.5, shapes["A"]).astype(dtype)
    b = rng.uniform(0.5, 1.5, shapes["B"]).astype(dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return {"A": a, "B": b}, {"Z": np.asarray(np.sum(a64 * b64) * np.sum(a64))}


CLOSED_FORMS: dict[str, Callable[..., tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]] = {
    "z-dot-times-sum": _z_dot_times_sum,
}
"""closed_form name -> fn(rng, input shapes, dtype) -> (inputs, expected outputs)."""


def check_cascade(cascade: Cascade, sizes: Mapping[str, int], seed: int = 0,
                  dtype: np.dtype | type = np.float64) -> CheckResult:
    """Evaluate ``cascade`` on random inputs (``np.random.default_rng(seed)``) and compare with references.

    ``sizes`` maps shape-symbol names to sizes (names the cascade does not use are ignored).
    Raises CascadeError for missing / non-divisible sizes, UsageError for a cascade with no reference.
    """
    dtype = np.dtype(dtype)
    if dtype not in TOLERANCES:
        raise UsageError(f"unsupported dtype {dtype}; expected one of fp32, fp64")
    resolved = cascade.resolve_sizes(dict(sizes))
    used_sizes = {s.name: resolved[s] for s in sorted(cascade.free_symbols(), key=lambda s: s.name)}
    shapes = {t: tuple(int(e.subs(resolved)) for e in shape) for t, shape in cascade.tensor_shapes.items()}
    rng = np.random.default_rng(seed)
    if "attention" in cascade.meta:
        comparisons = _check_attention(cascade, used_sizes, resolved, shapes, rng, dtype)
    elif cascade.meta.get("closed_form") in CLOSED_FORMS:
        inputs, expected = CLOSED_FORMS[cascade.meta["closed_form"]](rng, shapes, dtype)
        results = einsum_ir.evaluate(cascade, used_sizes, inputs, dtype)
        comparisons = {f"closed form {cascade.meta['closed_form']} ({name})": _errors(results[name], expected[name])
                       for name in expected}
    else:
        known = ", ".join(sorted(CLOSED_FORMS))
        raise UsageError(f"cascade {cascade.name} has no reference to check against; expected an "
                         f"'attention:' entry or 'closed_form:' one of {known}")
    tolerance = TOLERANCES[dtype]
    max_abs = max(c["max_abs_err"] for c in comparisons.values())
    max_rel = max(c["max_rel_err"] for c in comparisons.values())
    return CheckResult(cascade=cascade.name, sizes=used_sizes, dtype=_dtype_name(dtype), max_abs_err=max_abs,
                       max_rel_err=max_rel, passed=bool(max_rel <= tolerance), tolerance=tolerance,
                       comparisons=comparisons)


def _check_attention(cascade: Cascade, used_sizes: dict[str, int], resolved: dict, shapes: dict[str, tuple[int, ...]],
                     rng: np.random.Generator, dtype: np.dtype) -> dict[str, dict[str, float]]:
    for tensor in ("Q", "K", "V"):
        if tensor not in cascade.inputs or len(shapes[tensor]) != 2:
            raise UsageError(f"attention cascade {cascade.name} must read 2-D inputs Q[e,p], K[e,m], V[f,m]; "
                             f"{tensor} is missing or not 2-D")
    if "AV" not in cascade.outputs or len(shapes["AV"]) != 2:
        raise UsageError(f"attention cascade {cascade.name} must write a 2-D output AV[f,p]")
    (e_size, p_size), (_, m_size), (f_size, _) = shapes["Q"], shapes["K"], shapes["V"]
    q = rng.standard_normal((p_size, e_size)).astype(dtype)
    k = rng.standard_normal((m_size, e_size)).astype(dtype)
    v = rng.standard_normal((m_size, f_size)).astype(dtype)
    attention = cascade.meta["attention"]
    out = einsum_ir.evaluate(cascade, used_sizes, {"Q": q.T, "K": k.T, "V": v.T}, dtype)["AV"].T
    reference = softmax_attention(q, k, v, causal=attention["causal"])
    tile_m = resolved.get(shape_symbol("M0"))
    numba_out = _numba_attention(q, k, v, attention["algorithm"], attention["causal"], tile_m)
    return {
        f"numba {attention['algorithm']}": _errors(out, numba_out),
        "numpy softmax": _errors(out, reference),
    }


def _numba_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, algorithm: str, causal: bool,
                     tile_m: int | None) -> np.ndarray:
    try:
        from attnsim.kernels_ref import attention
    except ImportError as exc:
        raise UsageError(f"the numba reference kernels_ref.attention is not available ({exc})") from None
    return attention(q, k, v, algorithm, causal=causal, scale=1.0, tile_m=tile_m)


def _dtype_name(dtype: np.dtype) -> str:
    return next(name for name, value in DTYPES.items() if value == dtype)
