"""Numerical check of a cascade: the Einsum interpreter against independent references.

Attention cascades (``attention:`` in their YAML) are compared with the numba kernel named by
``attention.algorithm`` (``kernels_ref.attention``, tile_m = M0 when the cascade partitions M) and with
a plain numpy softmax attention computed in fp64. Pedagogical cascades (``closed_form:``) are compared
with their closed form computed with numpy. A cascade with ``reference: NAME`` is compared with another
cascade (a built-in name, or a YAML path relative to the cascade's file) on the same random inputs, or
with a ``kernels_ref`` variant reference (:data:`KERNEL_REFERENCES`). :func:`check_against` compares any
two cascades (``attnsim check A --against B``). Errors are normwise: ``max|a - b| / max|ref|``.

Inputs (:data:`INPUT_KINDS`): ``normal`` (standard normal), ``large`` (x 16: large logits), ``equal``
(every input constant along all but its first dimension: all-equal rows of scores), ``masked``
(inputs named ``MASK...`` get -inf at about a third of their points, never at index 0 of the first
dimension, so every row keeps a visible key).
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

DEFAULT_SIZES = {"M": 1024, "P": 1024, "E": 64, "F": 64, "M0": 256, "K": 1024, "S": 4, "N": 1024, "B": 64,
                 "D": 32, "W": 384}
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
    if "reference" in cascade.meta:
        return check_reference(cascade, sizes, (seed,), dtype)
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
        raise UsageError(f"cascade {cascade.name} has no reference to check against; expected a "
                         f"'reference:' entry, an 'attention:' entry or 'closed_form:' one of {known} "
                         "(or compare two cascades: attnsim check A --against B)")
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
    tile_m = resolved.get(shape_symbol("M0"))
    if attention["causal"] and p_size < m_size:
        # the causal cascades are end-aligned (the P queries are the last P of the M positions): the
        # references, start-aligned, run over M queries with q in the last P rows, keeping those rows
        full = np.concatenate([rng.standard_normal((m_size - p_size, e_size)).astype(dtype), q])
        reference = softmax_attention(full, k, v, causal=True)[m_size - p_size:]
        numba_out = _numba_attention(full, k, v, attention["algorithm"], True, tile_m)[m_size - p_size:]
    else:
        reference = softmax_attention(q, k, v, causal=attention["causal"])
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


# --- references named by the cascade, and cascade against cascade ----------------------------------

INPUT_KINDS = ("normal", "large", "equal", "masked")


def _qkv(inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-major q (P,E), k (M,E), v (M,F) from the cascade layout Q[e,p], K[e,m], V[f,m]."""
    return tuple(np.ascontiguousarray(np.asarray(inputs[name]).T) for name in ("Q", "K", "V"))


def _kernel_references() -> dict[str, tuple[Callable[[Mapping[str, np.ndarray], Mapping[str, int]], np.ndarray], str]]:
    from attnsim import kernels_ref as kr

    def sigmoid(x, sizes):
        return kr.sigmoid_attention(*_qkv(x)).T

    def softplus(x, sizes):
        return kr.softplus_attention(*_qkv(x), scale=1.0 / np.sqrt(sizes["E"])).T

    def linear(x, sizes):
        return kr.linear_attention(*_qkv(x)).T

    def causal_linear(x, sizes):
        return kr.causal_linear_attention(*_qkv(x)).T

    def clipped(x, sizes):
        return kr.clipped_softmax_attention(*_qkv(x), zeta=1.0, gamma=-0.03).T

    def temperature(x, sizes):
        return kr.selective_temperature_attention(*_qkv(x), np.asarray(x["TAU"])).T

    def split_k(x, sizes):
        return kr.split_k_decode(*_qkv(x), sizes["S"]).T

    def end_aligned(fn):
        """The causal cascades are end-aligned (the P queries are the last P of the M positions); the
        kernels are start-aligned: run them over M queries, the cascade's in the last P, keep those."""
        def run(x, sizes):
            q, keys = np.asarray(x["Q"]), np.asarray(x["K"]).shape[1]
            if q.shape[1] >= keys:
                return fn(x, sizes)
            padded = {**x, "Q": np.concatenate([np.zeros((q.shape[0], keys - q.shape[1]), q.dtype), q], axis=1)}
            return fn(padded, sizes)[:, keys - q.shape[1]:]
        return run

    @end_aligned
    def sigmoid_causal(x, sizes):
        return kr.sigmoid_attention(*_qkv(x), causal=True).T

    def lssa(x, sizes):
        return kr.lssa_attention(*_qkv(x)).T

    def hedgehog(x, sizes):
        return kr.hedgehog_attention(*_qkv(x), np.asarray(x["W"])).T

    def lightning2(x, sizes):
        return kr.lightning2_attention(*_qkv(x)).T

    def gated(x, sizes):
        return kr.gated_attention(*_qkv(x), np.asarray(x["GL"])).T

    @end_aligned
    def window(x, sizes):
        return kr.window_attention(*_qkv(x), sizes["W"]).T

    return {
        "sigmoid-attention": (sigmoid, "sigmoid(q.k/sqrt(E) - log(M)) v, summed over keys"),
        "softplus-attention": (softplus, "softplus(q.k/sqrt(E)) v / sum softplus(q.k/sqrt(E))"),
        "linear-attention": (linear, "phi(q).(sum phi(k) v^T) / phi(q).(sum phi(k)), phi = elu + 1"),
        "causal-linear-attention": (causal_linear, "linear attention over keys m <= p (M = P)"),
        "clipped-softmax-attention": (clipped, "clip(softmax(q.k) * 1.03 - 0.03, 0, 1) v (zeta 1, gamma -0.03)"),
        "selective-temperature-attention": (temperature, "softmax(TAU[p] * q.k) v, TAU an input (P,)"),
        "split-k-decode": (split_k, "softmax attention with the keys in S splits, merged (Flash-Decoding)"),
        "sigmoid-attention-causal": (sigmoid_causal, "sigmoid(q.k/sqrt(E) - log(M)) v over keys m <= p"),
        "lssa-attention": (lssa, "softplus(log(n) q.k/sqrt(E)), l1-normalised, times v (Gao & Spratling 2025)"),
        "hedgehog-attention": (hedgehog, "linear attention, phi(x) = [softmax(Wx), softmax(-Wx)] (Zhang et al. 2024)"),
        "lightning2-attention": (lightning2, "causal q^T sum_{m<=p} k_m v_m^T, no normaliser (Lightning-2, decay 1)"),
        "gated-attention": (gated, "sigmoid(GL[p]) softmax(q.k) v, GL the gate logits (Bondarenko et al. 2023)"),
        "window-attention": (window, "softmax over keys p - W < m <= p, times v (sliding window)"),
    }


KERNEL_REFERENCES = tuple(sorted(("sigmoid-attention", "softplus-attention", "linear-attention",
                                  "causal-linear-attention", "clipped-softmax-attention",
                                  "selective-temperature-attention", "split-k-decode", "sigmoid-attention-causal",
                                  "lssa-attention", "hedgehog-attention", "lightning2-attention", "gated-attention",
                                  "window-attention")))
"""kernels_ref references a cascade may name (``reference: NAME``); they read Q, K, V (and TAU) and
write AV in the cascade layout Q[e,p], K[e,m], V[f,m], AV[f,p]."""


def random_inputs(cascade: Cascade, shapes: Mapping[str, tuple[int, ...]], rng: np.random.Generator,
                  dtype: np.dtype, kind: str = "normal") -> dict[str, np.ndarray]:
    """Random inputs of ``cascade`` in the given shapes (see the module docstring for ``kind``)."""
    if kind not in INPUT_KINDS:
        raise UsageError(f"unknown input kind '{kind}'; expected one of {', '.join(INPUT_KINDS)}")
    masks = [name for name in cascade.inputs if name.upper().startswith("MASK")]
    if kind == "masked" and not masks:
        raise UsageError(f"--inputs masked needs an input named MASK...; cascade {cascade.name} reads "
                         f"{', '.join(cascade.inputs)}")
    arrays: dict[str, np.ndarray] = {}
    for name in cascade.inputs:
        shape = shapes[name]
        if kind == "equal":
            values = np.broadcast_to(rng.standard_normal(shape[:1] + (1,) * (len(shape) - 1)), shape)
        else:
            values = rng.standard_normal(shape) * (16.0 if kind == "large" else 1.0)
        if name.upper() == "TAU":  # a temperature: positive
            values = np.abs(values) + 0.25
        if kind == "masked" and name in masks:
            values = np.where(rng.uniform(size=shape) < 1 / 3, -np.inf, values)
            if values.ndim:
                values[0] = np.where(np.isinf(values[0]), 0.0, values[0])
        arrays[name] = np.array(values, dtype=dtype)
    return arrays


def _shapes(cascade: Cascade, sizes: Mapping[str, int]) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    resolved = cascade.resolve_sizes(dict(sizes))
    used = {s.name: resolved[s] for s in sorted(cascade.free_symbols(), key=lambda s: s.name)}
    shapes = {t: tuple(int(e.subs(resolved)) for e in shape) for t, shape in cascade.tensor_shapes.items()}
    return used, shapes


def _paired_outputs(a: Cascade, b: Cascade) -> list[tuple[str, str]]:
    common = [name for name in a.outputs if name in b.outputs]
    if common:
        return [(name, name) for name in common]
    if len(a.outputs) == len(b.outputs) == 1:
        return [(a.outputs[0], b.outputs[0])]
    raise UsageError(f"cascades {a.name} (outputs {', '.join(a.outputs)}) and {b.name} (outputs "
                     f"{', '.join(b.outputs)}) share no output; expected an output of the same name")


def check_against(cascade: Cascade, other: Cascade, sizes: Mapping[str, int], seeds: tuple[int, ...] = (0,),
                  dtype: np.dtype | type = np.float64, inputs: str = "normal",
                  tolerance: float | None = None) -> CheckResult:
    """Compare ``cascade`` with ``other`` on the same random inputs (one draw per seed).

    The cascades must read inputs of the same names and shapes; outputs of the same name are
    compared (or the only output of each). Raises UsageError when they cannot be compared.
    """
    dtype = _checked_dtype(dtype)
    used, shapes = _shapes(cascade, sizes)
    other_used, other_shapes = _shapes(other, sizes)
    if set(cascade.inputs) != set(other.inputs):
        raise UsageError(f"cascade {other.name} reads {', '.join(other.inputs)} but {cascade.name} reads "
                         f"{', '.join(cascade.inputs)}; expected the same inputs")
    for name in cascade.inputs:
        if shapes[name] != other_shapes[name]:
            raise UsageError(f"input {name} is {shapes[name]} in {cascade.name} but {other_shapes[name]} in "
                             f"{other.name}; expected the same shapes (sizes {_format(used | other_used)})")
    pairs = _paired_outputs(cascade, other)
    comparisons: dict[str, dict[str, float]] = {}
    for seed in seeds:
        x = random_inputs(cascade, shapes, np.random.default_rng(seed), dtype, inputs)
        mine = einsum_ir.evaluate(cascade, used, x, dtype)
        theirs = einsum_ir.evaluate(other, other_used, x, np.float64)
        for name, other_name in pairs:
            key = f"{other.name} ({other_name})"
            errors = _errors(mine[name], theirs[other_name])
            comparisons[key] = _worst(comparisons.get(key), errors)
    return _result(cascade, used | other_used, dtype, comparisons, tolerance)


def check_reference(cascade: Cascade, sizes: Mapping[str, int], seeds: tuple[int, ...] = (0,),
                    dtype: np.dtype | type = np.float64, inputs: str = "normal",
                    tolerance: float | None = None) -> CheckResult:
    """Compare ``cascade`` with the reference its ``reference:`` names (a cascade or a kernel)."""
    name = str(cascade.meta["reference"])
    if name in KERNEL_REFERENCES:
        return _check_kernel(cascade, name, sizes, seeds, dtype, inputs, tolerance)
    other = _reference_cascade(cascade, name)
    return check_against(cascade, other, sizes, seeds, dtype, inputs, tolerance)


def _reference_cascade(cascade: Cascade, name: str) -> Cascade:
    if name in einsum_ir.builtin_names():
        return einsum_ir.load_builtin(name)
    if is_cascade_path(name):
        from pathlib import Path
        path = Path(name)
        if not path.is_absolute() and cascade.path is not None:
            path = cascade.path.parent / path
        return einsum_ir.load_cascade(path)
    raise UsageError(f"{cascade.source}: unknown reference '{name}' (key reference); expected a built-in "
                     f"cascade ({', '.join(einsum_ir.builtin_names())}), a cascade YAML path, or a kernels_ref "
                     f"reference ({', '.join(KERNEL_REFERENCES)})")


_EXTRA_INPUTS = {"selective-temperature-attention": ("TAU",), "hedgehog-attention": ("W",),
                 "gated-attention": ("GL",)}
"""Inputs a kernel reference reads besides Q, K and V."""


def _check_kernel(cascade: Cascade, name: str, sizes: Mapping[str, int], seeds: tuple[int, ...], dtype: np.dtype,
                  inputs: str, tolerance: float | None) -> CheckResult:
    from attnsim.kernels_ref import KernelInputError
    dtype = _checked_dtype(dtype)
    used, shapes = _shapes(cascade, sizes)
    kernel, _ = _kernel_references()[name]
    needed = {"Q", "K", "V"} | set(_EXTRA_INPUTS.get(name, ()))
    if set(cascade.inputs) != needed or "AV" not in cascade.outputs:
        raise UsageError(f"reference {name} reads {', '.join(sorted(needed))} and writes AV; cascade "
                         f"{cascade.name} reads {', '.join(cascade.inputs)} and writes {', '.join(cascade.outputs)}")
    comparisons: dict[str, dict[str, float]] = {}
    for seed in seeds:
        x = random_inputs(cascade, shapes, np.random.default_rng(seed), dtype, inputs)
        out = einsum_ir.evaluate(cascade, used, x, dtype)["AV"]
        try:
            expected = kernel({k: np.asarray(v, np.float64) for k, v in x.items()}, used)
        except KernelInputError as exc:
            raise UsageError(f"reference {name}: {exc}") from None
        comparisons[f"numba {name} (AV)"] = _worst(comparisons.get(f"numba {name} (AV)"), _errors(out, expected))
    return _result(cascade, used, dtype, comparisons, tolerance)


def _worst(known: dict[str, float] | None, new: dict[str, float]) -> dict[str, float]:
    if known is None:
        return new
    return {key: max(known[key], new[key]) for key in new}


def _checked_dtype(dtype: np.dtype | type) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in TOLERANCES:
        raise UsageError(f"unsupported dtype {dtype}; expected one of fp32, fp64")
    return dtype


def _result(cascade: Cascade, sizes: dict[str, int], dtype: np.dtype, comparisons: dict[str, dict[str, float]],
            tolerance: float | None) -> CheckResult:
    limit = tolerance if tolerance is not None else cascade.meta.get("tolerance", TOLERANCES[dtype])
    max_abs = max(c["max_abs_err"] for c in comparisons.values())
    max_rel = max(c["max_rel_err"] for c in comparisons.values())
    return CheckResult(cascade=cascade.name, sizes=dict(sorted(sizes.items())), dtype=_dtype_name(dtype),
                       max_abs_err=max_abs, max_rel_err=max_rel, passed=bool(max_rel <= limit), tolerance=limit,
                       comparisons=comparisons)


def _format(sizes: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(sizes.items()))
