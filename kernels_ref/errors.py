"""The error type of the ``kernels_ref`` layer."""
from __future__ import annotations


class KernelInputError(ValueError):
    """The arguments of an attention kernel are wrong (dtype, shape, tile size, algorithm name, ...).

    The message is one line that names the function, the argument and what was expected, e.g.
    ``attention_1pass: q has dtype int64; expected float32 or float64``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))
