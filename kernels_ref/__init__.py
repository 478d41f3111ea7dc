"""numba reference kernels for softmax attention, independent of the Einsum IR.

Imports nothing else of ours: these kernels are the numerical oracle the IR is checked against.
"""
from attnsim.kernels_ref.api import ALGORITHMS, attention
from attnsim.kernels_ref.errors import KernelInputError
from attnsim.kernels_ref.fusemax import attention_fusemax
from attnsim.kernels_ref.one_pass import attention_1pass
from attnsim.kernels_ref.three_pass import attention_3pass
from attnsim.kernels_ref.two_pass import attention_2pass

__all__ = [
    "ALGORITHMS",
    "KernelInputError",
    "attention",
    "attention_1pass",
    "attention_2pass",
    "attention_3pass",
    "attention_fusemax",
]
