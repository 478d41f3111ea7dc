"""numba reference kernels for softmax attention, independent of the Einsum IR.

Imports nothing else of ours: these kernels are the numerical oracle the IR is checked against.
"""
