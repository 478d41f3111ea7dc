"""numba reference kernels for softmax attention and its variants, independent of the Einsum IR.

Imports nothing else of ours: these kernels are the numerical oracle the IR is checked against.
"""
from attnsim.kernels_ref.api import ALGORITHMS, attention
from attnsim.kernels_ref.errors import KernelInputError
from attnsim.kernels_ref.fusemax import attention_fusemax
from attnsim.kernels_ref.one_pass import attention_1pass
from attnsim.kernels_ref.three_pass import attention_3pass
from attnsim.kernels_ref.two_pass import attention_2pass
from attnsim.kernels_ref.more_variants import (gated_attention, hedgehog_attention, lightning2_attention,
                                               lssa_attention, window_attention)
from attnsim.kernels_ref.variants import (VARIANTS, causal_linear_attention, clipped_softmax_attention,
                                          linear_attention, selective_temperature_attention, sigmoid_attention,
                                          softplus_attention, split_k_decode)

__all__ = [
    "ALGORITHMS",
    "KernelInputError",
    "attention",
    "attention_1pass",
    "attention_2pass",
    "attention_3pass",
    "attention_fusemax",
    "VARIANTS",
    "causal_linear_attention",
    "gated_attention",
    "hedgehog_attention",
    "lightning2_attention",
    "lssa_attention",
    "window_attention",
    "clipped_softmax_attention",
    "linear_attention",
    "selective_temperature_attention",
    "sigmoid_attention",
    "softplus_attention",
    "split_k_decode",
]
