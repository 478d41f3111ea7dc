"""Reference interpreter: evaluates a cascade with numpy, one vectorised Einsum at a time.

Arrays are indexed in the order of the tensor's indices in the cascade (``Q[e,p]`` is an ``(E, P)``
array). Presence (fibertree "empty" points, docs/einsum-syntax.md) is tracked with a boolean mask per
tensor (``None`` means every point is present); absent points are stored as 0.

Evaluation order comes from :mod:`einsum_ir.scheduling`: Einsums outside any iterative loop run once over
their whole iteration space; the body of a loop over iterative rank ``r`` runs once per iterate with
``r`` fixed. A sum of products of tensor references goes to ``np.einsum(optimize=True)``; any other
Einsum is evaluated by broadcasting over its iteration space, chunked along one rank when that space
exceeds ``CHUNK_ELEMENTS`` points.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy

from attnsim.einsum_ir import functions
from attnsim.einsum_ir.errors import cascade_error
from attnsim.einsum_ir.model import (BinOp, Call, Cascade, Compare, Const, Einsum, Expr, Filter, IndexExpr, Neg,
                                     RankValue, Size, TensorRef, ValueFilter, _affine_parts)
from attnsim.einsum_ir.scheduling import schedule

CHUNK_ELEMENTS = 1 << 22
"""Largest iteration space (points) evaluated in one broadcast before chunking along a rank."""


@dataclass
class _Stored:
    """A tensor's values (absent points hold 0) and presence mask (None: all present)."""

    values: np.ndarray
    mask: np.ndarray | None


Masked = tuple[np.ndarray, "np.ndarray | None"]


def evaluate(cascade: Cascade, sizes: Mapping[str, int], inputs: Mapping[str, np.ndarray],
             dtype: np.dtype | type | None = None, *, keep_intermediates: bool = False) -> dict[str, np.ndarray]:
    """Evaluate ``cascade`` and return its output tensors (absent points read as 0).

    ``sizes`` maps shape-symbol names to sizes (extra names are ignored); ``inputs`` maps each input
    tensor to an array of the tensor's shape. ``dtype`` defaults to the inputs' common floating type
    (fp32 inputs give fp32 results). ``keep_intermediates=True`` returns every tensor, iterative
    tensors with all their iterates.
    """
    return _Evaluator(cascade, sizes, inputs, dtype).run(keep_intermediates)


class _Evaluator:
    def __init__(self, cascade: Cascade, sizes: Mapping[str, int], inputs: Mapping[str, np.ndarray],
                 dtype: np.dtype | type | None):
        self.cascade = cascade
        self.source = cascade.source
        self.symbol_sizes = cascade.resolve_sizes(dict(sizes))
        self.rank_sizes = {r: self.size_of(s) for r, s in cascade.ranks.items()}
        self.shapes = {t: tuple(self.size_of(e) for e in shape) for t, shape in cascade.tensor_shapes.items()}
        self.dtype = self._pick_dtype(inputs, dtype)
        self.storage: dict[str, _Stored] = {}
        self._index_cache: dict[sympy.Expr, tuple[dict[str, int], int]] = {}
        self._load_inputs(inputs)

    # -- setup -----------------------------------------------------------------------------------------
    def size_of(self, expr: sympy.Expr) -> int:
        value = sympy.sympify(expr).subs(self.symbol_sizes)
        if not value.is_integer:
            raise cascade_error(self.source, None, f"shape {expr} is not a whole number ({value})", str(expr),
                                "sizes that divide exactly")
        return int(value)

    def _pick_dtype(self, inputs: Mapping[str, np.ndarray], dtype: np.dtype | type | None) -> np.dtype:
        if dtype is not None:
            chosen = np.dtype(dtype)
        else:
            arrays = [np.asarray(inputs[n]) for n in self.cascade.inputs if n in inputs]
            chosen = np.result_type(*arrays) if arrays else np.dtype(np.float64)
        if not np.issubdtype(chosen, np.floating):
            chosen = np.dtype(np.float64)
        return chosen

    def _load_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        lines = self.cascade.tensor_lines
        first_input_line = lines.get(self.cascade.inputs[0]) if self.cascade.inputs else None
        for name in inputs:
            if name not in self.cascade.inputs:
                raise cascade_error(self.source, first_input_line, "unknown input tensor", name,
                                    f"one of {', '.join(self.cascade.inputs)}")
        for name in self.cascade.inputs:
            if name not in inputs:
                raise cascade_error(self.source, lines.get(name), "missing input tensor", name,
                                    f"arrays for {', '.join(self.cascade.inputs)}")
            array = np.asarray(inputs[name])
            expected = self.shapes[name]
            if array.shape != expected:
                symbols = ", ".join(str(s) for s in self.cascade.tensor_shapes[name])
                raise cascade_error(self.source, lines.get(name), f"input {name} has shape {array.shape}", name,
                                    f"shape ({symbols}) = {expected}")
            self.storage[name] = _Stored(np.array(array, dtype=self.dtype), None)

    # -- driver ----------------------------------------------------------------------------------------
    def run(self, keep_intermediates: bool) -> dict[str, np.ndarray]:
        steps = schedule(self.cascade.einsums, self.cascade.iterative_dims, self.cascade.iterative, self.source)
        with np.errstate(all="ignore"):
            for step in steps:
                if not step.is_loop:
                    self.run_einsum(step.einsums[0], {})
                    continue
                bound = self.size_of(self.cascade.iterative[step.rank])
                for iterate in range(bound):
                    for einsum in step.einsums:
                        self.run_einsum(einsum, {step.rank: iterate})
                for einsum in step.einsums:
                    self._compact_mask(einsum.output.tensor)
        names = self.storage if keep_intermediates else self.cascade.outputs
        return {name: self.storage[name].values for name in names}

    def _partial_storage(self, tensor: str, shape: tuple[int, ...]) -> _Stored:
        """The storage of ``tensor`` for a write of part of it: fresh zeros with nothing written yet when it
        has none of ``shape``, else the existing one with a mask (all written, when it had none)."""
        stored = self.storage.get(tensor)
        if stored is None or stored.values.shape != shape:
            stored = _Stored(np.zeros(shape, self.dtype), np.zeros(shape, bool))
            self.storage[tensor] = stored
        elif stored.mask is None:
            stored.mask = np.ones(shape, bool)
        return stored

    def _write_blocked(self, einsum: Einsum, out_free: list[str], fixed: dict[str, int], values: np.ndarray,
                       mask: np.ndarray | None) -> None:
        """Scatter an output block whose indices are affine (``t*B + i``; each point written once)."""
        tensor = einsum.output.tensor
        shape = self.shapes[tensor]
        stored = self._partial_storage(tensor, shape)
        ndim = len(out_free)
        keys = []
        for d, idx in enumerate(einsum.output.indices):
            coefficients, constant = self._index_parts(idx)
            total: np.ndarray | int = constant
            for rank, coefficient in coefficients.items():
                if rank in fixed:
                    total = total + coefficient * fixed[rank]
                else:
                    axis_shape = [1] * ndim
                    axis_shape[out_free.index(rank)] = self.rank_sizes[rank]
                    total = total + coefficient * np.arange(self.rank_sizes[rank]).reshape(axis_shape)
            keys.append(np.asarray(total))
        full = np.broadcast_shapes(*(k.shape for k in keys), np.shape(values))
        keys = tuple(np.broadcast_to(k, full) for k in keys)
        stored.values[keys] = np.broadcast_to(values, full)
        stored.mask[keys] = True if mask is None else np.broadcast_to(mask, full)
        self._compact_mask(tensor)

    def _compact_mask(self, tensor: str) -> None:
        stored = self.storage.get(tensor)
        if stored is not None and stored.mask is not None and stored.mask.all():
            stored.mask = None

    # -- one Einsum ----------------------------------------------------------------------------------------
    def run_einsum(self, einsum: Einsum, fixed: dict[str, int]) -> None:
        free = [r for r in einsum.iteration_ranks if r not in fixed]
        ranges = {r: (0, self.rank_sizes[r]) for r in free}
        out_free = [r for r in free if r not in einsum.reduced_ranks]
        fast = self._product_sum(einsum, free, fixed) if self._is_product_sum(einsum, fixed) else None
        if fast is not None:
            values, mask = fast, None
        else:
            values, mask = self._chunked(einsum, free, out_free, ranges, fixed)
        if einsum.reduce_op is not None and einsum.filters:
            mask = self._presence(einsum, free, out_free, ranges, fixed)
            if mask is not None:
                values = np.where(mask, values, np.zeros((), self.dtype))
        self._write(einsum, out_free, fixed, values, mask)

    def _presence(self, einsum: Einsum, free: list[str], out_free: list[str], ranges: dict[str, tuple[int, int]],
                  fixed: dict[str, int]) -> np.ndarray | None:
        """Output presence of a filtered reduction: a point is present iff some point reduced into it
        passes the filters (its values may all be absent: then it holds the operator's identity)."""
        axes = {r: i for i, r in enumerate(free)}
        keep = None
        for condition in einsum.filters:
            passed = self._filter(condition, axes, ranges, fixed, einsum)
            keep = passed if keep is None else (keep & passed)
        reduced_axes = tuple(axes[r] for r in free if r in einsum.reduced_ranks)
        keep = np.any(keep, axis=reduced_axes) if reduced_axes else keep
        keep = np.broadcast_to(keep, tuple(ranges[r][1] - ranges[r][0] for r in out_free))
        return None if keep.all() else np.array(keep)

    def _chunked(self, einsum: Einsum, free: list[str], out_free: list[str], ranges: dict[str, tuple[int, int]],
                 fixed: dict[str, int]) -> Masked:
        points = math.prod(stop - start for start, stop in ranges.values())
        if points <= CHUNK_ELEMENTS or not free:
            return self._space(einsum, free, ranges, fixed)
        candidates = out_free or free
        if not out_free and einsum.reduce_op is not None and self._reduce_op(einsum).index:
            return self._space(einsum, free, ranges, fixed)  # coordinates of parts cannot be combined
        rank = max(candidates, key=lambda r: ranges[r][1])
        extent = ranges[rank][1]
        step = max(1, (CHUNK_ELEMENTS * extent) // points)
        parts: list[Masked] = []
        for start in range(0, extent, step):
            sub = dict(ranges)
            sub[rank] = (start, min(extent, start + step))
            parts.append(self._space(einsum, free, sub, fixed))
        if rank in out_free:
            axis = out_free.index(rank)
            values = np.concatenate([p[0] for p in parts], axis=axis)
            if all(p[1] is None for p in parts):
                return values, None
            masks = [p[1] if p[1] is not None else np.ones(p[0].shape, bool) for p in parts]
            return values, np.concatenate(masks, axis=axis)
        op = self._reduce_op(einsum)
        values = parts[0][0]
        for part in parts[1:]:
            values = op.apply(values, part[0])
        return values, None

    def _space(self, einsum: Einsum, free: list[str], ranges: dict[str, tuple[int, int]],
               fixed: dict[str, int]) -> Masked:
        """Evaluate over the (chunk of the) iteration space, reduce, and return the output block."""
        axes = {r: i for i, r in enumerate(free)}
        shape = tuple(ranges[r][1] - ranges[r][0] for r in free)
        values, mask = self._expr(einsum.expr, einsum, axes, ranges, fixed)
        for condition in einsum.filters:
            keep = self._filter(condition, axes, ranges, fixed, einsum)
            mask = keep if mask is None else (mask & keep)
        values = np.broadcast_to(values, shape)
        if mask is not None:
            mask = np.broadcast_to(mask, shape)
        reduced_axes = tuple(axes[r] for r in free if r in einsum.reduced_ranks)
        if einsum.reduce_op is None or not reduced_axes:
            if mask is not None:
                values = np.where(mask, values, np.zeros((), self.dtype))
                if mask.all():
                    mask = None
            return np.array(values, dtype=self.dtype), (None if mask is None else np.array(mask))
        op = self._reduce_op(einsum)
        if mask is not None:
            values = np.where(mask, values, np.asarray(op.identity, self.dtype))
        reduced = op.reduce(values, reduced_axes)
        return np.asarray(reduced, dtype=self.dtype), None

    def _reduce_op(self, einsum: Einsum) -> functions.ReduceOp:
        op = functions.get_reduce_op(einsum.reduce_op, self.cascade.reduce_ops)
        if op is None:
            raise cascade_error(self.source, einsum.line, "unknown reduce operator", einsum.reduce_op,
                                f"one of {', '.join(functions.reduce_op_names(self.cascade.reduce_ops))}")
        return op

    # -- fast path: sum of products ------------------------------------------------------------------
    def _is_product_sum(self, einsum: Einsum, fixed: dict[str, int]) -> bool:
        if einsum.reduce_op != "sum" or einsum.value_filters:
            return False
        factors = _product_factors(einsum.expr)
        if factors is None:
            return False
        covered = {r for f in factors if isinstance(f, TensorRef) for r in f.ranks}
        if any(r not in covered and r not in fixed for r in einsum.output_ranks):
            return False
        for factor in factors:
            if isinstance(factor, TensorRef):
                seen = set()
                for idx in factor.indices:
                    if idx.is_constant:
                        continue
                    rank = idx.rank_var
                    if rank is None or (rank not in fixed and rank in seen):
                        return False
                    seen.add(rank)
        return True

    def _product_sum(self, einsum: Einsum, free: list[str], fixed: dict[str, int]) -> np.ndarray | None:
        """Sum of products with np.einsum; None when absent points meet non-finite values.

        Absent points are stored as 0, so they drop out of the sum, unless another factor is inf or
        NaN there (0 * inf); that rare case goes to the general path, which skips absent points.
        """
        letters = {r: chr(ord("a") + i) for i, r in enumerate(free)}
        operands: list[np.ndarray] = []
        subscripts: list[str] = []
        scale = np.ones((), self.dtype)
        masked = False
        for factor in _product_factors(einsum.expr):
            if isinstance(factor, Const):
                scale = scale * np.asarray(factor.value, self.dtype)
                continue
            if isinstance(factor, Size):
                scale = scale * np.asarray(self.size_of(factor.symbol), self.dtype)
                continue
            array, ranks = self._basic_view(factor, einsum, fixed)
            masked = masked or self.storage[factor.tensor].mask is not None
            operands.append(array)
            subscripts.append("".join(letters[r] for r in ranks))
        finite = all(np.all(np.isfinite(a)) for a in operands) if (masked or einsum.filters) else True
        if not np.isfinite(scale) or not finite:
            return None
        for condition in einsum.filters:
            keep, ranks = self._filter_compact(condition, free, fixed)
            operands.append(keep.astype(self.dtype))
            subscripts.append("".join(letters[r] for r in ranks))
        out = "".join(letters[r] for r in free if r not in einsum.reduced_ranks)
        result = np.einsum(",".join(subscripts) + "->" + out, *operands, optimize=True)
        return np.asarray(result * scale, dtype=self.dtype)

    def _basic_view(self, ref: TensorRef, einsum: Einsum, fixed: dict[str, int]) -> tuple[np.ndarray, list[str]]:
        """The stored tensor with fixed and constant indices applied; remaining dims are free ranks."""
        stored = self._stored(ref, einsum)
        key: list[int | slice] = []
        ranks: list[str] = []
        for d, idx in enumerate(ref.indices):
            rank = idx.rank_var
            if rank is not None and rank not in fixed:
                key.append(slice(None))
                ranks.append(rank)
            else:
                key.append(self._check_index(self._index_value(idx, fixed), ref, einsum, d))
        return stored.values[tuple(key)], ranks

    # -- general path: broadcasting -------------------------------------------------------------------
    def _expr(self, expr: Expr, einsum: Einsum, axes: dict[str, int], ranges: dict[str, tuple[int, int]],
              fixed: dict[str, int]) -> Masked:
        if isinstance(expr, Const):
            return np.asarray(expr.value, self.dtype), None
        if isinstance(expr, Size):
            return np.asarray(self.size_of(expr.symbol), self.dtype), None
        if isinstance(expr, RankValue):
            if expr.rank in fixed:
                return np.asarray(fixed[expr.rank], self.dtype), None
            shape = [1] * len(axes)
            start, stop = ranges[expr.rank]
            shape[axes[expr.rank]] = stop - start
            return np.arange(start, stop, dtype=self.dtype).reshape(shape), None
        if isinstance(expr, Compare):
            (a, ma) = self._expr(expr.left, einsum, axes, ranges, fixed)
            (b, mb) = self._expr(expr.right, einsum, axes, ranges, fixed)
            return functions.compare_values(a, b, expr.op).astype(self.dtype), _and_masks([ma, mb])
        if isinstance(expr, TensorRef):
            return self._gather(expr, einsum, axes, ranges, fixed)
        if isinstance(expr, Neg):
            values, mask = self._expr(expr.arg, einsum, axes, ranges, fixed)
            return -values, mask
        if isinstance(expr, BinOp):
            left = self._expr(expr.left, einsum, axes, ranges, fixed)
            right = self._expr(expr.right, einsum, axes, ranges, fixed)
            return self._binop(expr.op, left, right)
        if isinstance(expr, Call):
            entry = functions.get_function(expr.fn, self.cascade.functions)
            if entry is None:
                raise cascade_error(self.source, einsum.line, "unknown function", expr.fn,
                                    f"a registered function ({', '.join(functions.function_names())})")
            args = [self._expr(a, einsum, axes, ranges, fixed) for a in expr.args]
            if entry.merge == "union":
                return _union(entry.fn, args, entry.identity, self.dtype)
            values = entry.fn(*[a[0] for a in args])
            return np.asarray(values, dtype=self.dtype), _and_masks([a[1] for a in args])
        raise TypeError(f"not an Einsum expression node: {expr!r}")

    def _binop(self, op: str, left: Masked, right: Masked) -> Masked:
        (a, ma), (b, mb) = left, right
        if op == "*":
            return a * b, _and_masks([ma, mb])
        if op == "/":
            nonzero = b != 0
            values = np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape), self.dtype),
                               where=nonzero)
            return values, _and_masks([ma, mb, None if np.all(nonzero) else nonzero])
        if op == "+":
            return _union(np.add, [left, right], 0.0, self.dtype)
        if op == "-":
            return _union(np.subtract, [left, right], 0.0, self.dtype)
        raise ValueError(f"unknown operator {op!r}")

    def _gather(self, ref: TensorRef, einsum: Einsum, axes: dict[str, int], ranges: dict[str, tuple[int, int]],
                fixed: dict[str, int]) -> Masked:
        """Values and mask of ``ref`` over the iteration space, broadcastable to it."""
        stored = self._stored(ref, einsum)
        ndim = len(axes)
        simple = True
        used: list[str] = []
        for idx in ref.indices:
            rank = idx.rank_var
            if rank is not None and rank not in fixed:
                if rank in used:
                    simple = False
                used.append(rank)
            elif not idx.is_constant and any(r not in fixed for r in idx.ranks):
                simple = False
        if simple:
            key: list[int | slice] = []
            order: list[str] = []
            for d, idx in enumerate(ref.indices):
                rank = idx.rank_var
                if rank is not None and rank not in fixed:
                    key.append(slice(*ranges[rank]))
                    order.append(rank)
                else:
                    key.append(self._check_index(self._index_value(idx, fixed), ref, einsum, d))
            key_tuple = tuple(key)
            values = self._to_space(stored.values[key_tuple], order, axes, ndim)
            mask = None if stored.mask is None else self._to_space(stored.mask[key_tuple], order, axes, ndim)
            return values, (None if mask is None or mask.all() else mask)
        index_arrays = []
        for d, idx in enumerate(ref.indices):
            coefficients, constant = self._index_parts(idx)
            total: np.ndarray | int = constant
            for rank, coefficient in coefficients.items():
                if coefficient == 0:
                    continue
                if rank in fixed:
                    total = total + coefficient * fixed[rank]
                else:
                    shape = [1] * ndim
                    start, stop = ranges[rank]
                    shape[axes[rank]] = stop - start
                    total = total + coefficient * np.arange(start, stop).reshape(shape)
            total = np.asarray(total)
            if total.size and (total.min() < 0 or total.max() >= stored.values.shape[d]):
                raise cascade_error(self.source, einsum.line, "index out of range", str(ref),
                                    f"indices within 0..{stored.values.shape[d] - 1} in dimension {d} of {ref.tensor}")
            index_arrays.append(total.reshape((1,) * (ndim - total.ndim) + total.shape) if ndim else total)
        key_arrays = tuple(index_arrays)
        values = stored.values[key_arrays]
        mask = None if stored.mask is None else stored.mask[key_arrays]
        return values, (None if mask is None or mask.all() else mask)

    @staticmethod
    def _to_space(block: np.ndarray, order: list[str], axes: dict[str, int], ndim: int) -> np.ndarray:
        """Put a block whose dims are the ranks ``order`` onto the iteration-space axes."""
        if not order:
            return np.asarray(block).reshape((1,) * ndim)
        permutation = sorted(range(len(order)), key=lambda i: axes[order[i]])
        block = np.transpose(block, permutation)
        shape = [1] * ndim
        for i in permutation:
            shape[axes[order[i]]] = block.shape[permutation.index(i)]
        return block.reshape(shape)

    def _filter(self, condition: Filter | ValueFilter, axes: dict[str, int], ranges: dict[str, tuple[int, int]],
                fixed: dict[str, int], einsum: Einsum | None = None) -> np.ndarray:
        if isinstance(condition, ValueFilter):  # passes where both sides are present and compare true
            left, left_mask = self._expr(condition.lhs, einsum, axes, ranges, fixed)
            right, right_mask = self._expr(condition.rhs, einsum, axes, ranges, fixed)
            keep = functions.compare_values(left, right, condition.op)
            present = _and_masks([left_mask, right_mask])
            keep = keep if present is None else keep & present
            return np.asarray(keep).reshape((1,) * (len(axes) - np.ndim(keep)) + np.shape(keep))
        coefficients, constant = self._index_parts_expr(condition.lhs - condition.rhs, condition.ranks)
        ndim = len(axes)
        total: np.ndarray | int = constant
        for rank, coefficient in coefficients.items():
            if rank in fixed:
                total = total + coefficient * fixed[rank]
            else:
                shape = [1] * ndim
                start, stop = ranges[rank]
                shape[axes[rank]] = stop - start
                total = total + coefficient * np.arange(start, stop).reshape(shape)
        result = _compare(np.asarray(total), condition.op)
        return result.reshape((1,) * (ndim - result.ndim) + result.shape) if ndim else result

    def _filter_compact(self, condition: Filter, free: list[str],
                        fixed: dict[str, int]) -> tuple[np.ndarray, list[str]]:
        """The filter as a boolean array over just the free ranks it uses (for the einsum fast path)."""
        ranks = [r for r in free if r in condition.ranks]
        axes = {r: i for i, r in enumerate(ranks)}
        ranges = {r: (0, self.rank_sizes[r]) for r in ranks}
        keep = self._filter(condition, axes, ranges, fixed)
        return np.broadcast_to(keep, tuple(self.rank_sizes[r] for r in ranks)), ranks

    # -- indices ---------------------------------------------------------------------------------------
    def _index_parts(self, idx: IndexExpr) -> tuple[dict[str, int], int]:
        return self._index_parts_expr(idx.expr, idx.ranks)

    def _index_parts_expr(self, expr: sympy.Expr, ranks: frozenset[str]) -> tuple[dict[str, int], int]:
        cached = self._index_cache.get(expr)
        if cached is not None:
            return cached
        coefficients, constant = _affine_parts(expr, tuple(sorted(ranks)))
        result = ({r: self.size_of(c) for r, c in coefficients.items()}, self.size_of(constant))
        self._index_cache[expr] = result
        return result

    def _index_value(self, idx: IndexExpr, fixed: dict[str, int]) -> int:
        coefficients, constant = self._index_parts(idx)
        return constant + sum(c * fixed[r] for r, c in coefficients.items())

    def _check_index(self, value: int, ref: TensorRef, einsum: Einsum, dim: int) -> int:
        extent = self.shapes[ref.tensor][dim]
        if not 0 <= value < extent:
            raise cascade_error(self.source, einsum.line, "index out of range", str(ref),
                                f"indices within 0..{extent - 1} in dimension {dim} of {ref.tensor}")
        return value

    def _stored(self, ref: TensorRef, einsum: Einsum) -> _Stored:
        stored = self.storage.get(ref.tensor)
        if stored is None:  # the schedule guarantees producers run first
            raise cascade_error(self.source, einsum.line, "tensor read before it is written", str(ref),
                                "a schedulable cascade")
        return stored

    # -- output ----------------------------------------------------------------------------------------
    def _write(self, einsum: Einsum, out_free: list[str], fixed: dict[str, int], values: np.ndarray,
               mask: np.ndarray | None) -> None:
        tensor = einsum.output.tensor
        shape = self.shapes[tensor]
        if any(len(idx.ranks) > 1 for idx in einsum.output.indices):
            self._write_blocked(einsum, out_free, fixed, values, mask)
            return
        key: list[int | slice] = []
        order: list[str] = []
        for d, idx in enumerate(einsum.output.indices):
            rank = idx.rank_var
            if rank is not None and rank not in fixed:
                key.append(slice(None))
                order.append(rank)
            else:
                key.append(self._check_index(self._index_value(idx, fixed), einsum.output, einsum, d))
        permutation = [out_free.index(r) for r in order]
        values = np.transpose(values, permutation) if values.ndim else values
        if mask is not None:
            mask = np.transpose(mask, permutation) if mask.ndim else mask
        if len(order) == len(shape):
            self.storage[tensor] = _Stored(np.array(values, dtype=self.dtype), mask)
            return
        stored = self._partial_storage(tensor, shape)
        stored.values[tuple(key)] = values
        stored.mask[tuple(key)] = True if mask is None else mask


def _product_factors(expr: Expr) -> list[Expr] | None:
    """The factors of a pure product of tensor references and constants, else None."""
    if isinstance(expr, (TensorRef, Const, Size)):
        return [expr]
    if isinstance(expr, BinOp) and expr.op == "*":
        left, right = _product_factors(expr.left), _product_factors(expr.right)
        if left is None or right is None:
            return None
        return left + right
    return None


def _and_masks(masks: list[np.ndarray | None]) -> np.ndarray | None:
    present = [m for m in masks if m is not None]
    if not present:
        return None
    result = present[0]
    for mask in present[1:]:
        result = result & mask
    return result


def _union(fn, args: list[Masked], identity: float, dtype: np.dtype) -> Masked:
    """Apply ``fn`` with union presence: absent arguments take ``identity``; absent only if all are."""
    masks = [m for _, m in args]
    if all(m is None for m in masks):
        return np.asarray(fn(*[v for v, _ in args]), dtype=dtype), None
    fill = np.asarray(identity, dtype)
    filled = [v if m is None else np.where(m, v, fill) for v, m in args]
    values = np.asarray(fn(*filled), dtype=dtype)
    if any(m is None for m in masks):
        return values, None
    result = masks[0]
    for mask in masks[1:]:
        result = result | mask
    return values, result


def _compare(difference: np.ndarray, op: str) -> np.ndarray:
    """``lhs op rhs`` evaluated as ``(lhs - rhs) op 0``."""
    if op == "<":
        return difference < 0
    if op == "<=":
        return difference <= 0
    if op == ">":
        return difference > 0
    if op == ">=":
        return difference >= 0
    if op == "==":
        return difference == 0
    if op == "!=":
        return difference != 0
    raise ValueError(f"unknown comparison {op!r}")
