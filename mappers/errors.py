"""The error type of the ``mappers`` layer."""
from __future__ import annotations


class MappingError(ValueError):
    """A workload cannot be mapped as asked (non-positive dimension, unknown dataflow, a buffer too
    small for the mapping ...). The message is one line naming the offending parameter and what was
    expected, e.g. ``gemm: M: expected a positive integer, got -3``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))
