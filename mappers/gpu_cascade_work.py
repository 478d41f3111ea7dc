"""What each Einsum of a cascade costs on a GPU SM, read from the cascade itself.

Nothing here names a particular Einsum. An Einsum's work is split into *pieces*, one per SM unit:

``tensor``  a contraction (a product of two tensors reduced with ``sum``): 2 FLOPs per point of its
            iteration space (one multiply-accumulate);
``mufu``    the transcendental primitives (``exp``, ``log``, ``sqrt``) of each map function's
            primitive cost (``einsum_ir.functions.primitive_cost``: sigmoid = 1/(1 + exp(-x)) is an
            add, an exp and a division), a reciprocal per division (once per divisor element when
            the divisor is broadcast over some of the output's ranks), an opaque function;
``fp32``    everything else on the FP32/ALU lanes: ``+ - *``, ``max``/``min``/``abs`` (1 op per point),
            a reduction that is not a contraction (1 combine per point), the multiply of a division,
            and these conversions and masks:

- *convert*: an operand of a contraction that another Einsum computed (it is in registers in FP32:
  an FP32-lane result or an accumulator) is packed to 16 bits first: 1/2 op per element (two elements per ``cvt`` instruction); a
  cascade output written to memory is converted the same way;
- *mask*: a contraction with a filter over ranks it keeps (``m <= p`` on the scores) has its masked
  tiles' results compared and selected: :data:`MASK_OPS_PER_POINT` ops per output point, on the tiles
  the filter cuts only (the mapper knows which);
- *FMA*: a product whose only reader is a sum of two tensors is fused into that sum's FMA (0 ops);
- *MMA accumulation*: a sum of two tensors one of which a contraction produces is done by the
  contraction's accumulator (0 ops); the sum joins the contraction's piece.

Views (an Einsum that only re-indexes an input, ``BK[e,m1,m0] = K[e, m1*M0 + m0]``) and
initialisations compute nothing; a read of a view is a read of its source input.

Element counts are taken per *tile*: ``extents`` gives every rank variable's extent within one CTA's
tile step (rows of the CTA or consumer, keys of the K/V tile, the full head dimensions; 1 for the
iterative rank).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from typing import Any

from attnsim.einsum_ir import BinOp, Call, Cascade, Einsum, Neg, TensorRef
from attnsim.einsum_ir.functions import primitive_cost
from attnsim.mappers.errors import MappingError

MASK_OPS_PER_POINT = 2.0
"""Causal mask on a tile the filter cuts: index compare (1) and select (1) per score."""
CONVERT_OPS_PER_ELEMENT = 0.5
"""FP32 -> 16-bit pack-convert: two elements per instruction."""
FP32_FUNCTIONS = frozenset({"max", "min", "abs"})
"""Map functions the FP32/ALU lanes compute in one op; every other function goes to the MUFU."""

MUFU_PRIMITIVES = frozenset({"exp", "log", "sqrt"})
"""Primitive operations the special-function unit computes (ex2, lg2, sqrt/rsqrt on NVIDIA SMs)."""
FP32_PRIMITIVES = frozenset({"add", "mul", "max", "min", "abs", "cmp"})
"""Primitive operations of one FP32/ALU instruction each."""

UNIT_TENSOR, UNIT_MUFU, UNIT_FP32 = "tensor", "mufu", "fp32"


@dataclass(frozen=True)
class Read:
    """A tensor an Einsum (piece) reads and how: ``tile`` (this tile's value), ``carried`` (the
    previous tile's iterate of a recurrence), ``final`` (the final iterate, after the loop),
    ``input`` (a cascade input, through its views)."""

    tensor: str
    relation: str


@dataclass(frozen=True)
class Piece:
    """One unit's share of an Einsum: ``per_point`` FLOPs/ops times the elements counted by
    ``count_ranks`` (rank variables whose tile extents multiply). ``kind``: main, convert, rcp, mask,
    output. ``reads``: the tensors this piece waits for."""

    einsum: str
    unit: str
    kind: str
    per_point: float
    count_ranks: tuple[str, ...]
    reads: tuple[Read, ...]

    def work(self, extents: Mapping[str, int]) -> float:
        """FLOPs (tensor) or ops (mufu, fp32) of this piece in one tile."""
        count = 1
        for rank in self.count_ranks:
            count *= extents.get(rank, 1)
        return self.per_point * count


@dataclass(frozen=True)
class GpuEinsum:
    """An Einsum as the GPU mappers see it. ``place``: ``tile`` (runs once per K/V tile: it iterates
    over the keys rank), ``post`` (after the loop: reads final iterates), ``pre`` (before the loop),
    ``merge`` (after the loop, over the split rank, or reading such an Einsum: the merge of split-K
    partials, run by the CTA itself when it holds every split, else by the merge phase)."""

    name: str
    tensor: str
    place: str
    pieces: tuple[Piece, ...]
    accumulates_into: str | None = None   # MMA accumulation: the contraction whose piece it joins
    filtered: bool = False


@dataclass(frozen=True)
class GpuCascadeWork:
    """Every computing Einsum of a cascade with its pieces, plus where inputs are read per tile."""

    cascade: Cascade
    einsums: dict[str, GpuEinsum]
    views: dict[str, str]                 # view tensor -> source input
    tile_inputs: tuple[str, ...]          # inputs indexed by the keys rank (loaded per K/V tile)
    cta_inputs: tuple[str, ...]           # inputs loaded once per CTA
    writer: dict[str, str] = field(default_factory=dict)   # tensor -> the Einsum computing it per tile

    def producer(self, tensor: str) -> str | None:
        """The Einsum whose pieces a read of ``tensor`` waits for (None for inputs and inits)."""
        return self.writer.get(tensor)

    def source(self, tensor: str) -> str:
        """The input a view reads, or ``tensor`` itself."""
        return self.views.get(tensor, tensor)


def _refs(expr: object) -> list[TensorRef]:
    if isinstance(expr, TensorRef):
        return [expr]
    if isinstance(expr, Call):
        return [r for a in expr.args for r in _refs(a)]
    if isinstance(expr, BinOp):
        return _refs(expr.left) + _refs(expr.right)
    if isinstance(expr, Neg):
        return _refs(expr.arg)
    return []


def _is_product(expr: object) -> bool:
    """A multiply, or a division by a constant (also a multiply), whose result an add can fuse."""
    return isinstance(expr, BinOp) and (expr.op == "*" or (expr.op == "/" and not _refs(expr.right)))


def _is_view(einsum: Einsum, inputs: set[str]) -> bool:
    return (isinstance(einsum.expr, TensorRef) and einsum.reduce_op is None and not einsum.reduced_ranks
            and einsum.expr.tensor in inputs and einsum.role == "plain")


def _is_contraction(einsum: Einsum) -> bool:
    expr = einsum.expr
    return (einsum.reduce_op in (None, "sum") and bool(einsum.reduced_ranks) and isinstance(expr, BinOp)
            and expr.op == "*" and isinstance(expr.left, TensorRef) and isinstance(expr.right, TensorRef))


def _is_pair(einsum: Einsum, op: str) -> bool:
    expr = einsum.expr
    return (not einsum.reduced_ranks and isinstance(expr, BinOp) and expr.op == op
            and isinstance(expr.left, TensorRef) and isinstance(expr.right, TensorRef))


def _relation(cascade: Cascade, ref: TensorRef) -> str:
    """How ``ref`` reads its tensor: tile, carried (previous iterate) or final."""
    if ref.tensor in cascade.iterative_dims:
        dim, rank = cascade.iterative_dims[ref.tensor]
        index = ref.indices[dim]
        if index.is_constant:
            return "final"
        coefficients, constant = index.affine()
        return "tile" if constant == 1 else "carried"
    return "input" if ref.tensor in cascade.inputs else "tile"


@dataclass(frozen=True)
class SpecialFunctions:
    """What the GPU's special-function unit computes: ``mufu`` names functions of one MUFU op each;
    ``forms`` maps a composite function to the parsed expression over ``x`` the SM evaluates it with
    (FlashSigmoid's ``sigmoid(x) = 0.5 tanh(0.5 x) + 0.5``). From the GPU spec's ``special_functions``."""

    mufu: frozenset[str] = MUFU_PRIMITIVES
    forms: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, mufu: frozenset[str] | None = None, forms: Mapping[str, str] | None = None) -> "SpecialFunctions":
        """Parse ``forms`` (function -> expression text over ``x``)."""
        from attnsim.einsum_ir.syntax import parse_function_body
        parsed = {name: parse_function_body(text, ("x",), line=1, source=f"form of {name}")
                  for name, text in sorted((forms or {}).items())}
        return cls(frozenset(mufu) if mufu is not None else MUFU_PRIMITIVES, parsed)


DEFAULT_SPECIAL = SpecialFunctions()


def _function_ops(name: str, local: Mapping[str, Any] | None,
                  special: SpecialFunctions = DEFAULT_SPECIAL) -> tuple[float, float]:
    """(fp32, mufu) ops of one application of map function ``name``: its form on this GPU when the
    spec gives one (costed like an Einsum expression, FMA fusion included), else its primitive cost
    (:func:`einsum_ir.functions.primitive_cost`, composites such as sigmoid expanded down to the
    functions the MUFU computes) with those on the MUFU, a division as a MUFU reciprocal and an FP32
    multiply, the rest on the FP32 lanes; an opaque function is one MUFU op."""
    if name in special.forms and not (local and name in local):
        fp32, mufu, divisors = _expr_ops(special.forms[name], frozenset(), f"form of {name}", local, special)
        return fp32, mufu + len(divisors)
    try:
        cost = primitive_cost(name, units=special.mufu, local=local)
    except KeyError:
        return 0.0, 1.0
    fp32 = mufu = 0.0
    for primitive, count in cost.items():
        if primitive in special.mufu:
            mufu += count
        elif primitive == "div":
            mufu += count
            fp32 += count
        elif primitive in FP32_PRIMITIVES:
            fp32 += count
        else:   # an opaque function (cost {name: 1}): the special-function unit
            mufu += count
    return fp32, mufu


def _scaled_by_constant(expr: object) -> bool:
    """``expr`` is a tensor times a constant, or that plus a constant: one FMA whose constants can
    absorb a further constant factor (``QK / sqrt(E) - log(M)`` scaled by 0.5 is still one FMA)."""
    if isinstance(expr, BinOp) and expr.op in "+-":
        sides = (expr.left, expr.right)
        return any(_is_product(side) and _scaled_by_constant(side) for side in sides) and \
            any(not _refs(side) for side in sides)
    return isinstance(expr, BinOp) and expr.op in "*/" and isinstance(expr.left, TensorRef) and not _refs(expr.right) \
        or isinstance(expr, BinOp) and expr.op == "*" and isinstance(expr.right, TensorRef) and not _refs(expr.left)


def _scales_argument(form: object) -> bool:
    """The form multiplies its argument ``x`` by a constant somewhere (``tanh(0.5 * x)``)."""
    if isinstance(form, BinOp):
        if form.op == "*" and any(isinstance(side, TensorRef) for side in (form.left, form.right)) and \
                any(not _refs(side) for side in (form.left, form.right)):
            return True
        return _scales_argument(form.left) or _scales_argument(form.right)
    if isinstance(form, Call):
        return any(_scales_argument(arg) for arg in form.args)
    if isinstance(form, Neg):
        return _scales_argument(form.arg)
    return False


def _expr_ops(expr: object, output_ranks: frozenset[str], where: str,
              local: Mapping[str, Any] | None = None,
              special: SpecialFunctions = DEFAULT_SPECIAL) -> tuple[float, float, list[TensorRef]]:
    """(fp32 ops per point, mufu ops per point, broadcast divisors) of an element-wise expression.

    A sub-expression that reads no tensor (``sqrt(E)``, ``log(M)``, literals) is a constant folded
    before the kernel runs (0 ops); a division by one is a multiply; an add or subtract taking a
    product (or such a division) directly is fused into it as one FMA."""
    if isinstance(expr, TensorRef) or not _refs(expr):
        return 0.0, 0.0, []
    if isinstance(expr, Neg):
        return _expr_ops(expr.arg, output_ranks, where, local, special)
    if isinstance(expr, Call):
        fp32, mufu, divisors = 0.0, 0.0, []
        for arg in expr.args:
            f, m, d = _expr_ops(arg, output_ranks, where, local, special)
            fp32, mufu, divisors = fp32 + f, mufu + m, divisors + d
        if expr.fn in FP32_FUNCTIONS:
            return fp32 + 1.0, mufu, divisors
        f, m = _function_ops(expr.fn, local, special)
        if (expr.fn in special.forms and len(expr.args) == 1 and _scaled_by_constant(expr.args[0])
                and _scales_argument(special.forms[expr.fn])):
            f -= 1.0   # the form's constant scale of x is pre-multiplied into the constant that computes x
        return fp32 + f, mufu + m, divisors
    if isinstance(expr, BinOp):
        fl, ml, dl = _expr_ops(expr.left, output_ranks, where, local, special)
        fr, mr, dr = _expr_ops(expr.right, output_ranks, where, local, special)
        divisors = dl + dr
        if expr.op == "/" and not _refs(expr.right):   # a constant divisor: multiply by its inverse
            return fl + 1.0, ml, divisors
        if expr.op in "+-" and any(_is_product(side) for side in (expr.left, expr.right)):
            return fl + fr, ml + mr, divisors              # a * b + c: the add is the product's FMA
        if expr.op == "/":
            if isinstance(expr.right, TensorRef) and expr.right.ranks < output_ranks:
                divisors.append(expr.right)   # one reciprocal per divisor element, then a multiply
                return fl + fr + 1.0, ml + mr, divisors
            return fl + fr + 1.0, ml + mr + 1.0, divisors
        return fl + fr + 1.0, ml + mr, divisors
    raise MappingError(f"{where}: cannot cost expression {expr!r}")


def gpu_cascade_work(cascade: Cascade, keys_ranks: frozenset[str],
                     special: SpecialFunctions = DEFAULT_SPECIAL,
                     split_ranks: frozenset[str] = frozenset()) -> GpuCascadeWork:
    """Analyse ``cascade`` for a GPU: ``keys_ranks`` are the rank variables of the rank the CTA walks
    in K/V tiles (e.g. ``{m, m1, m0}``); ``special`` what the GPU's MUFU computes (the spec's
    ``special_functions``); ``split_ranks`` the rank variables of the split rank (split-K)."""
    inputs = set(cascade.inputs)
    views: dict[str, str] = {}
    for einsum in cascade.einsums:
        if _is_view(einsum, inputs):
            views[einsum.output.tensor] = einsum.expr.tensor   # type: ignore[union-attr]
    computing = [e for e in cascade.einsums if e.role != "init" and e.output.tensor not in views]
    contraction = {e.output.tensor for e in computing if _is_contraction(e)}
    writer_einsum = {e.output.tensor: e for e in computing}
    readers: dict[str, list[Einsum]] = {}
    for einsum in computing:
        for ref in _refs(einsum.expr):
            readers.setdefault(ref.tensor, []).append(einsum)
    outputs = set(cascade.outputs)
    where = cascade.source

    def read(ref: TensorRef) -> Read:
        tensor = views.get(ref.tensor, ref.tensor)
        return Read(tensor, "input" if tensor in inputs else _relation(cascade, ref))

    def on_fp32(tensor: str) -> bool:   # computed in registers in FP32 (FP32 lanes or an accumulator)
        return writer_einsum.get(views.get(tensor, tensor)) is not None

    result: dict[str, GpuEinsum] = {}
    places: dict[str, str] = {}
    for einsum in computing:
        name, tensor = einsum.name, einsum.output.tensor
        ranks = tuple(einsum.iteration_ranks)
        out_ranks = tuple(einsum.output_ranks)
        refs = _refs(einsum.expr)
        reads = tuple(read(r) for r in refs)
        uses_keys = bool(set(ranks) & keys_ranks)
        after_loop = any(r.relation == "final" or places.get(writer_einsum[r.tensor].name) in ("tile", "post", "merge")
                         for r in reads if r.tensor in writer_einsum)
        merging = bool(set(ranks) & split_ranks) or any(
            places.get(writer_einsum[r.tensor].name) == "merge" for r in reads if r.tensor in writer_einsum)
        place = "tile" if uses_keys else ("merge" if after_loop and merging else "post" if after_loop else "pre")
        places[name] = place
        pieces: list[Piece] = []
        accumulates_into = None
        filtered = bool(einsum.filters) and _is_contraction(einsum) and all(
            f.ranks <= set(out_ranks) for f in einsum.filters)
        if _is_contraction(einsum):
            pieces.append(Piece(name, UNIT_TENSOR, "main", 2.0, ranks, reads))
            for ref in refs:
                if on_fp32(ref.tensor):
                    operand_ranks = tuple(i.rank_var for i in ref.indices if i.rank_var)
                    pieces.append(Piece(name, UNIT_FP32, "convert", CONVERT_OPS_PER_ELEMENT, operand_ranks,
                                        (read(ref),)))
            if filtered:
                pieces.append(Piece(name, UNIT_FP32, "mask", MASK_OPS_PER_POINT, out_ranks,
                                    (Read(tensor, "tile"),)))
        elif _is_pair(einsum, "+") and any(r.tensor in contraction for r in refs):
            accumulates_into = next(writer_einsum[r.tensor].name for r in refs if r.tensor in contraction)
            pieces.append(Piece(name, UNIT_TENSOR, "main", 0.0, out_ranks, reads))
        elif (_is_pair(einsum, "*") and len(readers.get(tensor, [])) == 1
              and _is_pair(readers[tensor][0], "+")
              and not any(r.tensor in contraction for r in _refs(readers[tensor][0].expr))):
            pieces.append(Piece(name, UNIT_FP32, "main", 0.0, out_ranks, reads))   # fused into an FMA
        else:
            fp32, mufu, divisors = _expr_ops(einsum.expr, frozenset(out_ranks), f"{where}: {name}",
                                             getattr(cascade, "functions", None), special)
            if einsum.reduce_op is not None and einsum.reduced_ranks:
                fp32 += 1.0
            count = ranks if einsum.reduced_ranks else out_ranks
            if mufu:
                pieces.append(Piece(name, UNIT_MUFU, "main", mufu, count, reads))
            for divisor in divisors:
                pieces.append(Piece(name, UNIT_MUFU, "rcp", 1.0,
                                    tuple(i.rank_var for i in divisor.indices if i.rank_var), (read(divisor),)))
            if fp32 or not pieces:
                pieces.append(Piece(name, UNIT_FP32, "main", fp32, count, reads))
        output = Piece(name, UNIT_FP32, "output", CONVERT_OPS_PER_ELEMENT, out_ranks, (Read(tensor, "tile"),))
        if tensor in outputs and place != "tile":
            pieces.append(output)
        result[name] = GpuEinsum(name, tensor, place, tuple(pieces), accumulates_into, filtered)
        if tensor in outputs and place == "tile":   # accumulated over the tiles: converted once, after
            result[f"{name}.out"] = GpuEinsum(f"{name}.out", tensor, "post", (output,))
    tile_inputs = tuple(t for t in cascade.inputs
                        if any(views.get(e.output.tensor) == t and set(e.iteration_ranks) & keys_ranks
                               for e in cascade.einsums)
                        or any(r.tensor == t and r.ranks & keys_ranks for e in computing for r in _refs(e.expr)))
    cta_inputs = tuple(t for t in cascade.inputs if t not in tile_inputs)
    writer = {e.output.tensor: e.name for e in computing}
    return GpuCascadeWork(cascade, result, views, tile_inputs, cta_inputs, writer)


__all__ = ["CONVERT_OPS_PER_ELEMENT", "DEFAULT_SPECIAL", "SpecialFunctions", "FP32_FUNCTIONS", "GpuCascadeWork", "GpuEinsum", "MASK_OPS_PER_POINT",
           "MUFU_PRIMITIVES", "FP32_PRIMITIVES", "Piece", "Read", "UNIT_FP32", "UNIT_MUFU", "UNIT_TENSOR", "gpu_cascade_work"]
