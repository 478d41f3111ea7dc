"""A vectorisable ``exp(y)`` for ``y <= 0`` in float32 or float64, for the 1-pass kernel's inner loops.

Without Intel SVML, LLVM turns ``math.exp`` into one libm call per element, which keeps numba from
vectorising the softmax loops. This version is plain arithmetic, so LLVM vectorises it:

    exp(y) = 2**t * exp(r),  t = round(y / ln 2),  r = y - t*ln 2 in [-ln2/2, ln2/2]

``r`` uses Cody-Waite splitting (``ln2 = LN2_HI + LN2_LO``, ``LN2_HI`` has 9 significant bits, so
``t * LN2_HI`` is exact); ``exp(r)`` is the degree-13 Taylor polynomial (truncation error below
5e-18 relative on that interval); ``2**t`` is added straight into the exponent bits. Relative error:
about 1e-7 (float32), about 3e-16 (float64). Below ``y_min`` (-86 for float32, -707 for float64,
where exp(y) < 5e-38 resp. 1e-307) the result is 0, which also covers ``y = -inf``.

The constants reach the jitted code as a NamedTuple of the working dtype: a tuple is a value, so
LLVM knows stores into arrays cannot change it (constants read from an array defeat vectorisation),
and typed constants keep float32 arithmetic in float32.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LOG2_E = 1.4426950408889634  # 1 / ln 2
LN2_HI = 0.693359375  # 355/512: 9 significant bits
LN2_LO = -2.12194440054690582767878541823432e-4  # ln 2 - LN2_HI
TAYLOR_DEGREE = 13
Y_MIN = {np.dtype(np.float32): -86.0, np.dtype(np.float64): -707.0}


class ExpConstants(NamedTuple):
    """Constants of ``exp_nonpositive`` in the working dtype (built by ``exp_constants``)."""

    log2_e: float
    ln2_hi: float
    ln2_lo: float
    y_min: float
    half: float
    zero: float
    one: float
    taylor: tuple  # 1/n! for n = 0..TAYLOR_DEGREE


def exp_constants(dtype: np.dtype) -> ExpConstants:
    """The constants for ``dtype`` (float32 or float64), each a numpy scalar of that dtype."""
    dtype = np.dtype(dtype)
    cast = dtype.type
    return ExpConstants(
        log2_e=cast(LOG2_E),
        ln2_hi=cast(LN2_HI),
        ln2_lo=cast(LN2_LO),
        y_min=cast(Y_MIN[dtype]),
        half=cast(0.5),
        zero=cast(0.0),
        one=cast(1.0),
        taylor=tuple(cast(1.0 / math.factorial(n)) for n in range(TAYLOR_DEGREE + 1)),
    )


@intrinsic
def _times_power_of_two(typingctx, mantissa, exponent):  # noqa: ARG001 (numba's signature)
    """``mantissa * 2**exponent`` by adding ``exponent`` to the exponent bits (result must be normal)."""
    if not (isinstance(mantissa, types.Float) and mantissa == exponent):
        return None
    width = mantissa.bitwidth
    mantissa_bits = 23 if width == 32 else 52

    def codegen(context, builder, signature, args):  # noqa: ARG001
        mantissa_value, exponent_value = args
        int_type = ir.IntType(width)
        shifted = builder.shl(builder.fptosi(exponent_value, int_type), ir.Constant(int_type, mantissa_bits))
        bits = builder.add(builder.bitcast(mantissa_value, int_type), shifted)
        return builder.bitcast(bits, mantissa_value.type)

    return mantissa(mantissa, exponent), codegen


@numba.njit(cache=True, inline="always")
def exp_nonpositive(y, c):
    """exp(y) for y <= 0 (y may be -inf), in y's float dtype; ``c = exp_constants(dtype)``."""
    underflow = y < c.y_min
    y = y if y > c.y_min else c.y_min
    t = np.floor(y * c.log2_e + c.half)
    r = (y - t * c.ln2_hi) - t * c.ln2_lo
    a = c.taylor
    p = a[13]
    p = p * r + a[12]
    p = p * r + a[11]
    p = p * r + a[10]
    p = p * r + a[9]
    p = p * r + a[8]
    p = p * r + a[7]
    p = p * r + a[6]
    p = p * r + a[5]
    p = p * r + a[4]
    p = p * r + a[3]
    p = p * r + a[2]
    p = p * r + a[1]
    p = p * r + a[0]
    result = _times_power_of_two(p, t)
    return c.zero if underflow else result


@numba.njit(cache=True)
def exp_nonpositive_array(y, c):
    """``exp_nonpositive`` over a 1-D array (for tests and callers outside jitted code)."""
    out = np.empty_like(y)
    for i in range(y.shape[0]):
        out[i] = exp_nonpositive(y[i], c)
    return out
