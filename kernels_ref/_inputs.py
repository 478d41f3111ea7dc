"""Argument checking shared by every kernel's Python entry point (plain Python, not jitted)."""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from attnsim.kernels_ref.errors import KernelInputError

SUPPORTED_DTYPES: tuple[np.dtype, ...] = (np.dtype(np.float32), np.dtype(np.float64))


class AttentionInputs(NamedTuple):
    """Checked kernel arguments: C-contiguous arrays of one dtype and scalars of that dtype."""

    q: np.ndarray  # (P, E) queries
    k: np.ndarray  # (M, E) keys
    v: np.ndarray  # (M, F) values
    causal: bool
    scale: np.floating  # multiplies the logits, already cast to the arrays' dtype
    tile_m: int  # key tile / partition size, in keys (0 where the algorithm does not tile)


def _check_array(function: str, name: str, array: object) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if array.dtype not in SUPPORTED_DTYPES:
        raise KernelInputError(f"{function}: {name} has dtype {array.dtype}; expected float32 or float64")
    if array.ndim != 2:
        raise KernelInputError(f"{function}: {name} must be 2-D, got shape {array.shape}")
    if 0 in array.shape:
        raise KernelInputError(f"{function}: {name} must have no empty axis, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise KernelInputError(f"{function}: {name} contains NaN or infinity; expected finite values")
    return np.ascontiguousarray(array)


def check_inputs(
    function: str,
    q: object,
    k: object,
    v: object,
    causal: bool,
    scale: float | None,
    tile_m: int | None,
    default_tile_m: int | None,
) -> AttentionInputs:
    """Validate and normalise the arguments of ``function``; raise ``KernelInputError`` on bad input.

    ``default_tile_m`` is used when ``tile_m`` is None; None there means tile_m is required. An
    algorithm that does not tile passes 0 and gets 0 back (a given tile_m is still checked).
    """
    q_arr = _check_array(function, "q", q)
    k_arr = _check_array(function, "k", k)
    v_arr = _check_array(function, "v", v)
    if not (q_arr.dtype == k_arr.dtype == v_arr.dtype):
        raise KernelInputError(
            f"{function}: q, k, v must share one dtype, got {q_arr.dtype}, {k_arr.dtype}, {v_arr.dtype}"
        )
    if q_arr.shape[1] != k_arr.shape[1]:
        raise KernelInputError(
            f"{function}: q is (P, E) = {q_arr.shape} and k is (M, E) = {k_arr.shape}; their E differ"
        )
    if k_arr.shape[0] != v_arr.shape[0]:
        raise KernelInputError(
            f"{function}: k is (M, E) = {k_arr.shape} and v is (M, F) = {v_arr.shape}; their M differ"
        )
    if not isinstance(causal, (bool, np.bool_)):
        raise KernelInputError(f"{function}: causal must be a bool, got {causal!r}")
    if scale is None:
        scale_value = 1.0
    elif isinstance(scale, numbers.Real) and not isinstance(scale, bool) and math.isfinite(scale):
        scale_value = float(scale)
    else:
        raise KernelInputError(f"{function}: scale must be a finite real number or None, got {scale!r}")
    if tile_m is None:
        if default_tile_m is None:
            raise KernelInputError(f"{function}: tile_m (the key tile size M0) is required")
        tile = default_tile_m
    elif isinstance(tile_m, numbers.Integral) and not isinstance(tile_m, bool) and tile_m >= 1:
        tile = int(tile_m) if default_tile_m != 0 else 0
    else:
        raise KernelInputError(f"{function}: tile_m must be a positive integer, got {tile_m!r}")
    return AttentionInputs(
        q=q_arr, k=k_arr, v=v_arr, causal=bool(causal), scale=q_arr.dtype.type(scale_value), tile_m=tile
    )
