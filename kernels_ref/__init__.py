"""numba reference kernels for softmax attention, independent of the Einsum IR.

Imports nothing else of ours: these kernels are the numerical oracle the IR is checked against.
"""
from kernels_ref.api import ALGORITHMS, attention
from kernels_ref.errors import KernelInputError
from kernels_ref.fusemax import attention_fusemax
from kernels_ref.one_pass import attention_1pass
from kernels_ref.three_pass import attention_3pass
from kernels_ref.two_pass import attention_2pass

__all__ = [
    "ALGORITHMS",
    "KernelInputError",
    "attention",
    "attention_1pass",
    "attention_2pass",
    "attention_3pass",
    "attention_fusemax",
]
